"""Fixtures for the exporter tests: engines in a known state, exporters around them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from monitor.engine.core import Engine
from monitor.engine.lifecycle import ChurnWarning
from monitor.engine.loader import RuleSet
from monitor.outputs.metrics import MetricsExporter
from monitor.settings import MetricsSettings
from monitor.state.customer import CustomerState

_NOW = 1_800_000_000.0


@pytest.fixture
def now() -> float:
    """The wall clock the exporters see, epoch seconds."""
    return _NOW


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def engine(default_rules: RuleSet) -> Engine:
    return Engine(default_rules)


@pytest.fixture
def make_warning(now: float) -> Callable[..., ChurnWarning]:
    """Build an open warning; fields override a declining-usage default."""

    def build(**fields: Any) -> ChurnWarning:
        values: dict[str, Any] = {
            "id": "w-1",
            "customer_id": "c1",
            "rule": "declining_usage",
            "kind": "declining_usage",
            "severity": "warning",
            "weight": 35,
            "action": "Schedule a check-in call.",
            "opened_at": now - 86_400,
            "evidence": {"summary": "usage 2.0/day vs 8.0/day baseline (-75%)"},
        }
        values.update(fields)
        return ChurnWarning(**values)

    return build


@pytest.fixture
def track() -> Callable[..., Engine]:
    """Give an engine state for customers, as if they had sent events."""

    def add(engine: Engine, *customer_ids: str) -> Engine:
        for customer_id in customer_ids:
            engine.customers[customer_id] = CustomerState(first_day=0)
        return engine

    return add


@pytest.fixture
def make_exporter(
    registry: CollectorRegistry, now: float
) -> Iterator[Callable[..., MetricsExporter]]:
    """Build exporters on the test's registry; stop any that were started.

    Positional arguments are the engines; ``clock`` overrides the wall clock and
    other keywords the metrics settings.
    """
    built: list[MetricsExporter] = []

    def build(
        *engines: Engine, clock: float | None = None, **settings: Any
    ) -> MetricsExporter:
        wall = now if clock is None else clock
        exporter = MetricsExporter(
            MetricsSettings(**{"address": "127.0.0.1:0", **settings}),
            lambda: list(engines),
            registry=registry,
            now=lambda: wall,
        )
        built.append(exporter)
        return exporter

    yield build
    for exporter in built:
        exporter.stop()
