"""Turn one raw line or message into an event, or into a ``Rejected`` with its bytes.

Hand-written checks on ``orjson`` output: measured several times faster than a
pydantic discriminated union on the hot path; ``events.py`` keeps the schema and a
unit test holds the two to the same verdicts. Never raises on bad input.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

import orjson
from mypy_extensions import i64

from monitor.decode.records import (
    FEEDBACK_CHANNELS,
    SCORE_RANGES,
    SUBSCRIPTION_STATUSES,
    Event,
    FeedbackEvent,
    Rejected,
    RejectReason,
    ReleaseEvent,
    SubscriptionEvent,
    UsageEvent,
)

__all__ = ["DEFAULT_MAX_BYTES", "decode", "format_time", "parse_time"]

DEFAULT_MAX_BYTES: Final = 64 * 1024
# Events outside these years are taken as broken clocks, not history.
_MIN_EPOCH: Final = 946_684_800.0  # 2000-01-01T00:00:00Z
_MAX_EPOCH: Final = 4_102_444_800.0  # 2100-01-01T00:00:00Z
_MAX_TEXT: Final = 256
_MAX_COUNT: Final = 1_000_000
# Bound once: compiled, a Final is a static load, while ``orjson.loads`` or
# ``datetime.fromisoformat`` would be an attribute lookup on every event.
_loads: Final = orjson.loads
_from_iso: Final = datetime.fromisoformat
# Names (actions, features, channels, plans) repeat across millions of events:
# one shared copy each saves memory and makes dict lookups identity hits. A
# small table of their own, not sys.intern, whose table every customer id
# would grow. Customer ids are not shared: each is looked up once per event;
# nor are a plain usage event's action and feature: the action is only
# compared, the feature looked up once for its number (see CustomerState).
_NAMES: Final[dict[str, str]] = {}
_NAMES_MAX: Final = 4096


def _decoded_keys() -> dict[str, str]:
    """Return the field names as ``orjson`` hands them out: it keeps one object
    per short key, so a lookup with that same object matches it by identity
    instead of comparing the characters (any other copy works, only slower)."""
    fields = b'{"type":0,"customer_id":0,"timestamp":0,"event_id":0,"action":0,'
    fields += b'"feature":0,"count":0}'
    return {key: key for key in orjson.loads(fields)}


_KEYS: Final = _decoded_keys()
_TYPE: Final = _KEYS["type"]
_CUSTOMER_ID: Final = _KEYS["customer_id"]
_TIMESTAMP: Final = _KEYS["timestamp"]
_EVENT_ID: Final = _KEYS["event_id"]
_ACTION: Final = _KEYS["action"]
_FEATURE: Final = _KEYS["feature"]
_COUNT: Final = _KEYS["count"]


class _InvalidFieldError(Exception):
    """Internal signal from a field check; turned into a ``Rejected``."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        self.reason = reason
        self.detail = detail


def _name(value: str) -> str:
    """Return the shared copy of a name, keeping the first seen as that copy."""
    shared = _NAMES.get(value)
    if shared is not None:
        return shared
    if len(_NAMES) < _NAMES_MAX:
        _NAMES[value] = value
    return value


# Compiled (see setup.py), the decoder reads common UTC timestamps itself; as
# plain Python that reading is slower than datetime's C code, so it is skipped.
_READ_TIMES: Final = not __file__.endswith(".py")
# Days before each month and days in it, in a common year, for ``utc_epoch``.
# Lists: compiled, a Final tuple of literals is built again at every use.
_MONTH_START: Final = [0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334]
_MONTH_DAYS: Final = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


def _digits(text: str, start: i64, count: i64) -> i64:
    """Return the number written by ``count`` ASCII digits at ``start``, or -1."""
    value: i64 = 0
    i: i64 = start
    end = start + count
    while i < end:
        digit: i64 = ord(text[i]) - 48
        if digit < 0 or digit > 9:
            return -1
        value = value * 10 + digit
        i += 1
    return value


