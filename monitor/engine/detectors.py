"""One detector per rule kind: judge a customer's state as of a day, return a Finding.

Detectors read state and never change it; ``at`` days are whole UTC days and the
day being judged is complete (or, for event-driven kinds, complete up to the event).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from monitor.engine.lifecycle import ChurnWarning, Finding
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
from monitor.state.customer import (
    CustomerState,
    DayCounts,
    feedback_limits,
    unpack_feedback,
)

__all__ = ["DETECTORS", "Context", "Release", "quiet_below_age"]

_QUIET = Finding(False)
_HOLD = Finding(None)
# The day fields of a packed feature record (see ``pack_feature``).
_DAY_MASK = (1 << 20) - 1


@functools.lru_cache(maxsize=256)
def _quiet_until(recheck_day: int | None) -> Finding:
    """Return a shared clear finding that asks to look again on ``recheck_day``.

    Only for a customer without an open warning: such a finding is read for its
    recheck day and dropped, so one object per day spares an allocation per call.
    """
    return Finding(False, recheck_day=recheck_day)


@dataclass(frozen=True, slots=True)
class Release:
    feature: str
    day: int
    plans: tuple[str, ...] | None


@dataclass(slots=True)
class Context:
    """What detectors may know beyond the customer: the day and the population."""

    day: int
    guard_active: bool = False
    outage_days: frozenset[int] = frozenset()
    releases: dict[str, tuple[Release, ...]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def _counts_for(
    state: CustomerState, match: UsageMatch | None, measure: str = "events"
) -> DayCounts | None:
    if match is None or (measure == "events" and match.is_everything):
        return state.usage
    return state.series.get(match.key(measure)) if state.series else None  # type: ignore[arg-type]


def _window(
    counts: DayCounts, first: int, last: int, outage: frozenset[int]
) -> tuple[int, int]:
    """Return the total and the number of days counted, leaving out outage days."""
    if not outage:
        return counts.total(first, last), last - first + 1
    total = sum(n for day, n in counts.days(first, last) if day not in outage)
    days = sum(1 for day in range(first, last + 1) if day not in outage)
    return total, days


def declining_usage(
    rule: DecliningUsageRule,
    state: CustomerState,
    ctx: Context,
    warning: ChurnWarning | None,
) -> Finding:
    """Compare the recent daily rate with the customer's own baseline rate."""
    day = ctx.day
    span = rule.recent_days + rule.gap_days + rule.baseline_days
    # Age first: most evaluations are of customers too new to judge.
    if day - state.first_day + 1 < span:
        return _QUIET if warning is None else _HOLD
    counts = _counts_for(state, rule.match, rule.measure)
    if counts is None:
        return _QUIET if warning is None else _HOLD

    recent_first = day - rule.recent_days + 1
    base_last = recent_first - rule.gap_days - 1
    base_first = base_last - rule.baseline_days + 1
    recent, recent_n = _window(counts, recent_first, day, ctx.outage_days)
    base, base_n = _window(counts, base_first, base_last, ctx.outage_days)
    if recent_n == 0 or base_n == 0:
        return _HOLD
    recent_rate, base_rate = recent / recent_n, base / base_n

    # Days without events still lower the recent rate: look again weekly until
    # the recent window holds no events at all.
    quiet_for = day - state.last_usage_day
    recheck = day + 7 if quiet_for < rule.recent_days else None
    if warning is not None:
        # Judge recovery against the baseline the warning opened with: the moving
        # baseline sinks with the decline and would clear it without a recovery.
        reference = float(warning.evidence.get("baseline_per_day", base_rate))
        evidence = _rates(rule, recent_rate, reference)
        _describe_drop(evidence, recent_rate, reference, rule.recent_days)
        recovered = recent_rate >= (1 - rule.recover) * reference
        return Finding(not recovered, evidence, recheck)

    if (
        base_rate < rule.min_baseline_per_day
        or recent_rate > (1 - rule.drop) * base_rate
    ):
        return _quiet_until(recheck)
    # Quasi-Poisson: daily totals are overdispersed (bursty sessions, weekly rhythm),
    # so the spread comes from the customer's own baseline days, never below Poisson.
    expected = base_rate * recent_n
    dispersion = max(1.0, _variance(counts, base_first, base_last, ctx) / base_rate)
    z_score = (recent - expected) / math.sqrt(expected * dispersion)
    if z_score <= -rule.min_z:
        if ctx.guard_active:
            return Finding(None, recheck_day=day + 1)
        evidence = _rates(rule, recent_rate, base_rate)
        _describe_drop(evidence, recent_rate, base_rate, rule.recent_days)
        return Finding(True, evidence, recheck)
    return _quiet_until(recheck)


