"""One detector per rule kind: judge a customer's state as of a day, return a Finding.

Detectors read state and never change it; days are whole UTC days and the day
being judged is complete (or, for event-driven kinds, complete up to the event).
One module per family of kinds; this one dispatches a rule to its detector.
"""

from __future__ import annotations

from typing import Any

from monitor.engine.detectors.billing import billing_risk
from monitor.engine.detectors.common import Context, Release
from monitor.engine.detectors.features import ignored_feature
from monitor.engine.detectors.feedback import negative_feedback, vanishing_feedback
from monitor.engine.detectors.usage import (
    declining_usage,
    inactivity,
    quiet_below_age,
    quiet_while_active,
    silence_reaches,
    threshold,
)
from monitor.engine.lifecycle import ChurnWarning, Finding
from monitor.engine.schema import (
    BillingRiskRule,
    DecliningUsageRule,
    IgnoredFeatureRule,
    InactivityRule,
    NegativeFeedbackRule,
    ThresholdRule,
    VanishingFeedbackRule,
)
from monitor.state.customer import CustomerState

__all__ = [
    "Context",
    "Release",
    "detect",
    "kind_code",
    "quiet_below_age",
    "quiet_while_active",
    "silence_reaches",
]


# The rule classes in the order of their codes. An isinstance test against a
# pydantic class goes through its metaclass, so the engine works out each
# rule's code once and dispatches on that small int.
_KINDS: tuple[type, ...] = (
    InactivityRule,
    IgnoredFeatureRule,
    DecliningUsageRule,
    NegativeFeedbackRule,
    VanishingFeedbackRule,
    BillingRiskRule,
    ThresholdRule,
)


def kind_code(rule: Any) -> int:
    """Return the code of the rule's kind, for ``detect``."""
    for code, cls in enumerate(_KINDS):
        if isinstance(rule, cls):
            return code
    raise TypeError(f"no detector for rule kind {getattr(rule, 'kind', rule)!r}")


def detect(
    rule: Any,
    state: CustomerState,
    ctx: Context,
    warning: ChurnWarning | None,
    code: int = -1,
) -> Finding:
    """Run the detector of the rule's kind (``code`` from ``kind_code`` if known).

    Plain branches rather than a table of functions: compiled, each branch is a
    direct call, while calling a function held in a table goes through Python.
    """
    if code < 0:
        code = kind_code(rule)
    if code == 0:
        return inactivity(rule, state, ctx, warning)
    if code == 1:
        return ignored_feature(rule, state, ctx, warning)
    if code == 2:
        return declining_usage(rule, state, ctx, warning)
    if code == 3:
        return negative_feedback(rule, state, ctx, warning)
    if code == 4:
        return vanishing_feedback(rule, state, ctx, warning)
    if code == 5:
        return billing_risk(rule, state, ctx, warning)
    return threshold(rule, state, ctx, warning)
