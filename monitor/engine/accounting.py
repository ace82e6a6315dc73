"""Churn accounting per period and plan, and rolling NPS and CSAT counts.

Counts only; rates are derived by readers (summary, recording rules) so that
figures from several instances add up.
"""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal

from monitor.state.customer import SECONDS_PER_DAY, DayCounts

__all__ = [
    "ACTIVE_STATUSES",
    "ChurnLedger",
    "FeedbackStats",
    "PeriodFigures",
    "Subscription",
    "period_of",
]

logger = logging.getLogger(__name__)

PeriodKind = Literal["month", "week", "quarter"]
ACTIVE_STATUSES: Final = frozenset(
    {"started", "renewed", "upgraded", "downgraded", "payment_failed", "reactivated"}
)
_EPOCH: Final = date(1970, 1, 1)


def _date(day: int) -> date:
    return _EPOCH + timedelta(days=day)


def period_of(day: int, kind: PeriodKind) -> tuple[str, int]:
    """Return the label and first day of the period holding ``day``."""
    when = _date(day)
    if kind == "week":
        start = when - timedelta(days=when.weekday())
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}", (start - _EPOCH).days
    if kind == "quarter":
        month = 3 * ((when.month - 1) // 3) + 1
        start = date(when.year, month, 1)
        return f"{when.year}-Q{(month - 1) // 3 + 1}", (start - _EPOCH).days
    start = date(when.year, when.month, 1)
    return f"{when.year}-{when.month:02d}", (start - _EPOCH).days


def _period_days(start_day: int, kind: PeriodKind) -> int:
    when = _date(start_day)
    if kind == "week":
        return 7
    months = 3 if kind == "quarter" else 1
    total = 0
    for i in range(months):
        year, month = divmod(when.month - 1 + i, 12)
        total += calendar.monthrange(when.year + year, month + 1)[1]
    return total


@dataclass(slots=True)
class PeriodFigures:
    """Customers and MRR at a period's start and lost in it, per plan."""

    label: str
    start_day: int
    partial: bool = False
    at_start: dict[str, int] = field(default_factory=dict)
    mrr_at_start: dict[str, float] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)
    mrr_lost: dict[str, float] = field(default_factory=dict)
    mrr_contraction: dict[str, float] = field(default_factory=dict)

    def churn_rate(self, plan: str | None = None) -> float | None:
        """Return lost / at start x 100 for one plan or all, None without a base."""
        start = self.at_start.get(plan, 0) if plan else sum(self.at_start.values())
        lost = self.lost.get(plan, 0) if plan else sum(self.lost.values())
        return None if start == 0 else lost / start * 100

    def plans(self) -> list[str]:
        return sorted(set(self.at_start) | set(self.lost))


Subscription = tuple[bool, str, float]
"""A customer's subscription as the ledger sees it: active, plan, MRR."""