def _rates(
    rule: DecliningUsageRule, recent_rate: float, base_rate: float
) -> dict[str, Any]:
    """Return the evidence of a comparison; built only when a warning may change."""
    return {
        "recent_per_day": round(recent_rate, 2),
        "baseline_per_day": round(base_rate, 2),
        "recent_days": rule.recent_days,
        "baseline_days": rule.baseline_days,
    }


def _variance(counts: DayCounts, first: int, last: int, ctx: Context) -> float:
    """Return the daily variance around each weekday's own mean.

    Whole-week windows cancel the weekly rhythm in the sums, so only the spread
    left after it is noise.
    """
    by_weekday: dict[int, list[int]] = {}
    for day in range(first, last + 1):
        if day not in ctx.outage_days:
            by_weekday.setdefault(day % 7, []).append(counts.get(day))
    squares, dof = 0.0, 0
    for values in by_weekday.values():
        if len(values) > 1:
            mean = sum(values) / len(values)
            squares += sum((v - mean) ** 2 for v in values)
            dof += len(values) - 1
    return squares / dof if dof else 0.0


def _describe_drop(
    evidence: dict[str, Any], recent: float, baseline: float, recent_days: int
) -> None:
    change = (recent - baseline) / baseline * 100 if baseline else 0.0
    evidence["change_pct"] = round(change, 1)
    evidence["summary"] = (
        f"usage {recent:.1f}/day over the last {recent_days}d "
        f"vs {baseline:.1f}/day baseline ({change:+.0f}%)"
    )


def inactivity(
    rule: InactivityRule,
    state: CustomerState,
    ctx: Context,
    warning: ChurnWarning | None,
) -> Finding:
    """Fire when the customer has not used the product for ``days`` days."""
    if state.last_usage_day < 0:
        return _QUIET
    if state.last_usage_day == ctx.day and warning is None:
        return _quiet_until(ctx.day + rule.days)
    silent_days = ctx.day - state.last_usage_day
    if ctx.outage_days:
        silent_days -= sum(
            1 for d in ctx.outage_days if state.last_usage_day < d <= ctx.day
        )
    if silent_days < rule.days:
        return Finding(False, recheck_day=ctx.day + rule.days - silent_days)
    if warning is None and ctx.guard_active:
        return Finding(None, recheck_day=ctx.day + 1)

    evidence = {
        "days_silent": silent_days,
        "threshold_days": rule.days,
        "summary": f"no usage for {silent_days} days (threshold {rule.days})",
    }
    return Finding(True, evidence)


def _ignored_new(
    rule: IgnoredFeatureRule, state: CustomerState, ctx: Context
) -> tuple[list[str], int | None]:
    ignored: list[str] = []
    recheck: int | None = None
    active = state.last_usage_day > ctx.day - rule.active_within_days
    for release in ctx.releases.get(rule.name, ()):
        if not release.day <= ctx.day <= release.day + rule.max_age_days:
            continue
        if release.plans is not None and state.plan not in release.plans:
            continue
        if state.feature_use(release.feature) is not None:
            continue
        deadline = max(release.day, state.first_day) + rule.after_days
        if ctx.day < deadline:
            recheck = deadline if recheck is None else min(recheck, deadline)
        elif active:
            ignored.append(release.feature)
    return ignored, recheck


def _abandoned(
    rule: IgnoredFeatureRule, state: CustomerState, ctx: Context
) -> tuple[list[str], int | None]:
    abandoned: list[str] = []
    recheck: int | None = None
    features, day = state.features, ctx.day
    if not features or state.last_usage_day <= day - rule.active_within_days:
        return abandoned, recheck
    min_use_days, factor = rule.min_use_days, rule.silence_factor
    after_days, max_age_days = rule.after_days, rule.max_age_days
    for feature, packed in features.items():
        # Unpacked inline (see pack_feature): this loop runs for every active
        # customer every day it uses the product.
        used = packed >> 40
        if used < min_use_days:
            continue
        first, last = packed & _DAY_MASK, (packed >> 20) & _DAY_MASK
        usual_gap = (last - first) / (used - 1)
        limit = math.ceil(max(factor * usual_gap, after_days))
        silent = day - last
        if limit <= silent <= max_age_days:
            abandoned.append(feature)
        elif silent < limit:
            recheck = min(recheck or last + limit, last + limit)
    return abandoned, recheck


