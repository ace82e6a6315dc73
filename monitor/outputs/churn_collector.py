"""Churn figures for Prometheus, read from the engines at scrape time.

Only reads engines, never changes them; a scrape costs O(open warnings + plans),
not O(customers), and nothing is paid per event. Past 300 lines: one reading of
the engines feeds every churn family, and they stay together with it.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.metrics_core import (
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from monitor.engine.accounting import PeriodFigures
from monitor.engine.core import Engine
from monitor.state.customer import SECONDS_PER_DAY

__all__ = ["HEALTH_BUCKETS", "ChurnCollector", "WarningSeries"]

logger = logging.getLogger(__name__)

HEALTH_BUCKETS = (10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
# Label values longer than this are cut: evidence and action texts are meant for a
# notification, and Prometheus setups often cap label length (label_value_length_limit).
_MAX_LABEL_CHARS = 256
_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
_FEEDBACK_KEYS = (
    "nps:promoter",
    "nps:passive",
    "nps:detractor",
    "csat:satisfied",
    "csat:neutral",
    "csat:unsatisfied",
)
_PERIOD_METRICS = (
    ("customers_at_start", "Customers with an active subscription at the period start"),
    ("customers_lost", "Customers who cancelled in the period and did not come back"),
    ("mrr_at_start", "Monthly recurring revenue at the period start"),
    ("mrr_lost", "Monthly recurring revenue of the customers lost in the period"),
    ("mrr_contraction", "Monthly recurring revenue lost to downgrades in the period"),
)
# A scrape reads dicts the main loop may be changing; without a lock a read can
# meet "dictionary changed size during iteration" and is simply taken again.
_READ_ATTEMPTS = 5

_WarningRow = tuple[str, str, str, str, int, str, str]
_PlanFigures = list[float]


@dataclass(slots=True)
class _Reading:
    """What one scrape copied out of the engines."""

    tracked: int = 0
    warnings: list[_WarningRow] = field(default_factory=list)
    rules: set[tuple[str, str]] = field(default_factory=set)
    guard_active: bool = False
    watermarks: list[float] = field(default_factory=list)
    periods: dict[str, dict[str, _PlanFigures]] = field(default_factory=dict)
    feedback: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WarningSeries:
    """How churn_customer_warning is labelled and bounded."""

    cap: int
    customer_label: Callable[[str], str]


class ChurnCollector:
    """Aggregate churn, feedback and warning figures over every engine the app runs.

    Args:
        engines: returns the engines to read now (one per owned partition); called
            from the scrape thread, so it must return a copy, not a list the main
            loop changes.
        series: cap and customer labelling of the per-customer series.
        lock: held while copying from the engines, if the main loop holds it around
            its work; without one, a read that meets a change is retried.
        now: wall clock, epoch seconds.
    """

    def __init__(
        self,
        engines: Callable[[], Sequence[Engine]],
        series: WarningSeries,
        *,
        lock: AbstractContextManager[Any] | None = None,
        now: Callable[[], float],
    ) -> None:
        self._engines = engines
        self._series = series
        self._lock = lock
        self._now = now

    def describe(self) -> Iterator[Metric]:
        """Name the families without reading the engines (for the registry)."""
        yield from self._families(_Reading())

    def collect(self) -> Iterator[Metric]:
        yield from self._families(self._read())

    # Reading

    def _read(self) -> _Reading:
        with self._lock or nullcontext():
            for attempt in range(1, _READ_ATTEMPTS):
                try:
                    return _read_engines(self._engines())
                except RuntimeError:
                    logger.debug("engine changed during scrape: attempt=%d", attempt)
            return _read_engines(self._engines())

    # Families

    def _families(self, reading: _Reading) -> Iterator[Metric]:
        weights: dict[str, int] = {}
        warned: dict[tuple[str, str], int] = dict.fromkeys(reading.rules, 0)
        for customer_id, rule, _, severity, weight, _, _ in reading.warnings:
            weights[customer_id] = weights.get(customer_id, 0) + weight
            warned[rule, severity] = warned.get((rule, severity), 0) + 1
        health = {c: max(0, 100 - w) for c, w in weights.items()}

        yield from _customer_families(reading, health, warned)
        yield from self._warning_families(reading, health)
        yield from _period_families(reading)
        yield from _feedback_family(reading)
        yield from self._clock_families(reading)

    def _warning_families(
        self, reading: _Reading, health: dict[str, int]
    ) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "churn_customer_warning",
            "Health score (0-100) of a customer with an open warning, one series per "
            "open warning; the labels carry the evidence and the suggested action",
            labels=["customer", "rule", "kind", "severity", "action", "evidence"],
        )
        rows, dropped = self._select(reading.warnings, health)
        for score, *labels in rows:
            family.add_metric(labels, score)
        yield family

        yield GaugeMetricFamily(
            "churn_customer_warning_series_dropped",
            "Open warnings left out of churn_customer_warning by the series cap",
            value=dropped,
        )

    def _select(
        self, warnings: list[_WarningRow], health: dict[str, int]
    ) -> tuple[list[tuple[int, str, str, str, str, str, str]], int]:
        """Pick the series to export: most at risk first, at most the cap."""
        ranked = (
            (
                health[c],
                _SEVERITY_RANK.get(sev, 3),
                -weight,
                c,
                rule,
                kind,
                sev,
                act,
                ev,
            )
            for c, rule, kind, sev, weight, act, ev in warnings
        )
        cap = self._series.cap
        chosen = (
            sorted(ranked) if len(warnings) <= cap else heapq.nsmallest(cap, ranked)
        )

        label = self._series.customer_label
        rows = []
        seen: set[tuple[str, str]] = set()
        for score, _, _, customer_id, rule, kind, severity, action, evidence in chosen:
            customer = label(customer_id)
            # Two ids with one pseudonym (a 64-bit collision) would give a
            # duplicate series, which fails the whole scrape.
            if (customer, rule) in seen:
                continue
            seen.add((customer, rule))
            rows.append((score, customer, rule, kind, severity, action, evidence))

        return rows, len(warnings) - len(rows)

    def _clock_families(self, reading: _Reading) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "churn_absence_guard_active",
            "1 while the population-wide silence guard holds the absence rules",
            value=1 if reading.guard_active else 0,
        )
        lag = GaugeMetricFamily(
            "churn_event_time_lag_seconds",
            "Wall-clock time minus the oldest watermark of the engines",
            unit="seconds",
        )
        if reading.watermarks:
            lag.add_metric([], self._now() - min(reading.watermarks))
        yield lag


def _read_engines(engines: Sequence[Engine]) -> _Reading:
    reading = _Reading()
    for engine in engines:
        reading.tracked += len(engine.customers)
        reading.warnings.extend(
            (
                w.customer_id,
                w.rule,
                w.kind,
                w.severity,
                w.weight,
                _label_text(w.action),
                _label_text(str(w.evidence.get("summary", ""))),
            )
            for w in engine.book.all_open()
        )
        reading.rules.update((rule.name, rule.severity) for rule in engine.rules.rules)
        reading.guard_active = reading.guard_active or engine.guard_active
        _read_clock(engine, reading)
        _add_period(reading.periods, "current", engine.ledger.current)
        _add_period(reading.periods, "previous", engine.ledger.previous())

    # A customer in two engines (a partition handed over mid-scrape) counts once.
    unique = {(row[0], row[1]): row for row in reading.warnings}
    reading.warnings = list(unique.values())

    return reading


def _read_clock(engine: Engine, reading: _Reading) -> None:
    watermark = engine.clock.watermark
    if watermark is None:
        return
    reading.watermarks.append(watermark)
    window = engine.feedback_stats.window(int(watermark // SECONDS_PER_DAY))
    for key in _FEEDBACK_KEYS:
        reading.feedback[key] = reading.feedback.get(key, 0) + window.get(key, 0)


def _add_period(
    periods: dict[str, dict[str, _PlanFigures]],
    period: str,
    figures: PeriodFigures | None,
) -> None:
    if figures is None:
        return
    by_plan = periods.setdefault(period, {})
    tables: tuple[dict[str, float], ...] = tuple(
        dict(table)
        for table in (
            figures.at_start,
            figures.lost,
            figures.mrr_at_start,
            figures.mrr_lost,
            figures.mrr_contraction,
        )
    )
    # Every plan gets all five figures, so that lost / at_start has both sides.
    for plan in set().union(*tables):
        sums = by_plan.setdefault(plan, [0.0] * len(tables))
        for index, table in enumerate(tables):
            sums[index] += table.get(plan, 0)


def _label_text(text: str) -> str:
    if len(text) <= _MAX_LABEL_CHARS:
        return text
    return text[: _MAX_LABEL_CHARS - 3] + "..."


def _customer_families(
    reading: _Reading, health: dict[str, int], warned: dict[tuple[str, str], int]
) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "churn_customers_tracked",
        "Customers the monitor keeps state for",
        value=reading.tracked,
    )
    yield GaugeMetricFamily(
        "churn_customers_at_risk",
        "Customers with at least one open warning",
        value=len(health),
    )

    by_rule = GaugeMetricFamily(
        "churn_customers_warned",
        "Open warnings by rule and severity (each is one customer)",
        labels=["rule", "severity"],
    )
    for (rule, severity), count in sorted(warned.items()):
        by_rule.add_metric([rule, severity], count)
    yield by_rule

    yield _health_histogram(reading.tracked, health)


def _health_histogram(tracked: int, health: dict[str, int]) -> Metric:
    """Customers by health score; those without open warnings count as 100."""
    counts = dict.fromkeys(HEALTH_BUCKETS, 0)
    for score in health.values():
        bound = next(b for b in HEALTH_BUCKETS if score <= b)
        counts[bound] += 1
    healthy = max(0, tracked - len(health))
    counts[100] += healthy

    buckets = []
    cumulative = 0
    for bound in HEALTH_BUCKETS:
        cumulative += counts[bound]
        buckets.append((repr(float(bound)), cumulative))
    buckets.append(("+Inf", cumulative))

    return HistogramMetricFamily(
        "churn_customer_health_score",
        "Customers by health score: 100 minus the weights of open warnings",
        buckets=buckets,
        sum_value=sum(health.values()) + 100 * healthy,
    )


def _period_families(reading: _Reading) -> Iterator[Metric]:
    for index, (name, help_text) in enumerate(_PERIOD_METRICS):
        family = GaugeMetricFamily(
            f"churn_period_{name}",
            f"{help_text}, by plan; period is current or previous",
            labels=["period", "plan"],
        )
        for period, by_plan in sorted(reading.periods.items()):
            for plan, sums in sorted(by_plan.items()):
                family.add_metric([period, plan], sums[index])
        yield family


def _feedback_family(reading: _Reading) -> Iterator[Metric]:
    family = GaugeMetricFamily(
        "churn_feedback_responses",
        "NPS and CSAT answers by category over the rolling feedback window",
        labels=["channel", "category"],
    )
    for key in _FEEDBACK_KEYS if reading.feedback else ():
        channel, category = key.split(":")
        family.add_metric([channel, category], reading.feedback[key])
    yield family
