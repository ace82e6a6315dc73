"""The public event contract: four event types, as hot-path records and as a schema.

The records (``records``, re-exported here) are what the engine handles; the
pydantic models exist to publish the contract as JSON Schema and must accept
exactly what ``decoder`` accepts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

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

__all__ = [
    "FEEDBACK_CHANNELS",
    "SCORE_RANGES",
    "SUBSCRIPTION_STATUSES",
    "Event",
    "EventModel",
    "FeedbackEvent",
    "RejectReason",
    "Rejected",
    "ReleaseEvent",
    "SubscriptionEvent",
    "UsageEvent",
    "event_json_schema",
]


def _text_only(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("expected an RFC 3339 string")
    return value


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_text_only),
    Field(description="RFC 3339 with an offset; years 2000-2099 only."),
]
Text = Annotated[StrictStr, Field(min_length=1, max_length=256)]
Number = StrictFloat | StrictInt


class _Common(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    customer_id: Text
    timestamp: Timestamp
    event_id: Annotated[
        StrictStr | StrictInt | None,
        Field(
            default=None,
            max_length=256,
            description="When present, a repeated id is a duplicate, applied once.",
        ),
    ] = None


class UsageModel(_Common):
    """A customer used the product."""

    type: Literal["usage"]
    action: Text
    feature: Text | None = None
    count: Annotated[StrictInt, Field(ge=1, le=1_000_000)] = 1


class FeedbackModel(_Common):
    """A survey answer, ticket, review or other feedback from a customer."""

    type: Literal["feedback"]
    channel: Literal[
        "survey", "nps", "csat", "support_ticket", "review", "social", "other"
    ]
    score: Annotated[
        Number | None,
        Field(
            default=None,
            description="NPS 0-10, CSAT and review 1-5, other channels 0-10.",
        ),
    ] = None
    sentiment: Annotated[Number | None, Field(default=None, ge=-1, le=1)] = None
    text: str | None = None

    @model_validator(mode="after")
    def _score_in_channel_range(self) -> FeedbackModel:
        low, high = SCORE_RANGES[self.channel]
        if self.score is not None and not low <= self.score <= high:
            raise ValueError(f"score for {self.channel} must be within {low}..{high}")
        return self


class SubscriptionModel(_Common):
    """A change in the customer's subscription."""

    type: Literal["subscription"]
    status: Literal[
        "started",
        "renewed",
        "upgraded",
        "downgraded",
        "cancelled",
        "payment_failed",
        "reactivated",
    ]
    plan: Text | None = None
    mrr: Annotated[Number | None, Field(default=None, ge=0)] = None


class ReleaseModel(BaseModel):
    """A feature launch; concerns every customer on the listed plans."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["release"]
    timestamp: Timestamp
    event_id: Annotated[StrictStr | StrictInt | None, Field(default=None)] = None
    feature: Text
    plans: list[Text] | None = Field(
        default=None, description="Plans the feature is offered on; all if absent."
    )


class EventModel(BaseModel):
    """One event of the contract, told apart by ``type``."""

    event: Annotated[
        UsageModel | FeedbackModel | SubscriptionModel | ReleaseModel,
        Field(discriminator="type"),
    ]


def event_json_schema() -> dict[str, Any]:
    """Return the JSON Schema of one event line."""
    schema = EventModel.model_json_schema()
    inner = schema["properties"]["event"]
    inner["$defs"] = schema.get("$defs", {})
    inner["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    inner["title"] = "churn-monitor event"
    return dict(inner)