def ignored_feature(
    rule: IgnoredFeatureRule,
    state: CustomerState,
    ctx: Context,
    warning: ChurnWarning | None,
) -> Finding:
    """Fire on new features left untouched, or regular features abandoned."""
    if rule.mode == "new":
        features, recheck = _ignored_new(rule, state, ctx)
        what = "not used since launch"
    else:
        features, recheck = _abandoned(rule, state, ctx)
        what = "abandoned after regular use"
    if not features:
        if warning is None:
            return _quiet_until(recheck)
        return Finding(False, {"summary": "features in use again"}, recheck)
    if warning is None and ctx.guard_active:
        return Finding(None, recheck_day=ctx.day + 1)

    evidence = {"features": features, "summary": f"{', '.join(features)}: {what}"}
    return Finding(True, evidence, recheck)


def vanishing_feedback(
    rule: VanishingFeedbackRule,
    state: CustomerState,
    ctx: Context,
    warning: ChurnWarning | None,
) -> Finding:
    """Fire when a steady feedback cadence stops for several usual intervals."""
    days = state.feedback_days(rule.channels)
    if len(days) < rule.min_responses or days[-1] - days[0] < rule.min_span_days:
        return _QUIET
    # Mean gap: a Poisson stream with this rate stays silent for k gaps by chance
    # with probability e^-k, which is what silence_factor sets.
    usual = (days[-1] - days[0]) / (len(days) - 1)
    if usual > rule.max_usual_interval_days:
        return _QUIET

    # Bursty feedback (a ticket and its CSAT) shrinks the mean gap, so the silence
    # must also be clearly longer than any gap this customer has had before.
    longest = max(b - a for a, b in itertools.pairwise(days))
    limit = math.ceil(
        max(
            rule.silence_factor * max(usual, 1),
            rule.longest_gap_factor * longest,
            rule.min_silent_days,
        )
    )
    silent = ctx.day - days[-1]
    if silent < limit:
        return Finding(False, recheck_day=days[-1] + limit)
    if warning is None and ctx.guard_active:
        return Finding(None, recheck_day=ctx.day + 1)
    evidence = {
        "days_silent": silent,
        "usual_interval_days": round(usual, 1),
        "responses_seen": len(days),
        "summary": f"no feedback for {silent} days; usually every {usual:.0f} days",
    }
    return Finding(True, evidence)


def _negatives(rule: NegativeFeedbackRule, packed: list[int]) -> list[int]:
    """Return the packed responses that count as negative under the rule."""
    if rule.max_score is None and rule.max_sentiment is None:
        return packed
    score_top, sentiment_top = feedback_limits(rule.max_score, rule.max_sentiment)
    return [
        p for p in packed if (p >> 8) & 0xFF <= score_top or p & 0xFF <= sentiment_top
    ]


def negative_feedback(
    rule: NegativeFeedbackRule,
    state: CustomerState,
    ctx: Context,
    warning: ChurnWarning | None,
) -> Finding:
    """Fire on enough negative responses within the window, unless answered since."""
    first = ctx.day - rule.window_days + 1
    recent = state.feedback_between(first, ctx.day, rule.channel)
    negative = _negatives(rule, recent)
    # min_count >= 1, so both lists hold a response here; equal packed
    # responses get equal verdicts, so comparing values tells if the latest counts.
    if len(negative) < rule.min_count or negative[-1] != recent[-1]:
        return _QUIET

    _, channel, score, sentiment = unpack_feedback(negative[-1])
    evidence: dict[str, Any] = {
        "negative_responses": len(negative),
        "window_days": rule.window_days,
        "channel": channel,
    }
    if score is not None:
        evidence["last_score"] = score
    if sentiment is not None:
        evidence["last_sentiment"] = round(sentiment, 2)
    evidence["summary"] = _feedback_summary(evidence)
    recheck = (negative[-rule.min_count] >> 24) + rule.window_days
    return Finding(True, evidence, recheck)


