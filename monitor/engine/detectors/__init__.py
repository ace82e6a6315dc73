"""One detector per rule kind: judge a customer's state as of a day, return a Finding.

Detectors read state and never change it; days are whole UTC days and the day
being judged is complete (or, for event-driven kinds, complete up to the event).
One module per family of kinds; this one dispatches a rule to its detector.
"""

from __future__ import annotations

from typing import cast

from monitor.engine.detectors.billing import billing_risk
from monitor.engine.detectors.common import Context, Release
from monitor.engine.detectors.features import ignored_feature, quiet_below_use
from monitor.engine.detectors.feedback import negative_feedback, vanishing_feedback
from monitor.engine.detectors.params import (
    BILLING_RISK,
    DECLINING_USAGE,
    IGNORED_FEATURE,
    INACTIVITY,
    NEGATIVE_FEEDBACK,
    VANISHING_FEEDBACK,
    BillingRiskParams,
    DecliningUsageParams,
    IgnoredFeatureParams,
    InactivityParams,
    NegativeFeedbackParams,
    RuleParams,
    ThresholdParams,
    VanishingFeedbackParams,
    params_for,
)
from monitor.engine.detectors.usage import (
    declining_usage,
    inactivity,
    quiet_below_age,
    quiet_while_active,
    silence_reaches,
    threshold,
)
from monitor.engine.lifecycle import ChurnWarning, Finding
from monitor.state.customer import CustomerState

__all__ = [
    "Context",
    "Release",
    "RuleParams",
    "detect",
    "params_for",
    "quiet_below_age",
    "quiet_below_use",
    "quiet_while_active",
    "silence_reaches",
]


def detect(
    rule: RuleParams,
    state: CustomerState,
    ctx: Context,
    warning: ChurnWarning | None,
) -> Finding:
    """Run the detector of the rule's kind.

    Plain branches on the kind code rather than a table of functions: compiled,
    each branch is a direct call, while calling a function held in a table goes
    through Python.
    """
    code = rule.code
    if code == INACTIVITY:
        return inactivity(cast(InactivityParams, rule), state, ctx, warning)
    if code == IGNORED_FEATURE:
        return ignored_feature(cast(IgnoredFeatureParams, rule), state, ctx, warning)
    if code == DECLINING_USAGE:
        return declining_usage(cast(DecliningUsageParams, rule), state, ctx, warning)
    if code == NEGATIVE_FEEDBACK:
        return negative_feedback(
            cast(NegativeFeedbackParams, rule), state, ctx, warning
        )
    if code == VANISHING_FEEDBACK:
        return vanishing_feedback(
            cast(VanishingFeedbackParams, rule), state, ctx, warning
        )
    if code == BILLING_RISK:
        return billing_risk(cast(BillingRiskParams, rule), state, ctx, warning)
    return threshold(cast(ThresholdParams, rule), state, ctx, warning)
