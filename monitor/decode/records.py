"""The records the engine handles: decoded events and rejected inputs.

Compiled with the engine (see ``setup.py``), so they are native classes there;
``events`` re-exports them beside the schema models.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

__all__ = [
    "FEEDBACK_CHANNELS",
    "SCORE_RANGES",
    "SUBSCRIPTION_STATUSES",
    "Event",
    "FeedbackEvent",
    "RejectReason",
    "Rejected",
    "ReleaseEvent",
    "SubscriptionEvent",
    "UsageEvent",
]


FEEDBACK_CHANNELS: Final = frozenset(
    {"survey", "nps", "csat", "support_ticket", "review", "social", "other"}
)
SUBSCRIPTION_STATUSES: Final = frozenset(
    {
        "started",
        "renewed",
        "upgraded",
        "downgraded",
        "cancelled",
        "payment_failed",
        "reactivated",
    }
)
# Inclusive score range per channel: NPS 0-10, CSAT and reviews 1-5 stars,
# every other channel a 0-10 scale.
SCORE_RANGES: Final[dict[str, tuple[float, float]]] = {
    "nps": (0, 10),
    "csat": (1, 5),
    "review": (1, 5),
    "survey": (0, 10),
    "support_ticket": (0, 10),
    "social": (0, 10),
    "other": (0, 10),
}


class RejectReason(StrEnum):
    """Why an event was not applied; doubles as metric label and dead-letter header."""

    OVERSIZED = "oversized"
    MALFORMED_JSON = "malformed_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_TYPE = "unknown_type"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    BAD_TIMESTAMP = "bad_timestamp"
    ABSURD_TIMESTAMP = "absurd_timestamp"
    LATE = "late"
    FUTURE = "future"
    DUPLICATE = "duplicate"


@dataclass(slots=True)
class Rejected:
    """An input that could not be applied, with its original bytes."""

    reason: RejectReason
    detail: str
    raw: bytes


# Records made per event get init=False and a written __init__: mypyc compiles
# that one, while the __init__ dataclass generates stays interpreted and is six
# times slower. Rarer records keep the generated one.
@dataclass(slots=True, init=False)
class UsageEvent:
    customer_id: str
    event_time: float
    event_id: str | None
    action: str
    feature: str | None
    count: int

    def __init__(
        self,
        customer_id: str,
        event_time: float,
        event_id: str | None,
        action: str,
        feature: str | None,
        count: int,
    ) -> None:
        self.customer_id = customer_id
        self.event_time = event_time
        self.event_id = event_id
        self.action = action
        self.feature = feature
        self.count = count


@dataclass(slots=True, init=False)
class FeedbackEvent:
    customer_id: str
    event_time: float
    event_id: str | None
    channel: str
    score: float | None
    sentiment: float | None

    def __init__(
        self,
        customer_id: str,
        event_time: float,
        event_id: str | None,
        channel: str,
        score: float | None,
        sentiment: float | None,
    ) -> None:
        self.customer_id = customer_id
        self.event_time = event_time
        self.event_id = event_id
        self.channel = channel
        self.score = score
        self.sentiment = sentiment


@dataclass(slots=True, init=False)
class SubscriptionEvent:
    customer_id: str
    event_time: float
    event_id: str | None
    status: str
    plan: str | None
    mrr: float | None

    def __init__(
        self,
        customer_id: str,
        event_time: float,
        event_id: str | None,
        status: str,
        plan: str | None,
        mrr: float | None,
    ) -> None:
        self.customer_id = customer_id
        self.event_time = event_time
        self.event_id = event_id
        self.status = status
        self.plan = plan
        self.mrr = mrr


@dataclass(slots=True)
class ReleaseEvent:
    event_time: float
    event_id: str | None
    feature: str
    plans: tuple[str, ...] | None


Event = UsageEvent | FeedbackEvent | SubscriptionEvent | ReleaseEvent
