"""Score rules against the cancellations in a history: recall, precision, lead time.

Replays through the same engine as ``replay``; reads nothing but the history.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.decode.events import SubscriptionEvent
from monitor.engine.core import Engine
from monitor.engine.loader import RuleSet
from monitor.settings import EngineSettings
from monitor.state.customer import SECONDS_PER_DAY

__all__ = ["RuleScore", "backtest", "score"]

_SET = "(all rules, severity >= warning)"


@dataclass(frozen=True, slots=True)
class RuleScore:
    """How well one rule, or the whole set, foretold the cancellations."""

    rule: str
    warnings: int
    churners: int
    caught: int
    recall: float | None
    precision: float | None
    median_lead_days: float | None
    false_per_1000_month: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "warnings": self.warnings,
            "churners": self.churners,
            "caught": self.caught,
            "recall": _round(self.recall),
            "precision": _round(self.precision),
            "median_lead_days": _round(self.median_lead_days),
            "false_per_1000_customers_month": _round(self.false_per_1000_month),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def churners_of(
    cancels: list[tuple[str, float, str]], grace_days: int
) -> dict[str, float]:
    """Return each lost customer's cancellation time (not back within the grace)."""
    lost: dict[str, float] = {}
    pending: dict[str, float] = {}
    for customer_id, at, status in sorted(cancels, key=lambda c: c[1]):
        if status == "cancelled":
            pending[customer_id] = at
        elif (
            customer_id in pending
            and at - pending[customer_id] <= grace_days * SECONDS_PER_DAY
        ):
            del pending[customer_id]
    for customer_id, at in pending.items():
        lost.setdefault(customer_id, at)
    return lost


def score(
    name: str,
    opened: list[tuple[str, float]],
    churners: dict[str, float],
    customers: int,
    span: tuple[float, float],
    horizon_days: int,
) -> RuleScore:
    """Score warnings ``(customer_id, opened_at)`` against the churners."""
    horizon = horizon_days * SECONDS_PER_DAY
    first_warning: dict[str, float] = {}
    for customer_id, at in opened:
        cancel = churners.get(customer_id)
        if cancel is not None and cancel - horizon <= at < cancel:
            first_warning[customer_id] = min(at, first_warning.get(customer_id, at))
    leads = [(churners[c] - at) / SECONDS_PER_DAY for c, at in first_warning.items()]

    judged: dict[str, bool] = {}
    false_warnings = 0
    for customer_id, at in opened:
        cancel = churners.get(customer_id)
        hit = cancel is not None and at < cancel <= at + horizon
        if not hit and at + horizon > span[1]:
            continue  # too close to the end of the history to judge
        judged[customer_id] = judged.get(customer_id, False) or hit
        false_warnings += not hit
    months = max((span[1] - span[0]) / SECONDS_PER_DAY / 30.44, 1e-9)

    return RuleScore(
        rule=name,
        warnings=len(opened),
        churners=len(churners),
        caught=len(first_warning),
        recall=len(first_warning) / len(churners) if churners else None,
        precision=sum(judged.values()) / len(judged) if judged else None,
        median_lead_days=statistics.median(leads) if leads else None,
        false_per_1000_month=(
            false_warnings / customers / months * 1000 if customers else None
        ),
    )


def backtest(
    lines: Iterable[bytes],
    rules: RuleSet,
    settings: EngineSettings | None = None,
    horizon_days: int = 60,
) -> list[RuleScore]:
    """Replay a history and score each rule and the whole set."""
    records: list[dict[str, Any]] = []
    engine = Engine(rules, settings, sink=records.append)
    cancels: list[tuple[str, float, str]] = []
    for raw in lines:
        event = engine.process(raw)
        if isinstance(event, SubscriptionEvent) and event.status in (
            "cancelled",
            "started",
            "reactivated",
        ):
            cancels.append((event.customer_id, event.event_time, event.status))
    if engine.clock.max_event_time is not None:
        engine.advance_to(engine.clock.max_event_time)

    first = min((c[1] for c in cancels), default=0.0)
    span = (first, engine.clock.max_event_time or first)
    churners = churners_of(cancels, engine.settings.churn_grace_days)
    opened = [r for r in records if r["status"] == "opened"]
    severities = {r.name: r.severity for r in rules.rules}
    by_rule: dict[str, list[tuple[str, float]]] = {r.name: [] for r in rules.rules}
    for record in opened:
        by_rule[record["rule"]].append((record["customer_id"], _epoch(record["at"])))
    customers = len(engine.customers)

    scores = [
        score(name, found, churners, customers, span, horizon_days)
        for name, found in sorted(by_rule.items())
    ]
    serious = [
        item
        for name, found in by_rule.items()
        if severities[name] != "info"
        for item in found
    ]
    scores.append(score(_SET, serious, churners, customers, span, horizon_days))
    return scores
