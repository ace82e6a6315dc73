"""Rule file models: one YAML file per rule, told apart by ``kind``.

Validation only; what a rule means at run time lives in ``detectors``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ABSENCE_KINDS",
    "BillingRiskRule",
    "DecliningUsageRule",
    "IgnoredFeatureRule",
    "InactivityRule",
    "Launch",
    "Measure",
    "NegativeFeedbackRule",
    "Rule",
    "RuleFile",
    "Severity",
    "ThresholdRule",
    "UsageMatch",
    "VanishingFeedbackRule",
]

Severity = Literal["info", "warning", "critical"]
Channel = Literal[
    "survey", "nps", "csat", "support_ticket", "review", "social", "other"
]
PositiveInt = Annotated[int, Field(ge=1, le=3650)]
# Kinds that judge silence; the population-wide silence guard holds their fire.
ABSENCE_KINDS = frozenset(
    {"declining_usage", "inactivity", "vanishing_feedback", "ignored_feature"}
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Measure = Literal["events", "count"]


class UsageMatch(_Strict):
    """Restrict a rule to usage events of one action and/or one feature."""

    action: str | None = None
    feature: str | None = None

    @property
    def is_everything(self) -> bool:
        return self.action is None and self.feature is None

    def key(self, measure: Measure) -> str:
        """Name the daily series of this filter: events counted, or their ``count``."""
        return f"{measure}|a={self.action or '*'}|f={self.feature or '*'}"


class _RuleBase(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
    description: str = ""
    severity: Severity = "warning"
    weight: Annotated[int, Field(ge=0, le=100)] = 20
    action: Annotated[str, Field(min_length=1, max_length=500)]
    enabled: bool = True
    min_open_days: Annotated[int, Field(ge=0, le=365)] = 3


class DecliningUsageRule(_RuleBase):
    """Recent activity rate well below the customer's own baseline."""

    kind: Literal["declining_usage"]
    recent_days: PositiveInt = 7
    baseline_days: PositiveInt = 28
    gap_days: Annotated[int, Field(ge=0, le=365)] = 0
    drop: Annotated[float, Field(gt=0, lt=1)] = 0.5
    recover: Annotated[float, Field(ge=0, lt=1)] = 0.25
    min_baseline_per_day: Annotated[float, Field(gt=0)] = 1.0
    min_z: Annotated[float, Field(ge=0)] = 3.0
    weekday_aware: bool = True
    measure: Measure = "events"
    match: UsageMatch = UsageMatch()

    @model_validator(mode="after")
    def _windows_fit(self) -> DecliningUsageRule:
        windows = (self.recent_days, self.baseline_days, self.gap_days)
        if self.weekday_aware and any(days % 7 for days in windows):
            raise ValueError(
                "recent_days, baseline_days and gap_days must be whole weeks "
                "(multiples of 7) when weekday_aware is true"
            )
        if self.recover >= self.drop:
            raise ValueError("recover must be smaller than drop (hysteresis)")
        return self


class Launch(_Strict):
    feature: Annotated[str, Field(min_length=1)]
    date: date
    plans: list[str] | None = None


class IgnoredFeatureRule(_RuleBase):
    """A new feature left untouched, or a regularly used feature abandoned."""

    kind: Literal["ignored_feature"]
    mode: Literal["new", "abandoned"] = "new"
    after_days: PositiveInt = 21
    launches: list[Launch] = []
    max_age_days: PositiveInt = 90
    active_within_days: PositiveInt = 14
    min_use_days: PositiveInt = 6
    silence_factor: Annotated[float, Field(ge=1)] = 3.0


class VanishingFeedbackRule(_RuleBase):
    """A customer who answered at a steady cadence has gone quiet."""

    kind: Literal["vanishing_feedback"]
    channels: list[Channel] = ["survey", "nps", "csat", "support_ticket", "review"]
    min_responses: Annotated[int, Field(ge=2, le=16)] = 3
    min_span_days: Annotated[int, Field(ge=0, le=3650)] = 60
    silence_factor: Annotated[float, Field(gt=1)] = 4.0
    longest_gap_factor: Annotated[float, Field(ge=1)] = 1.5
    min_silent_days: PositiveInt = 30
    max_usual_interval_days: PositiveInt = 120


class InactivityRule(_RuleBase):
    """No usage at all for a number of days."""

    kind: Literal["inactivity"]
    days: PositiveInt = 14


class NegativeFeedbackRule(_RuleBase):
    """Detractor scores, low CSAT, negative sentiment or repeated tickets."""

    kind: Literal["negative_feedback"]
    channel: Channel | None = None
    max_score: float | None = None
    max_sentiment: Annotated[float | None, Field(ge=-1, le=1)] = None
    min_count: Annotated[int, Field(ge=1, le=16)] = 1
    window_days: PositiveInt = 30


class BillingRiskRule(_RuleBase):
    """A downgrade or a failed payment not yet put right."""

    kind: Literal["billing_risk"]
    trigger: Literal["payment_failed", "downgraded"]
    window_days: PositiveInt = 30
    grace_days: Annotated[int, Field(ge=0, le=365)] = 0


class ThresholdRule(_RuleBase):
    """A per-customer metric against a threshold, for rules users write."""

    kind: Literal["threshold"]
    metric: Literal["count", "ratio", "days_since", "monthly_rate"]
    measure: Measure = "count"
    match: UsageMatch = UsageMatch()
    per: UsageMatch | None = None
    window_days: PositiveInt = 30
    op: Literal["<", "<=", ">", ">="]
    value: float
    clear_value: float | None = None
    min_denominator: Annotated[int, Field(ge=1)] = 1
    min_history_days: Annotated[int, Field(ge=0, le=3650)] = 0

    @model_validator(mode="after")
    def _ratio_has_denominator(self) -> ThresholdRule:
        if self.metric == "ratio" and self.per is None:
            raise ValueError("metric 'ratio' needs 'per' (the denominator's match)")
        return self


Rule = Annotated[
    DecliningUsageRule
    | IgnoredFeatureRule
    | VanishingFeedbackRule
    | InactivityRule
    | NegativeFeedbackRule
    | BillingRiskRule
    | ThresholdRule,
    Field(discriminator="kind"),
]


class RuleFile(_Strict):
    """The top level of a rule file."""

    rule: Rule