def _feedback_summary(evidence: dict[str, Any]) -> str:
    parts = [f"{evidence['negative_responses']} negative {evidence['channel']}"]
    if "last_score" in evidence:
        parts.append(f"last score {evidence['last_score']:g}")
    if "last_sentiment" in evidence:
        parts.append(f"sentiment {evidence['last_sentiment']:+.2f}")
    return ", ".join(parts) + f" in {evidence['window_days']}d"


def billing_risk(
    rule: BillingRiskRule,
    state: CustomerState,
    ctx: Context,
    warning: ChurnWarning | None,
) -> Finding:
    """Fire on a recent downgrade or failed payment that was not put right."""
    if rule.trigger == "payment_failed":
        at, fixed_at = state.payment_failed_at, state.payment_ok_at
        what = "payment failed"
    else:
        at, fixed_at = state.downgraded_at, state.upgraded_at
        what = "downgraded"
    if at < 0 or fixed_at > at:
        return _QUIET
    day = int(at // 86_400)
    if ctx.day >= day + rule.window_days:
        return _QUIET
    if ctx.day < day + rule.grace_days:
        # Dunning retries usually fix a failed payment within days; wait for them.
        return Finding(False, recheck_day=day + rule.grace_days)

    evidence = {
        "days_ago": ctx.day - day,
        "plan": state.plan,
        "mrr": state.mrr,
        "summary": f"{what} {ctx.day - day} days ago (plan {state.plan or '?'})",
    }
    return Finding(True, evidence, day + rule.window_days)


def threshold(
    rule: ThresholdRule,
    state: CustomerState,
    ctx: Context,
    warning: ChurnWarning | None,
) -> Finding:
    """Compare a per-customer metric with the rule's threshold, with hysteresis."""
    day = ctx.day
    if day - state.first_day + 1 < rule.min_history_days:
        return _QUIET
    value = _metric(rule, state, day)
    if value is None:
        return _HOLD

    limit = rule.value
    if warning is not None and rule.clear_value is not None:
        limit = rule.clear_value
    holds = _COMPARE[rule.op](value, limit)
    counts = _counts_for(state, rule.match, rule.measure)
    busy = counts is not None and counts.last_nonzero(day) > day - rule.window_days
    recheck = day + 1 if busy or warning is not None else None
    evidence = {
        "metric": rule.metric,
        "value": round(value, 3),
        "threshold": limit,
        "window_days": rule.window_days,
        "summary": f"{rule.metric} {value:.2f} {rule.op} {limit:g}",
    }
    return Finding(
        holds, evidence if holds else {"summary": evidence["summary"]}, recheck
    )


def _metric(rule: ThresholdRule, state: CustomerState, day: int) -> float | None:
    first = day - rule.window_days + 1
    counts = _counts_for(state, rule.match, rule.measure)
    total = counts.total(first, day) if counts is not None else 0
    if rule.metric == "count":
        return float(total)
    if rule.metric == "ratio":
        per = _counts_for(state, rule.per, rule.measure)
        denominator = per.total(first, day) if per is not None else 0
        return None if denominator < rule.min_denominator else total / denominator
    if rule.metric == "days_since":
        last = counts.last_nonzero(day) if counts is not None else -1
        return float(day - (last if last >= 0 else state.first_day))
    age = min(day - state.first_day + 1, rule.window_days)
    return total / age * 30


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def quiet_below_age(rule: Any) -> int:
    """Return the age in days under which the rule stays quiet; 0 if none.

    Quiet means a clear finding and no recheck for a customer without an open
    warning of the rule, so the engine may leave the detector uncalled.
    """
    if isinstance(rule, DecliningUsageRule):
        return rule.recent_days + rule.gap_days + rule.baseline_days
    if isinstance(rule, ThresholdRule):
        return rule.min_history_days
    return 0


Detector = Callable[[Any, CustomerState, Context, ChurnWarning | None], Finding]
DETECTORS: dict[str, Detector] = {
    "declining_usage": declining_usage,
    "inactivity": inactivity,
    "ignored_feature": ignored_feature,
    "vanishing_feedback": vanishing_feedback,
    "negative_feedback": negative_feedback,
    "billing_risk": billing_risk,
    "threshold": threshold,
}
