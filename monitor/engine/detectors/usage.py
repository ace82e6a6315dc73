"""Usage detectors: declining usage, inactivity, and user-written thresholds."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final, TypeGuard

from monitor.engine.detectors.common import (
    HOLD,
    QUIET,
    Context,
    counts_for,
    quiet_until,
    window,
)
from monitor.engine.detectors.params import (
    DecliningUsageParams,
    InactivityParams,
    RuleParams,
    ThresholdParams,
)
from monitor.engine.lifecycle import ChurnWarning, Finding
from monitor.state.customer import (
    CustomerState,
    DayCounts,
)

__all__ = [
    "declining_usage",
    "inactivity",
    "quiet_below_age",
    "quiet_while_active",
    "silence_reaches",
    "threshold",
]


def declining_usage(
    rule: DecliningUsageParams,
    state: CustomerState,
    ctx: Context,
    warning: ChurnWarning | None,
) -> Finding:
    """Compare the recent daily rate with the customer's own baseline rate."""
    day = ctx.day
    span = rule.recent_days + rule.gap_days + rule.baseline_days
    # Age first: most evaluations are of customers too new to judge.
    if day - state.first_day + 1 < span:
        return QUIET if warning is None else HOLD
    counts = counts_for(state, rule.series)
    if counts is None:
        return QUIET if warning is None else HOLD
    if (
        warning is None
        and not ctx.outage_days
        and counts.kept / rule.baseline_days < rule.min_baseline_per_day
    ):
        # All the counts kept would not make the minimum baseline: the verdict
        # the full comparison below reaches, found at once. No recheck: the sum
        # kept grows only with new usage, which brings the customer back to be
        # judged. (Outage days cannot lift the baseline before then: none was
        # declared yet, and one declared later reaches the baseline window only
        # after the weekly rechecks would have ended.)
        return QUIET

    recent_first = day - rule.recent_days + 1
    base_last = recent_first - rule.gap_days - 1
    base_first = base_last - rule.baseline_days + 1
    recent, recent_n = window(counts, recent_first, day, ctx.outage_days)
    base, base_n = window(counts, base_first, base_last, ctx.outage_days)
    if recent_n == 0 or base_n == 0:
        return HOLD
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
        return quiet_until(recheck)
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
    return quiet_until(recheck)


def _rates(
    rule: DecliningUsageParams, recent_rate: float, base_rate: float
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
    rule: InactivityParams,
    state: CustomerState,
    ctx: Context,
    warning: ChurnWarning | None,
) -> Finding:
    """Fire when the customer has not used the product for ``days`` days."""
    if state.last_usage_day < 0:
        return QUIET
    if state.last_usage_day == ctx.day and warning is None:
        return quiet_until(ctx.day + rule.days)
    silent_days = ctx.day - state.last_usage_day
    if ctx.outage_days:
        silent_days -= sum(
            1 for d in ctx.outage_days if state.last_usage_day < d <= ctx.day
        )
    if silent_days < rule.days:
        recheck = ctx.day + rule.days - silent_days
        # A shared clear finding unless it may resolve a warning (see quiet_until).
        if warning is None:
            return quiet_until(recheck)
        return Finding(False, recheck_day=recheck)
    if warning is None and ctx.guard_active:
        return Finding(None, recheck_day=ctx.day + 1)

    evidence = {
        "days_silent": silent_days,
        "threshold_days": rule.days,
        "summary": f"no usage for {silent_days} days (threshold {rule.days})",
    }
    return Finding(True, evidence)


def threshold(
    rule: ThresholdParams,
    state: CustomerState,
    ctx: Context,
    warning: ChurnWarning | None,
) -> Finding:
    """Compare a per-customer metric with the rule's threshold, with hysteresis."""
    day = ctx.day
    if day - state.first_day + 1 < rule.min_history_days:
        return QUIET
    value = _metric(rule, state, day)
    if value is None:
        return HOLD

    limit = rule.value
    if warning is not None and rule.clear_value is not None:
        limit = rule.clear_value
    holds = _COMPARE[rule.op](value, limit)
    counts = counts_for(state, rule.series)
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


def _metric(rule: ThresholdParams, state: CustomerState, day: int) -> float | None:
    first = day - rule.window_days + 1
    counts = counts_for(state, rule.series)
    total = counts.total(first, day) if counts is not None else 0
    if rule.metric == "count":
        return float(total)
    if rule.metric == "ratio":
        per = state.usage if rule.per is None else counts_for(state, rule.per_series)
        denominator = per.total(first, day) if per is not None else 0
        return None if denominator < rule.min_denominator else total / denominator
    if rule.metric == "days_since":
        last = counts.last_nonzero(day) if counts is not None else -1
        return float(day - (last if last >= 0 else state.first_day))
    age = min(day - state.first_day + 1, rule.window_days)
    return total / age * 30


_COMPARE: Final[dict[str, Callable[[float, float], bool]]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def quiet_while_active(rule: RuleParams) -> TypeGuard[InactivityParams]:
    """Say whether a run for an active customer without the rule's warning only
    asks to look again, at a day that a recheck already pending cannot pass.

    True of inactivity: on a day of use it asks for that day plus ``days``. A
    recheck asked for earlier falls before that, and each run from it asks
    for a day no later than the first day the silence can reach ``days``, so
    the chain lands on that day and the new request adds nothing.
    """
    return isinstance(rule, InactivityParams)


def silence_reaches(rule: InactivityParams, state: CustomerState) -> int:
    """Return the day an inactivity rule asked for on the customer's last day of
    use (the first day its silence can reach ``days``), or -1 if it never used."""
    if state.last_usage_day < 0:
        return -1
    return state.last_usage_day + rule.days


def quiet_below_age(rule: RuleParams) -> int:
    """Return the age in days under which the rule stays quiet; 0 if none.

    Quiet means a clear finding and no recheck for a customer without an open
    warning of the rule, so the engine may leave the detector uncalled.
    """
    if isinstance(rule, DecliningUsageParams):
        return rule.recent_days + rule.gap_days + rule.baseline_days
    if isinstance(rule, ThresholdParams):
        return rule.min_history_days
    return 0
