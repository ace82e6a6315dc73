"""The exporter's text writer against prometheus_client's own, sample for sample."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.engine.core import Engine
from monitor.engine.lifecycle import ChurnWarning
from monitor.outputs.exposition import encode_text
from monitor.outputs.metrics import MetricsExporter


def parsed(text: bytes) -> dict[str, Any]:
    """Map each family to its type, help and set of samples."""
    return {
        family.name: (
            family.type,
            family.documentation,
            {
                (s.name, tuple(sorted(s.labels.items())), s.value)
                for s in family.samples
            },
        )
        for family in text_string_to_metric_families(text.decode())
    }


def test_text_matches_prometheus_client_for_the_exporter(
    make_exporter: Callable[..., MetricsExporter],
    registry: CollectorRegistry,
    engine: Engine,
    make_warning: Callable[..., ChurnWarning],
) -> None:
    engine.book.restore(make_warning(evidence={"summary": 'a "quoted"\\ line\nnext'}))
    exporter = make_exporter(engine)
    exporter.record_consumed("usage", 7)
    exporter.observe_latency(0.003)
    exporter.set_consumer_lag("churn.events", 3, 10)

    ours = encode_text(registry)

    assert parsed(ours) == parsed(generate_latest(registry))


def test_text_leaves_out_created_and_escapes_help(registry: CollectorRegistry) -> None:
    Counter("jobs", "Runs\nby job \\ name", ["job"], registry=registry).labels(
        "a"
    ).inc()
    Gauge("temperature_celsius", "Heat", registry=registry).set(float("inf"))

    text = encode_text(registry).decode()

    assert "# HELP jobs_total Runs\\nby job \\\\ name\n" in text
    assert 'jobs_total{job="a"} 1.0\n' in text
    assert "_created" not in text
    assert "temperature_celsius +Inf\n" in text
