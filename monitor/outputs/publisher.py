"""Warning records as Kafka messages for CRMs: keyed by customer, JSON values.

Formats only; the app sends them inside its transaction so that a record is seen
(with read_committed) exactly once.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["warning_message"]


def warning_message(
    record: dict[str, Any],
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Return ``(key, value, headers)`` for one warning lifecycle record."""
    headers = [
        ("churn-status", str(record["status"]).encode()),
        ("churn-rule", str(record["rule"]).encode()),
        ("churn-warning-id", str(record["id"]).encode()),
    ]
    return str(record["customer_id"]).encode(), orjson.dumps(record), headers
