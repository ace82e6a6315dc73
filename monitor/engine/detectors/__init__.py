"""One detector per rule kind: judge a customer's state as of a day, return a Finding.

Detectors read state and never change it; days are whole UTC days and the day
being judged is complete (or, for event-driven kinds, complete up to the event).
One module per family of kinds; this one maps each kind to its detector.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitor.engine.detectors.billing import billing_risk
from monitor.engine.detectors.common import Context, Release
from monitor.engine.detectors.features import ignored_feature
from monitor.engine.detectors.feedback import negative_feedback, vanishing_feedback
from monitor.engine.detectors.usage import (
    declining_usage,
    inactivity,
    quiet_below_age,
    threshold,
)
from monitor.engine.lifecycle import ChurnWarning, Finding
from monitor.state.customer import CustomerState

__all__ = ["DETECTORS", "Context", "Detector", "Release", "quiet_below_age"]

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