def _days_since_epoch(year: i64, month: i64, day: i64) -> i64:
    """Return the days from 1970-01-01 to a valid date of 1970-2099, else -1."""
    if year < 1970 or year > 2099 or month < 1 or month > 12 or day < 1:
        return -1
    # Within 1970-2099 a year divisible by 4 is a leap year (2000 is one).
    leap = year % 4 == 0
    month_days: i64 = _MONTH_DAYS[month]
    if day > month_days + (1 if leap and month == 2 else 0):
        return -1
    # Years, the leap days before this year since 1970, months.
    month_start: i64 = _MONTH_START[month]
    return (
        (year - 1970) * 365
        + (year - 1969) // 4
        + month_start
        + (1 if leap and month > 2 else 0)
        + day
        - 1
    )


class _LastDate:
    """The date part (``YYYY-MM-DDT``) of the last timestamp read, and its day:
    events come in time order, so most share it with the one before."""

    def __init__(self) -> None:
        self.prefix = ""
        self.days: i64 = -1


_LAST_DATE: Final = _LastDate()


def _date_days(text: str) -> i64:
    """Return the days since the epoch of a timestamp's date part, or -1."""
    last = _LAST_DATE
    if last.days >= 0 and text.startswith(last.prefix):
        return last.days
    days = _days_since_epoch(
        _digits(text, 0, 4), _digits(text, 5, 2), _digits(text, 8, 2)
    )
    if days >= 0:
        last.prefix, last.days = text[:11], days
    return days


def utc_epoch(text: str) -> float:
    """Return epoch seconds of a UTC timestamp in the shape producers write, or -1.

    The shape is ``YYYY-MM-DDTHH:MM:SS``, optionally ``.mmm`` or ``.uuuuuu``, then
    ``Z`` or ``+00:00``, in years 1970-2099. Anything else (other offsets, other
    separators, an invalid date) returns -1 and goes through
    ``datetime.fromisoformat``, which judges it. Same float as
    ``fromisoformat(text).timestamp()``: both divide the exact count of
    microseconds (under 2**53 in these years) by a million, rounded once.
    Compiled, with native 64-bit integers (``i64``), it takes a few hundred
    instructions; plain Python, about 3 us, so the decoder calls it only when
    compiled.
    """
    size: i64 = len(text)
    if size < 20 or size > 32 or text[4] != "-" or text[7] != "-":
        return -1.0
    if text[10] != "T" or text[13] != ":" or text[16] != ":":
        return -1.0
    end: i64
    if text[size - 1] == "Z":
        end = size - 1
    elif text.endswith("+00:00"):
        end = size - 6
    else:
        return -1.0
    micro: i64 = 0
    if end == 23 and text[19] == ".":
        micro = _digits(text, 20, 3) * 1000
    elif end == 26 and text[19] == ".":
        micro = _digits(text, 20, 6)
    elif end != 19:
        return -1.0
    days = _date_days(text)
    hour, minute = _digits(text, 11, 2), _digits(text, 14, 2)
    second = _digits(text, 17, 2)
    if days < 0 or micro < 0 or not (0 <= hour <= 23 and 0 <= minute <= 59):
        return -1.0
    if not 0 <= second <= 59:
        return -1.0
    seconds = days * 86_400 + hour * 3_600 + minute * 60 + second
    # Every step up to the division is exact below 2**53.
    return (float(seconds) * 1e6 + float(micro)) / 1e6


def parse_time(value: object) -> float:
    """Return epoch seconds for an RFC 3339 timestamp with an offset."""
    if not isinstance(value, str):
        raise _InvalidFieldError(
            RejectReason.BAD_TIMESTAMP, "timestamp: expected a string"
        )
    epoch = utc_epoch(value) if _READ_TIMES else -1.0
    if epoch >= 0:
        if not _MIN_EPOCH <= epoch < _MAX_EPOCH:
            raise _InvalidFieldError(
                RejectReason.ABSURD_TIMESTAMP,
                f"timestamp: outside years 2000-2099: {value[:40]!r}",
            )
        return epoch
    try:
        parsed = _from_iso(value)
    except ValueError:
        raise _InvalidFieldError(
            RejectReason.BAD_TIMESTAMP, f"timestamp: not RFC 3339: {value[:40]!r}"
        ) from None
    if parsed.tzinfo is None:
        raise _InvalidFieldError(
            RejectReason.BAD_TIMESTAMP, f"timestamp: no UTC offset: {value[:40]!r}"
        )
    epoch = parsed.timestamp()
    if not _MIN_EPOCH <= epoch < _MAX_EPOCH:
        raise _InvalidFieldError(
            RejectReason.ABSURD_TIMESTAMP,
            f"timestamp: outside years 2000-2099: {value[:40]!r}",
        )
    return epoch


