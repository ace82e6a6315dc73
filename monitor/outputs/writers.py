"""File outputs: warning lifecycle JSONL, rejects JSONL with original bytes, scores CSV.

Writes what it is given in the order given; deciding what to write is the engine's.
"""

from __future__ import annotations

import base64
import contextlib
import csv
from typing import IO, Any

import orjson

from monitor.decode.events import Rejected
from monitor.engine.lifecycle import WarningBook

__all__ = ["JsonlWriter", "RejectsWriter", "write_scores"]


class JsonlWriter:
    """Append one JSON object per line to a binary stream."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.written = 0

    def __call__(self, record: dict[str, Any]) -> None:
        self._stream.write(orjson.dumps(record) + b"\n")
        self.written += 1


class RejectsWriter:
    """Keep every rejected input with its reason and its exact original bytes."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.written = 0

    def __call__(
        self, rejected: Rejected, position: dict[str, Any] | None = None
    ) -> None:
        record: dict[str, Any] = {
            "reason": rejected.reason.value,
            "detail": rejected.detail,
            "raw_b64": base64.b64encode(rejected.raw).decode("ascii"),
        }
        with contextlib.suppress(UnicodeDecodeError):
            record["raw"] = rejected.raw.decode("utf-8")
        if position:
            record.update(position)
        self._stream.write(orjson.dumps(record) + b"\n")
        self.written += 1


def write_scores(stream: IO[str], customer_ids: list[str], book: WarningBook) -> None:
    """Write ``customer_id,health_score,open_warnings``, most at risk first."""
    rows = sorted(
        (
            book.health(customer_id),
            customer_id,
            ";".join(sorted(book.open_for(customer_id))),
        )
        for customer_id in customer_ids
    )
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(["customer_id", "health_score", "open_warnings"])
    for health, customer_id, names in rows:
        writer.writerow([customer_id, health, names])
