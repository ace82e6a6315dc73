"""Synthetic customer histories: weekly rhythms, noise, launches, feedback and churn.

Churners drift (less use, fewer features, quieter or sourer feedback, billing
trouble) before they cancel; some customers dip and recover, some go on holiday.
Nothing but the events themselves tells who churns. Writes no files itself.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

__all__ = ["SimulatedCustomer", "Simulation", "simulate_lines"]

_PLANS = (
    ("basic", 29.0, 0.5, 1.0),
    ("pro", 99.0, 0.35, 1.6),
    ("enterprise", 499.0, 0.15, 3.0),
)
_CORE_FEATURES = ("dashboard", "reports", "search", "export", "integrations", "alerts")
_ACTIONS = ("view", "edit", "share", "query", "comment")
_LAUNCHES = (
    (40, "ai_assistant", None),
    (85, "workflows", ("pro", "enterprise")),
    (130, "audit_log", ("enterprise",)),
)


@dataclass(slots=True)
class SimulatedCustomer:
    """One customer's hidden story; the events are all a monitor gets to see."""

    customer_id: str
    plan: str
    mrr: float
    start_day: int
    sessions_per_day: float
    weekend_factor: float
    features: list[str]
    survey_propensity: float
    ticket_rate: float
    fate: str = "healthy"
    cancel_day: int | None = None
    drift_start: int | None = None
    drift_floor: float = 1.0
    drift_shape: float = 1.0
    recover_day: int | None = None
    dip: tuple[int, int, float] | None = None
    adoption: dict[str, int] = field(default_factory=dict)

    def activity(self, day: int) -> float:
        """Return the multiplier on the customer's usual activity for a day."""
        level = 1.0
        if self.drift_start is not None and day >= self.drift_start:
            end = self.cancel_day if self.cancel_day is not None else self.recover_day
            span = max((end or day) - self.drift_start, 1)
            progress = min((day - self.drift_start) / span, 1.0)
            level = 1 - (1 - self.drift_floor) * progress**self.drift_shape
            if self.recover_day is not None and day >= self.recover_day:
                level = min(1.0, self.drift_floor + (day - self.recover_day) / 10)
        if self.dip is not None and self.dip[0] <= day < self.dip[1]:
            level *= self.dip[2]
        return level


