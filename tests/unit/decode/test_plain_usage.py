"""The one-pass usage check agrees with the field-by-field decoder on every line."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from helpers import event

from monitor.decode import decoder
from monitor.decode.events import Event, Rejected

LONG = "x" * 257


def _field_by_field(raw: bytes) -> Event | Rejected:
    """Decode a usage line through ``_usage`` only, as before the fast path."""
    try:
        return decoder._usage(orjson.loads(raw))
    except decoder._InvalidFieldError as exc:
        return Rejected(exc.reason, exc.detail, raw)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"feature": "reports", "count": 3, "event_id": "e1"},
        {"feature": None, "event_id": None},
        {"timestamp": "2026-03-02T09:15:00.123456+02:00"},
        {"customer_id": "c" * 256, "action": "a" * 256, "feature": "f" * 256},
        {"count": 1_000_000},
        {"customer_id": None},
        {"customer_id": ""},
        {"customer_id": LONG},
        {"customer_id": 7},
        {"action": None},
        {"action": ["view"]},
        {"feature": ""},
        {"feature": LONG},
        {"event_id": 42},
        {"event_id": ""},
        {"event_id": 1.5},
        {"event_id": LONG},
        {"count": 0},
        {"count": 1_000_001},
        {"count": "3"},
        {"count": True},
        {"count": 2.0},
        {"timestamp": None},
        {"timestamp": 1_772_000_000},
        {"timestamp": "2026-03-02T09:15:00"},
        {"timestamp": "yesterday"},
        {"timestamp": "1999-12-31T23:00:00Z"},
        {"timestamp": "2100-01-01T00:00:00Z"},
    ],
)
def test_decode_usage_same_verdict_as_field_checks(fields: dict[str, Any]) -> None:
    """A None value is sent as JSON null, which the contract reads as missing."""
    body = {**orjson.loads(event("usage")), **fields}
    raw = orjson.dumps(body)

    assert decoder.decode(raw) == _field_by_field(raw)


@pytest.mark.parametrize("key", ["customer_id", "action", "timestamp"])
def test_decode_usage_missing_field_same_verdict(key: str) -> None:
    body = orjson.loads(event("usage"))
    del body[key]
    raw = orjson.dumps(body)

    assert decoder.decode(raw) == _field_by_field(raw)


def test_format_time_repeats_give_the_same_text() -> None:
    epochs = [0.0, 1_772_000_000.9, 1_772_000_000.1, -1.5, 1_772_086_399.0]

    first = [decoder.format_time(e) for e in epochs]
    again = [decoder.format_time(e) for e in reversed(epochs)]

    assert first == list(reversed(again))
    assert first[1] == first[2] == "2026-02-25T06:13:20Z"
