"""Dead letters: a rejected message with its original bytes and where it came from.

Builds records only; the app sends them inside its transaction.
"""

from __future__ import annotations

from monitor.decode.events import Rejected

__all__ = ["DeadLetter", "dead_letter"]

Headers = list[tuple[str, bytes]]
DeadLetter = tuple[bytes | None, bytes, Headers]


def dead_letter(
    rejected: Rejected, key: bytes | None, topic: str, partition: int, offset: int
) -> DeadLetter:
    """Return ``(key, value, headers)``: value is the original message, untouched."""
    headers = [
        ("churn-reason", rejected.reason.value.encode()),
        ("churn-detail", rejected.detail.encode("utf-8", "replace")[:1000]),
        ("churn-source-topic", topic.encode()),
        ("churn-source-partition", str(partition).encode()),
        ("churn-source-offset", str(offset).encode()),
    ]
    return key, rejected.raw, headers
