"""Billing detector: downgrades and failed payments not put right."""

from __future__ import annotations

from monitor.engine.detectors.common import (
    QUIET,
    Context,
)
from monitor.engine.detectors.params import BillingRiskParams
from monitor.engine.lifecycle import ChurnWarning, Finding
from monitor.state.customer import (
    CustomerState,
)

__all__ = ["billing_risk"]


def billing_risk(
    rule: BillingRiskParams,
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
        return QUIET
    day = int(at // 86_400)
    if ctx.day >= day + rule.window_days:
        return QUIET
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