# A day end judges many customers at one instant, so the same second is
# formatted over and over: a small table saves the strftime (a dict, not
# lru_cache, whose wrapper a compiled caller reaches through Python).
_FORMATTED: Final[dict[int, str]] = {}
_FORMATTED_MAX: Final = 64


def format_time(epoch: float) -> str:
    """Format epoch seconds as RFC 3339 UTC with a ``Z``, to the second."""
    second = int(epoch)
    text = _FORMATTED.get(second)
    if text is None:
        if len(_FORMATTED) >= _FORMATTED_MAX:
            _FORMATTED.clear()
        text = _FORMATTED[second] = time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)
        )
    return text


def _text(
    obj: dict[str, Any], key: str, required: bool = True, shared: bool = True
) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise _InvalidFieldError(RejectReason.MISSING_FIELD, f"{key}: required")
        return None
    if type(value) is not str or not value or len(value) > _MAX_TEXT:
        raise _InvalidFieldError(
            RejectReason.INVALID_FIELD, f"{key}: expected a string of 1-256 chars"
        )
    return _name(value) if shared else value


def _number(obj: dict[str, Any], key: str, low: float, high: float) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if type(value) not in (int, float) or not math.isfinite(value):
        raise _InvalidFieldError(
            RejectReason.INVALID_FIELD, f"{key}: expected a number"
        )
    if not low <= value <= high:
        raise _InvalidFieldError(
            RejectReason.INVALID_FIELD, f"{key}: {value} outside {low:g}..{high:g}"
        )
    return float(value)


def _event_id(obj: dict[str, Any]) -> str | None:
    value = obj.get("event_id")
    if value is None:
        return None
    if type(value) is int:
        return str(value)
    if type(value) is not str or not value or len(value) > _MAX_TEXT:
        raise _InvalidFieldError(
            RejectReason.INVALID_FIELD, "event_id: expected a string"
        )
    return value


def _usage(obj: dict[str, Any]) -> UsageEvent:
    count = obj.get("count", 1)
    if type(count) is not int or not 1 <= count <= _MAX_COUNT:
        raise _InvalidFieldError(
            RejectReason.INVALID_FIELD, "count: expected an integer >= 1"
        )
    return UsageEvent(
        _text(obj, "customer_id", shared=False),  # type: ignore[arg-type]
        parse_time(obj.get("timestamp")),
        _event_id(obj),
        _text(obj, "action"),  # type: ignore[arg-type]
        _text(obj, "feature", required=False),
        count,
    )


def _plain_usage(obj: dict[str, Any]) -> UsageEvent | None:
    """Return the usage event of a well-formed object in one pass, or None.

    Most events are plain usage, so this checks them without a call per field
    (and, compiled, with direct dict reads: no method bound to a local).
    Anything unusual (a missing or odd field, an integer ``event_id``, a bad
    timestamp) returns None and goes through ``_usage``, which names the fault.
    """
    limit = _MAX_TEXT
    customer_id, action = obj.get(_CUSTOMER_ID), obj.get(_ACTION)
    feature, event_id = obj.get(_FEATURE), obj.get(_EVENT_ID)
    count, stamp = obj.get(_COUNT, 1), obj.get(_TIMESTAMP)
    if not (
        type(customer_id) is str
        and 0 < len(customer_id) <= limit
        and type(action) is str
        and 0 < len(action) <= limit
        and (feature is None or (type(feature) is str and 0 < len(feature) <= limit))
        and (event_id is None or (type(event_id) is str and 0 < len(event_id) <= limit))
        and type(count) is int
        and 1 <= count <= _MAX_COUNT
        and type(stamp) is str
    ):
        return None
    epoch = utc_epoch(stamp) if _READ_TIMES else -1.0
    if epoch < 0:
        try:
            parsed = _from_iso(stamp)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            return None
        epoch = parsed.timestamp()
    if not _MIN_EPOCH <= epoch < _MAX_EPOCH:
        return None

    return UsageEvent(
        customer_id,
        epoch,
        event_id,
        action,
        feature,
        count,
    )


