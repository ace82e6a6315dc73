"""The decoder turns good lines into events and every bad line into a reason."""

from __future__ import annotations

import orjson
import pytest
from helpers import event
from pydantic import ValidationError

from monitor.decode import decoder
from monitor.decode.decoder import decode
from monitor.decode.events import (
    EventModel,
    FeedbackEvent,
    Rejected,
    RejectReason,
    ReleaseEvent,
    SubscriptionEvent,
    UsageEvent,
    event_json_schema,
)
from monitor.state.customer import CustomerState, feature_name


def test_decode_usage_fills_defaults() -> None:
    decoded = decode(event("usage", action="export", feature="reports"))

    assert isinstance(decoded, UsageEvent)
    assert decoded.customer_id == "c1"
    assert decoded.count == 1
    assert decoded.feature == "reports"


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("feedback", FeedbackEvent),
        ("subscription", SubscriptionEvent),
        ("release", ReleaseEvent),
    ],
)
def test_decode_each_type(kind: str, cls: type) -> None:
    assert isinstance(decode(event(kind)), cls)


def test_decode_shares_kept_names_not_customer_ids() -> None:
    first = decode(event("usage", customer_id="c-shared", feature="reports-x"))
    second = decode(event("usage", customer_id="c-shared", feature="reports-x"))

    assert isinstance(first, UsageEvent)
    assert isinstance(second, UsageEvent)
    assert "c-shared" not in decoder._NAMES
    # A plain usage event's feature is looked up once for its number: customers
    # keep numbers, and the process one copy of each name.
    assert first.feature == second.feature == "reports-x"
    assert "reports-x" not in decoder._NAMES
    states = [CustomerState(first_day=1), CustomerState(first_day=1)]
    for state, decoded in zip(states, (first, second), strict=True):
        assert decoded.feature is not None
        state.record_feature(decoded.feature, 1)
    numbers = [state.features[0] for state in states]
    assert numbers[0] == numbers[1]
    assert feature_name(numbers[0]) is feature_name(numbers[1])
    # A plain usage event's action is only compared with rule filters.
    assert first.action == second.action
    assert "open_dashboard-unshared" not in decoder._NAMES
    decode(event("usage", action="open_dashboard-unshared"))
    assert "open_dashboard-unshared" not in decoder._NAMES


def test_decode_name_table_stays_bounded() -> None:
    for n in range(decoder._NAMES_MAX + 10):
        decoded = decode(event("usage", feature=f"feature-{n}"))
        assert isinstance(decoded, UsageEvent)
        assert decoded.feature == f"feature-{n}"

    assert len(decoder._NAMES) <= decoder._NAMES_MAX


def test_decode_ignores_fields_producers_add() -> None:
    decoded = decode(event("usage", region="eu", nested={"a": 1}))

    assert isinstance(decoded, UsageEvent)


def test_decode_converts_offsets_to_utc() -> None:
    line = orjson.dumps(
        {
            "type": "usage",
            "customer_id": "c",
            "action": "a",
            "timestamp": "2026-03-02T14:00:00+02:00",
        }
    )

    decoded = decode(line)

    assert isinstance(decoded, UsageEvent)
    assert decoded.event_time == 1772452800.0  # 12:00Z


BAD = [
    (b"{not json", RejectReason.MALFORMED_JSON),
    (b"[1, 2]", RejectReason.NOT_AN_OBJECT),
    (b'{"customer_id": "c"}', RejectReason.MISSING_FIELD),
    (event("usage", type="purchase"), RejectReason.UNKNOWN_TYPE),
    (event("usage", customer_id=None), RejectReason.MISSING_FIELD),
    (event("usage", customer_id=""), RejectReason.INVALID_FIELD),
    (event("usage", customer_id=42), RejectReason.INVALID_FIELD),
    (event("usage", action=None), RejectReason.MISSING_FIELD),
    (event("usage", count=0), RejectReason.INVALID_FIELD),
    (event("usage", count=True), RejectReason.INVALID_FIELD),
    (event("usage", count=2.5), RejectReason.INVALID_FIELD),
    (event("feedback", channel="fax"), RejectReason.INVALID_FIELD),
    (event("feedback", channel="nps", score=11), RejectReason.INVALID_FIELD),
    (event("feedback", channel="csat", score=0), RejectReason.INVALID_FIELD),
    (event("feedback", sentiment=-1.5), RejectReason.INVALID_FIELD),
    (event("subscription", status="paused"), RejectReason.INVALID_FIELD),
    (event("subscription", mrr=-5), RejectReason.INVALID_FIELD),
    (event("release", plans="pro"), RejectReason.INVALID_FIELD),
    (event("usage", timestamp="yesterday"), RejectReason.BAD_TIMESTAMP),
    (event("usage", timestamp="2026-03-02T12:00:00"), RejectReason.BAD_TIMESTAMP),
    (event("usage", timestamp=1772452800), RejectReason.BAD_TIMESTAMP),
    (event("usage", timestamp="1970-01-01T00:00:00Z"), RejectReason.ABSURD_TIMESTAMP),
    (event("usage", timestamp="2999-01-01T00:00:00Z"), RejectReason.ABSURD_TIMESTAMP),
    (b"\xff\xfe garbage", RejectReason.MALFORMED_JSON),
]


@pytest.mark.parametrize(("line", "reason"), BAD)
def test_decode_bad_line_rejected_with_reason_and_bytes(
    line: bytes, reason: RejectReason
) -> None:
    decoded = decode(line)

    assert isinstance(decoded, Rejected)
    assert decoded.reason is reason
    assert decoded.raw == line
    assert decoded.detail


def test_decode_oversized_line_rejected() -> None:
    line = event("usage", action="x" * 100)

    decoded = decode(line, max_bytes=64)

    assert isinstance(decoded, Rejected)
    assert decoded.reason is RejectReason.OVERSIZED


@pytest.mark.parametrize(("line", "reason"), BAD)
def test_schema_models_refuse_what_decoder_refuses(
    line: bytes, reason: RejectReason
) -> None:
    """The published JSON Schema models and the fast decoder agree on bad input."""
    if reason in (RejectReason.MALFORMED_JSON, RejectReason.NOT_AN_OBJECT):
        return
    if reason is RejectReason.ABSURD_TIMESTAMP:
        return  # a range the schema states in its description
    with pytest.raises(ValidationError):
        EventModel.model_validate({"event": orjson.loads(line)})


@pytest.mark.parametrize("kind", ["usage", "feedback", "subscription", "release"])
def test_schema_models_accept_what_decoder_accepts(kind: str) -> None:
    EventModel.model_validate({"event": orjson.loads(event(kind))})


def test_json_schema_lists_every_type() -> None:
    schema = event_json_schema()

    assert schema["$schema"].endswith("2020-12/schema")
    assert set(schema["discriminator"]["mapping"]) == {
        "usage",
        "feedback",
        "subscription",
        "release",
    }