class ChurnLedger:
    """Follow subscriptions in event time and count churn per period and plan.

    Keeps running totals per plan, not a copy of every customer: the engine passes
    each customer's subscription before and after an event.
    """

    def __init__(self, kind: PeriodKind = "month", grace_days: int = 7) -> None:
        self.kind = kind
        self.grace_days = grace_days
        self.active: dict[str, int] = {}
        self.active_mrr: dict[str, float] = {}
        self.pending: dict[int, list[tuple[str, str, float, str]]] = {}
        self.cancel_day: dict[str, int] = {}
        self.periods: dict[str, PeriodFigures] = {}
        self.current: PeriodFigures | None = None

    def apply(
        self,
        customer_id: str,
        event_time: float,
        status: str,
        before: Subscription,
        after: Subscription,
    ) -> None:
        """Record one subscription event; called in each customer's event order."""
        day = int(event_time // SECONDS_PER_DAY)
        self._ensure_period(day)
        was_active, old_plan, old_mrr = before
        is_active, plan, mrr = after
        if status == "downgraded" and mrr < old_mrr:
            self._add(self._figures(day).mrr_contraction, old_plan, old_mrr - mrr)
        if status == "cancelled" and was_active:
            self.cancel_day[customer_id] = day
            label = period_of(day, self.kind)[0]
            self.pending.setdefault(day + self.grace_days, []).append(
                (customer_id, old_plan, old_mrr, label)
            )
        elif status in ("started", "reactivated"):
            self.cancel_day.pop(customer_id, None)

        if was_active:
            self._add_int(self.active, old_plan, -1)
            self._add(self.active_mrr, old_plan, -old_mrr)
        if is_active:
            self._add_int(self.active, plan, 1)
            self._add(self.active_mrr, plan, mrr)

    def close_day(self, day: int) -> None:
        """Confirm losses whose grace ends today and open the next period."""
        self._ensure_period(day)
        for customer_id, plan, mrr, label in self.pending.pop(day, ()):
            if self.cancel_day.get(customer_id) is None:
                continue
            del self.cancel_day[customer_id]
            figures = self.periods.get(label)
            if figures is not None:
                self._add_int(figures.lost, plan, 1)
                self._add(figures.mrr_lost, plan, mrr)
        label, start = period_of(day + 1, self.kind)
        if label not in self.periods:
            self._begin(label, start, partial=False)

    def _ensure_period(self, day: int) -> None:
        if self.current is None:
            label, start = period_of(day, self.kind)
            self._begin(label, start, partial=day > start)

    def _figures(self, day: int) -> PeriodFigures:
        label, start = period_of(day, self.kind)
        figures = self.periods.get(label)
        return figures if figures is not None else self._begin(label, start, True)

    def _begin(self, label: str, start: int, partial: bool) -> PeriodFigures:
        figures = PeriodFigures(label, start, partial=partial)
        figures.at_start = {plan: n for plan, n in self.active.items() if n}
        figures.mrr_at_start = {
            plan: mrr for plan, mrr in self.active_mrr.items() if self.active.get(plan)
        }
        self.periods[label] = figures
        if self.current is None or start > self.current.start_day:
            self.current = figures
            logger.info("churn period opened: period=%s partial=%s", label, partial)
        return figures

    def previous(self) -> PeriodFigures | None:
        """Return the period before the current one, if it was seen."""
        if self.current is None:
            return None
        label = period_of(self.current.start_day - 1, self.kind)[0]
        return self.periods.get(label)

    def period_end_day(self, figures: PeriodFigures) -> int:
        return figures.start_day + _period_days(figures.start_day, self.kind) - 1

    def active_count(self) -> int:
        return sum(self.active.values())

    @staticmethod
    def _add(table: dict[str, float], plan: str, amount: float) -> None:
        table[plan] = round(table.get(plan, 0.0) + amount, 2)

    @staticmethod
    def _add_int(table: dict[str, int], plan: str, amount: int) -> None:
        table[plan] = table.get(plan, 0) + amount


class FeedbackStats:
    """Daily NPS and CSAT answers by category, for a rolling window."""

    NPS = ("promoter", "passive", "detractor")
    CSAT = ("satisfied", "neutral", "unsatisfied")

    def __init__(self, window_days: int = 90) -> None:
        self.window_days = window_days
        self.counts = {
            f"{channel}:{c}": DayCounts(0)
            for channel, cats in (("nps", self.NPS), ("csat", self.CSAT))
            for c in cats
        }

    def record(self, channel: str, score: float | None, day: int) -> None:
        if score is None or channel not in ("nps", "csat"):
            return
        if channel == "nps":
            category = (
                "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
            )
        else:
            category = (
                "satisfied"
                if score >= 4
                else "neutral"
                if score >= 3
                else "unsatisfied"
            )
        counts = self.counts[f"{channel}:{category}"]
        if counts.base_day == 0:
            counts.base_day = day
        counts.add(day, 1, self.window_days + 2)

    def window(self, day: int) -> dict[str, int]:
        """Return responses per ``channel:category`` in the window ending on ``day``."""
        first = day - self.window_days + 1
        return {key: c.total(first, day) for key, c in self.counts.items()}

    def nps(self, day: int) -> float | None:
        w = self.window(day)
        total = w["nps:promoter"] + w["nps:passive"] + w["nps:detractor"]
        return (
            None
            if not total
            else (w["nps:promoter"] - w["nps:detractor"]) / total * 100
        )

    def csat(self, day: int) -> float | None:
        w = self.window(day)
        total = w["csat:satisfied"] + w["csat:neutral"] + w["csat:unsatisfied"]
        return None if not total else w["csat:satisfied"] / total * 100


def utc_day_start(day: int) -> datetime:
    return datetime.fromtimestamp(day * SECONDS_PER_DAY, tz=UTC)
