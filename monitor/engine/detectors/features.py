"""Feature detectors: new features left untouched, regular ones abandoned."""

from __future__ import annotations

from monitor.engine.detectors.common import (
    DAY_MASK,
    Context,
    quiet_until,
)
from monitor.engine.detectors.params import IgnoredFeatureParams, RuleParams
from monitor.engine.lifecycle import ChurnWarning, Finding
from monitor.state.customer import (
    CustomerState,
    feature_name,
)

__all__ = ["ignored_feature", "quiet_below_use"]


def _ignored_new(
    rule: IgnoredFeatureParams, state: CustomerState, ctx: Context
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
    rule: IgnoredFeatureParams, state: CustomerState, ctx: Context
) -> tuple[list[str], int | None]:
    abandoned: list[str] = []
    recheck: int | None = None
    features, day = state.features, ctx.day
    if not len(features) or state.last_usage_day <= day - rule.active_within_days:
        return abandoned, recheck
    if state.feature_days_max < rule.min_use_days:
        # No feature was used on enough days to count as regular.
        return abandoned, recheck
    min_use_days, factor = rule.min_use_days, rule.silence_factor
    after_days, max_age_days = rule.after_days, rule.max_age_days
    for index in range(1, len(features), 2):
        # Unpacked inline (see pack_feature): this loop runs for every active
        # customer with a regular feature every day it uses the product.
        packed = features[index]
        used = packed >> 40
        if used < min_use_days:
            continue
        first, last = packed & DAY_MASK, (packed >> 20) & DAY_MASK
        # ceil(max(factor x usual gap, after_days)) without generic calls.
        wait = factor * (float(last - first) / float(used - 1))
        limit = int(wait) if wait > after_days else after_days
        if limit < wait:
            limit += 1
        silent = day - last
        if limit <= silent <= max_age_days:
            # In order of first use, as the features are kept.
            abandoned.append(feature_name(features[index - 1]))
        elif silent < limit and (recheck is None or last + limit < recheck):
            recheck = last + limit
    return abandoned, recheck


def ignored_feature(
    rule: IgnoredFeatureParams,
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
            return quiet_until(recheck)
        return Finding(False, {"summary": "features in use again"}, recheck)
    if warning is None and ctx.guard_active:
        return Finding(None, recheck_day=ctx.day + 1)

    evidence = {"features": features, "summary": f"{', '.join(features)}: {what}"}
    return Finding(True, evidence, recheck)


def quiet_below_use(rule: RuleParams) -> int:
    """Return the days of use of one feature under which the rule stays quiet; 0
    if none.

    An abandoned-feature rule finds nothing, and asks for no recheck, while no
    feature was used on ``min_use_days`` days (see ``_abandoned``), so the
    engine may leave it uncalled for a customer without its warning.
    """
    if isinstance(rule, IgnoredFeatureParams) and rule.mode != "new":
        return rule.min_use_days
    return 0