class Simulation:
    """Build a population and emit its events, reproducibly from a seed."""

    def __init__(self, customers: int, days: int, seed: int, start: date) -> None:
        self.rng = random.Random(seed)
        self.days = days
        self.start = datetime(start.year, start.month, start.day, tzinfo=UTC)
        self.population = [self._customer(i) for i in range(customers)]
        self._event_seq = 0

    def _customer(self, index: int) -> SimulatedCustomer:
        rng = self.rng
        plan, mrr, _, scale = rng.choices(_PLANS, weights=[p[2] for p in _PLANS])[0]
        start_day = (
            0 if rng.random() < 0.75 else rng.randrange(0, max(self.days - 60, 1))
        )
        customer = SimulatedCustomer(
            customer_id=f"cust-{index:05d}",
            plan=plan,
            mrr=mrr,
            start_day=start_day,
            sessions_per_day=rng.lognormvariate(0.9, 0.6) * scale,
            weekend_factor=rng.uniform(0.1, 0.4)
            if rng.random() < 0.7
            else rng.uniform(0.9, 1.3),
            features=rng.sample(_CORE_FEATURES, rng.randint(2, 5)),
            survey_propensity=rng.uniform(0.2, 0.9),
            ticket_rate=rng.uniform(0.01, 0.12),
        )
        self._assign_fate(customer)
        return customer

    def _assign_fate(self, c: SimulatedCustomer) -> None:
        rng = self.rng
        roll = rng.random()
        earliest = c.start_day + 91
        if roll < 0.2 and earliest < self.days - 5:
            c.fate = "churn"
            c.cancel_day = rng.randrange(earliest, self.days - 3)
            if rng.random() < 0.9:
                c.drift_start = c.cancel_day - rng.randint(28, 84)
                c.drift_floor = rng.uniform(0.0, 0.35)
                c.drift_shape = rng.uniform(0.6, 2.0)
            else:
                c.fate = "sudden_churn"
        elif roll < 0.28 and earliest < self.days - 40:
            c.fate = "recover"
            c.drift_start = rng.randrange(earliest, self.days - 40)
            c.recover_day = c.drift_start + rng.randint(14, 30)
            c.drift_floor = rng.uniform(0.2, 0.5)
        elif roll < 0.4:
            begin = rng.randrange(c.start_day, self.days)
            c.dip = (begin, begin + rng.randint(5, 14), rng.uniform(0.25, 0.7))

    # Events

    def _stamp(self, day: int, seconds: float) -> str:
        moment = self.start + timedelta(days=day, seconds=seconds)
        return moment.isoformat().replace("+00:00", "Z")

    def _event(
        self, day: int, seconds: float, body: dict[str, Any]
    ) -> tuple[float, bytes]:
        self._event_seq += 1
        body["timestamp"] = self._stamp(day, seconds)
        body["event_id"] = f"e{self._event_seq:09d}"
        return day * 86_400 + seconds, orjson.dumps(body)

    def events(self) -> Iterator[tuple[float, bytes]]:
        """Yield ``(seconds since start, line)`` for every event, unsorted."""
        for launch_day, feature, plans in _LAUNCHES:
            if launch_day < self.days:
                body: dict[str, Any] = {"type": "release", "feature": feature}
                if plans:
                    body["plans"] = list(plans)
                yield self._event(launch_day, 6 * 3600, body)
        for customer in self.population:
            yield from self._customer_events(customer)

    def _customer_events(self, c: SimulatedCustomer) -> Iterator[tuple[float, bytes]]:
        rng = self.rng
        yield self._subscription(c, c.start_day, "started")
        end = c.cancel_day if c.cancel_day is not None else self.days
        for day in range(c.start_day, end):
            level = c.activity(day)
            yield from self._usage(c, day, level)
            yield from self._feedback(c, day, level)
            if day > c.start_day and (day - c.start_day) % 30 == 0:
                yield from self._billing(c, day)
        if c.cancel_day is not None:
            yield self._subscription(c, c.cancel_day, "cancelled")
            if rng.random() < 0.05 and c.cancel_day + 4 < self.days:
                yield self._subscription(
                    c, c.cancel_day + rng.randint(1, 4), "reactivated"
                )

    def _subscription(
        self, c: SimulatedCustomer, day: int, status: str
    ) -> tuple[float, bytes]:
        body = {
            "type": "subscription",
            "customer_id": c.customer_id,
            "status": status,
            "plan": c.plan,
            "mrr": c.mrr,
        }
        return self._event(day, self.rng.uniform(8, 18) * 3600, body)

    def _usage(
        self, c: SimulatedCustomer, day: int, level: float
    ) -> Iterator[tuple[float, bytes]]:
        rng = self.rng
        weekday = (self.start + timedelta(days=day)).weekday()
        rate = c.sessions_per_day * level * (c.weekend_factor if weekday >= 5 else 1.0)
        rate *= rng.gammavariate(4.0, 0.25)
        features = list(c.features)
        for launch_day, feature, plans in _LAUNCHES:
            adopted = c.adoption.get(feature)
            if (
                adopted is None
                and day >= launch_day
                and (plans is None or c.plan in plans)
            ):
                eager = 0.7 if c.drift_start is None or day < c.drift_start else 0.1
                adopted = (
                    launch_day + int(rng.expovariate(1 / 8))
                    if rng.random() < eager
                    else -1
                )
                c.adoption[feature] = adopted
            if adopted is not None and 0 <= adopted <= day:
                features.append(feature)
        if level < 0.6:
            features = features[: max(1, int(len(features) * level / 0.6))]
        for _ in range(_poisson(rng, rate)):
            body: dict[str, Any] = {
                "type": "usage",
                "customer_id": c.customer_id,
                "action": rng.choice(_ACTIONS),
                "count": rng.randint(1, 12),
            }
            if rng.random() < 0.8:
                body["feature"] = rng.choice(features)
            yield self._event(day, rng.uniform(7, 21) * 3600, body)

    def _feedback(
        self, c: SimulatedCustomer, day: int, level: float
    ) -> Iterator[tuple[float, bytes]]:
        rng = self.rng
        unhappy = 1 - level
        if day % 30 == 15 and rng.random() < c.survey_propensity * (0.3 + 0.7 * level):
            score = _clamp(round(rng.gauss(8.3 - 6 * unhappy, 1.6)), 0, 10)
            yield self._event(
                day,
                rng.uniform(9, 20) * 3600,
                {
                    "type": "feedback",
                    "customer_id": c.customer_id,
                    "channel": "nps",
                    "score": score,
                },
            )
        if rng.random() < c.ticket_rate * (0.4 + 1.2 * unhappy if level > 0.2 else 0.3):
            sentiment = round(_clamp(rng.gauss(0.1 - 0.8 * unhappy, 0.35), -1, 1), 2)
            yield self._event(
                day,
                rng.uniform(8, 18) * 3600,
                {
                    "type": "feedback",
                    "customer_id": c.customer_id,
                    "channel": "support_ticket",
                    "sentiment": sentiment,
                },
            )
            if rng.random() < 0.5:
                csat = _clamp(round(rng.gauss(4.3 - 2.5 * unhappy, 0.8)), 1, 5)
                yield self._event(
                    day,
                    rng.uniform(19, 23) * 3600,
                    {
                        "type": "feedback",
                        "customer_id": c.customer_id,
                        "channel": "csat",
                        "score": csat,
                    },
                )

    def _billing(self, c: SimulatedCustomer, day: int) -> Iterator[tuple[float, bytes]]:
        rng = self.rng
        at_risk = c.drift_start is not None and day >= c.drift_start and c.cancel_day
        if at_risk and rng.random() < 0.35:
            yield self._subscription(c, day, "payment_failed")
        elif at_risk and c.plan != "basic" and rng.random() < 0.25:
            c.plan, c.mrr = "basic", 29.0
            yield self._subscription(c, day, "downgraded")
        elif rng.random() < 0.01:
            yield self._subscription(c, day, "payment_failed")
            yield self._subscription(c, day + 1, "renewed")
        else:
            yield self._subscription(c, day, "renewed")


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    threshold, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def simulate_lines(
    customers: int,
    days: int,
    seed: int,
    start: date | None = None,
    duplicate_rate: float = 0.002,
) -> list[bytes]:
    """Return a whole history as JSON lines in event-time order, with a few resends."""
    simulation = Simulation(customers, days, seed, start or date(2026, 1, 5))
    stamped = sorted(simulation.events(), key=lambda item: item[0])
    rng = random.Random(seed + 1)
    lines: list[bytes] = []
    for _, line in stamped:
        lines.append(line)
        if rng.random() < duplicate_rate:
            lines.append(line)
    return lines