def _feedback(obj: dict[str, Any]) -> FeedbackEvent:
    customer_id = _text(obj, "customer_id", shared=False)
    event_time = parse_time(obj.get("timestamp"))
    channel = obj.get("channel")
    if channel is None:
        raise _InvalidFieldError(RejectReason.MISSING_FIELD, "channel: required")
    if channel not in FEEDBACK_CHANNELS:
        raise _InvalidFieldError(
            RejectReason.INVALID_FIELD, f"channel: unknown {str(channel)[:40]!r}"
        )
    low, high = SCORE_RANGES[channel]
    return FeedbackEvent(
        customer_id,  # type: ignore[arg-type]
        event_time,
        _event_id(obj),
        _name(channel),
        _number(obj, "score", low, high),
        _number(obj, "sentiment", -1.0, 1.0),
    )


def _subscription(obj: dict[str, Any]) -> SubscriptionEvent:
    customer_id = _text(obj, "customer_id", shared=False)
    event_time = parse_time(obj.get("timestamp"))
    status = obj.get("status")
    if status is None:
        raise _InvalidFieldError(RejectReason.MISSING_FIELD, "status: required")
    if status not in SUBSCRIPTION_STATUSES:
        raise _InvalidFieldError(
            RejectReason.INVALID_FIELD, f"status: unknown {str(status)[:40]!r}"
        )
    return SubscriptionEvent(
        customer_id,  # type: ignore[arg-type]
        event_time,
        _event_id(obj),
        _name(status),
        _text(obj, "plan", required=False),
        _number(obj, "mrr", 0.0, 1e12),
    )


def _release(obj: dict[str, Any]) -> ReleaseEvent:
    plans = obj.get("plans")
    if plans is not None:
        if type(plans) is not list or not all(type(p) is str and p for p in plans):
            raise _InvalidFieldError(
                RejectReason.INVALID_FIELD, "plans: expected a list of strings"
            )
        plans = tuple(_name(p) for p in plans)
    return ReleaseEvent(
        parse_time(obj.get("timestamp")),
        _event_id(obj),
        _text(obj, "feature"),  # type: ignore[arg-type]
        plans,
    )


_PARSERS: Final[dict[object, Callable[[dict[str, Any]], Event]]] = {
    "usage": _usage,
    "feedback": _feedback,
    "subscription": _subscription,
    "release": _release,
}


def decode(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Event | Rejected:
    """Decode one JSON event; bad input comes back as ``Rejected``, never raised."""
    if len(raw) > max_bytes:
        return Rejected(
            RejectReason.OVERSIZED, f"{len(raw)} bytes > limit {max_bytes}", raw
        )
    try:
        obj = _loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejected(RejectReason.MALFORMED_JSON, str(exc)[:120], raw)
    if type(obj) is not dict:
        return Rejected(RejectReason.NOT_AN_OBJECT, "expected a JSON object", raw)

    kind = obj.get(_TYPE)
    parser = None
    if isinstance(kind, str):
        # Narrowed to str, compiled code compares it directly.
        if kind == "usage" and (event := _plain_usage(obj)) is not None:
            return event
        parser = _PARSERS.get(kind)
    if parser is None:
        if kind is None:
            return Rejected(RejectReason.MISSING_FIELD, "type: required", raw)
        return Rejected(
            RejectReason.UNKNOWN_TYPE, f"type: unknown {str(kind)[:40]!r}", raw
        )
    try:
        return parser(obj)
    except _InvalidFieldError as exc:
        return Rejected(exc.reason, exc.detail, raw)
