"""Rules as the detectors read them: compiled classes holding a rule's fields.

A detector reads a few fields of its rule for every customer it judges. Read
from the validated pydantic model, each field goes through the model's
``__getattr__`` hook and a walk of its class (about 360 machine instructions,
measured with cachegrind); read from these classes, compiled, it is a plain
load. The models stay the source of truth: they validate the rule files, and
each class here copies the fields its detector uses, once, when the engine
starts.
"""

from __future__ import annotations

from typing import Any, Final

from monitor.engine.schema import (
    BillingRiskRule,
    DecliningUsageRule,
    IgnoredFeatureRule,
    InactivityRule,
    NegativeFeedbackRule,
    ThresholdRule,
    UsageMatch,
    VanishingFeedbackRule,
)
from monitor.state.customer import channel_mask, feedback_limits

__all__ = [
    "BillingRiskParams",
    "DecliningUsageParams",
    "IgnoredFeatureParams",
    "InactivityParams",
    "NegativeFeedbackParams",
    "RuleParams",
    "ThresholdParams",
    "VanishingFeedbackParams",
    "params_for",
    "series_key",
]

# Kind codes, dispatched on by ``detect``.
INACTIVITY: Final = 0
IGNORED_FEATURE: Final = 1
DECLINING_USAGE: Final = 2
NEGATIVE_FEEDBACK: Final = 3
VANISHING_FEEDBACK: Final = 4
BILLING_RISK: Final = 5
THRESHOLD: Final = 6


class RuleParams:
    """What every rule has: its name, the warning it opens, and its kind code."""

    def __init__(self, rule: Any, code: int) -> None:
        self.rule: Any = rule
        self.code = code
        self.name: str = rule.name
        self.kind: str = rule.kind
        self.severity: str = rule.severity
        self.weight: int = rule.weight
        self.action: str = rule.action
        self.min_open_days: int = rule.min_open_days


class InactivityParams(RuleParams):
    def __init__(self, rule: InactivityRule) -> None:
        super().__init__(rule, INACTIVITY)
        self.days: int = rule.days


class IgnoredFeatureParams(RuleParams):
    def __init__(self, rule: IgnoredFeatureRule) -> None:
        super().__init__(rule, IGNORED_FEATURE)
        self.mode: str = rule.mode
        self.after_days: int = rule.after_days
        self.max_age_days: int = rule.max_age_days
        self.active_within_days: int = rule.active_within_days
        self.min_use_days: int = rule.min_use_days
        self.silence_factor: float = float(rule.silence_factor)


class DecliningUsageParams(RuleParams):
    def __init__(self, rule: DecliningUsageRule) -> None:
        super().__init__(rule, DECLINING_USAGE)
        self.recent_days: int = rule.recent_days
        self.baseline_days: int = rule.baseline_days
        self.gap_days: int = rule.gap_days
        self.drop: float = float(rule.drop)
        self.recover: float = float(rule.recover)
        self.min_baseline_per_day: float = float(rule.min_baseline_per_day)
        self.min_z: float = float(rule.min_z)
        self.weekday_aware: bool = rule.weekday_aware
        self.measure: str = rule.measure
        self.match: UsageMatch = rule.match
        self.series: str | None = series_key(rule.match, rule.measure)


class NegativeFeedbackParams(RuleParams):
    def __init__(self, rule: NegativeFeedbackRule) -> None:
        super().__init__(rule, NEGATIVE_FEEDBACK)
        self.channel: str | None = rule.channel
        self.max_score: float | None = rule.max_score
        self.max_sentiment: float | None = rule.max_sentiment
        self.min_count: int = rule.min_count
        self.window_days: int = rule.window_days
        # The highest packed score and sentiment codes that count as negative.
        self.score_top, self.sentiment_top = feedback_limits(
            rule.max_score, rule.max_sentiment
        )


class VanishingFeedbackParams(RuleParams):
    def __init__(self, rule: VanishingFeedbackRule) -> None:
        super().__init__(rule, VANISHING_FEEDBACK)
        self.channels: list[str] = list(rule.channels)
        self.channel_mask: int = channel_mask(rule.channels)
        self.min_responses: int = rule.min_responses
        self.min_span_days: int = rule.min_span_days
        self.silence_factor: float = float(rule.silence_factor)
        self.longest_gap_factor: float = float(rule.longest_gap_factor)
        self.min_silent_days: int = rule.min_silent_days
        self.max_usual_interval_days: int = rule.max_usual_interval_days


class BillingRiskParams(RuleParams):
    def __init__(self, rule: BillingRiskRule) -> None:
        super().__init__(rule, BILLING_RISK)
        self.trigger: str = rule.trigger
        self.window_days: int = rule.window_days
        self.grace_days: int = rule.grace_days


class ThresholdParams(RuleParams):
    def __init__(self, rule: ThresholdRule) -> None:
        super().__init__(rule, THRESHOLD)
        self.metric: str = rule.metric
        self.measure: str = rule.measure
        self.match: UsageMatch = rule.match
        self.per: UsageMatch | None = rule.per
        self.series: str | None = series_key(rule.match, rule.measure)
        self.per_series: str | None = (
            None if rule.per is None else series_key(rule.per, rule.measure)
        )
        self.window_days: int = rule.window_days
        self.op: str = rule.op
        self.value: float = float(rule.value)
        self.clear_value: float | None = (
            None if rule.clear_value is None else float(rule.clear_value)
        )
        self.min_denominator: int = rule.min_denominator
        self.min_history_days: int = rule.min_history_days


def series_key(match: UsageMatch, measure: str) -> str | None:
    """Name the customer's daily series a usage filter reads; None for all usage
    events, which every customer keeps as ``CustomerState.usage``."""
    if measure == "events" and match.is_everything:
        return None
    return match.key(measure)  # type: ignore[arg-type]


def params_for(rule: Any) -> RuleParams:
    """Return the compiled copy of a validated rule's fields."""
    if isinstance(rule, InactivityRule):
        return InactivityParams(rule)
    if isinstance(rule, IgnoredFeatureRule):
        return IgnoredFeatureParams(rule)
    if isinstance(rule, DecliningUsageRule):
        return DecliningUsageParams(rule)
    if isinstance(rule, NegativeFeedbackRule):
        return NegativeFeedbackParams(rule)
    if isinstance(rule, VanishingFeedbackRule):
        return VanishingFeedbackParams(rule)
    if isinstance(rule, BillingRiskRule):
        return BillingRiskParams(rule)
    if isinstance(rule, ThresholdRule):
        return ThresholdParams(rule)
    raise TypeError(f"no detector for rule kind {getattr(rule, 'kind', rule)!r}")
