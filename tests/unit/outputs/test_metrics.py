"""The exporter's figures: read from engines at scrape time, counted per event."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from typing import Any

import promstack
import pytest
from helpers import START, Harness, daily_usage, event, in_time_order
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.engine.core import Engine
from monitor.engine.lifecycle import ChurnWarning
from monitor.engine.loader import RuleSet
from monitor.errors import SettingsError
from monitor.outputs import churn_collector
from monitor.outputs.metrics import MetricsExporter, pseudonymise

KEY = "a-secret-of-sufficient-length"
ExporterFactory = Callable[..., MetricsExporter]
WarningFactory = Callable[..., ChurnWarning]


def sample_names(registry: CollectorRegistry) -> set[str]:
    text = generate_latest(registry).decode()
    return {
        sample.name
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def warning_series(registry: CollectorRegistry) -> list[dict[str, Any]]:
    """Return each churn_customer_warning sample as its labels plus 'value'."""
    text = generate_latest(registry).decode()
    return [
        {**sample.labels, "value": sample.value}
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "churn_customer_warning"
    ]


def test_scrape_serves_every_contract_metric(
    make_exporter: ExporterFactory,
    registry: CollectorRegistry,
    default_rules: RuleSet,
    make_warning: WarningFactory,
    now: float,
) -> None:
    """Rules, alerts and the dashboard rely on these names; all must be present."""
    h = Harness(default_rules)
    exporter = make_exporter(h.engine)
    exporter.attach(h.engine)
    h.feed([event("subscription", -2), event("feedback", 1, score=3)]).until(40)
    h.engine.book.restore(make_warning())
    exporter.set_consumer_lag("churn.events", 0, 12)
    exporter.mark_checkpoint(now - 30)

    names = sample_names(registry)

    assert promstack.CONTRACT_METRICS - names == set()


def test_period_figures_by_period_and_plan(
    make_exporter: ExporterFactory, registry: CollectorRegistry, default_rules: RuleSet
) -> None:
    # START is 2026-03-02: day -2 is 28 February, days 30+ are in April.
    lines = [
        event("subscription", -2, customer_id=f"c{n}", plan="pro", mrr=100.0)
        for n in range(10)
    ]
    lines += [
        event("subscription", 5, customer_id="c0", status="cancelled"),
        event("subscription", 12, customer_id="c2", status="downgraded", plan="basic"),
        event("subscription", 40, customer_id="c3", status="cancelled"),
    ]
    h = Harness(default_rules).feed(lines).until(50)
    make_exporter(h.engine)

    def value(name: str, period: str, plan: str) -> float | None:
        labels = {"period": period, "plan": plan}
        return registry.get_sample_value(f"churn_period_{name}", labels)

    assert value("customers_at_start", "previous", "pro") == 10
    assert value("customers_lost", "previous", "pro") == 1
    assert value("mrr_lost", "previous", "pro") == 100
    assert value("customers_at_start", "current", "pro") == 8
    assert value("customers_at_start", "current", "basic") == 1
    assert value("customers_lost", "current", "pro") == 1
    assert value("customers_lost", "current", "basic") == 0
    assert value("mrr_at_start", "current", "pro") == 800
    assert value("mrr_contraction", "current", "basic") == 0


def test_figures_add_up_across_engines(
    make_exporter: ExporterFactory, registry: CollectorRegistry, default_rules: RuleSet
) -> None:
    """Each engine owns some customers; the exporter reports their sum."""
    first = Harness(default_rules).feed(
        [event("subscription", 0, customer_id=f"a{n}") for n in range(3)]
    )
    second = Harness(default_rules).feed(
        [event("subscription", 0, customer_id=f"b{n}") for n in range(2)]
    )
    make_exporter(first.until(40).engine, second.until(40).engine)

    tracked = registry.get_sample_value("churn_customers_tracked")
    at_start = registry.get_sample_value(
        "churn_period_customers_at_start", {"period": "current", "plan": "pro"}
    )

    assert tracked == 5
    assert at_start == 5


def test_feedback_responses_by_channel_and_category(
    make_exporter: ExporterFactory, registry: CollectorRegistry, engine: Engine
) -> None:
    for score, channel in [(10, "nps"), (9, "nps"), (3, "nps"), (5, "csat")]:
        engine.process(event("feedback", 1, channel=channel, score=score))
    make_exporter(engine)

    def value(channel: str, category: str) -> float | None:
        labels = {"channel": channel, "category": category}
        return registry.get_sample_value("churn_feedback_responses", labels)

    assert value("nps", "promoter") == 2
    assert value("nps", "detractor") == 1
    assert value("nps", "passive") == 0
    assert value("csat", "satisfied") == 1


def test_health_histogram_counts_unwarned_customers_as_100(
    make_exporter: ExporterFactory,
    registry: CollectorRegistry,
    engine: Engine,
    make_warning: WarningFactory,
    track: Callable[..., Engine],
) -> None:
    track(engine, "c1", "c2", "c3", "c4")
    engine.book.restore(make_warning(customer_id="c1", weight=35))
    engine.book.restore(
        make_warning(customer_id="c2", rule="inactivity", kind="inactivity", weight=40)
    )
    engine.book.restore(make_warning(customer_id="c2", weight=35))
    make_exporter(engine)

    def bucket(le: str) -> float | None:
        return registry.get_sample_value(
            "churn_customer_health_score_bucket", {"le": le}
        )

    assert bucket("20.0") == 0
    assert bucket("30.0") == 1  # c2: 100 - 40 - 35
    assert bucket("70.0") == 2  # c1: 65
    assert bucket("90.0") == 2
    assert bucket("100.0") == 4
    assert registry.get_sample_value("churn_customer_health_score_count") == 4
    assert registry.get_sample_value("churn_customer_health_score_sum") == 290
    assert registry.get_sample_value("churn_customers_at_risk") == 2


def test_customers_warned_zero_for_rules_without_warnings(
    make_exporter: ExporterFactory,
    registry: CollectorRegistry,
    engine: Engine,
    make_warning: WarningFactory,
) -> None:
    engine.book.restore(make_warning())
    make_exporter(engine)

    def warned(rule: str, severity: str) -> float | None:
        labels = {"rule": rule, "severity": severity}
        return registry.get_sample_value("churn_customers_warned", labels)

    assert warned("declining_usage", "warning") == 1
    assert warned("inactivity", "critical") == 0
    assert warned("payment_failed", "critical") == 0


def test_declining_customer_gets_one_series_until_resolved(
    make_exporter: ExporterFactory, registry: CollectorRegistry, default_rules: RuleSet
) -> None:
    """Through the engine: the series comes with the warning and goes with it."""
    weekly = lambda day: 4 if day % 7 >= 5 else 20  # noqa: E731
    slump = lambda day: 1 if day % 7 >= 5 else 3  # noqa: E731
    h = Harness(default_rules)
    make_exporter(h.engine)

    h.feed(in_time_order(daily_usage("c1", range(56), weekly))).until(56)
    before = warning_series(registry)
    h.feed(in_time_order(daily_usage("c1", range(56, 64), slump))).until(64)
    during = warning_series(registry)
    h.feed(in_time_order(daily_usage("c1", range(64, 76), weekly))).until(76)
    after = warning_series(registry)

    assert before == []
    [series] = during
    assert series["customer"] == "c1"
    assert series["rule"] == "declining_usage"
    assert series["severity"] == "warning"
    assert series["evidence"] == h.opened("declining_usage")[0]["evidence"]["summary"]
    assert series["action"].startswith("Schedule a check-in call")
    assert series["value"] == 65
    assert after == []


def test_warning_series_capped_most_at_risk_first(
    make_exporter: ExporterFactory,
    registry: CollectorRegistry,
    engine: Engine,
    make_warning: WarningFactory,
) -> None:
    engine.book.restore(make_warning(customer_id="mild", severity="info", weight=10))
    engine.book.restore(make_warning(customer_id="worst", weight=80))
    engine.book.restore(make_warning(customer_id="bad-b", weight=50))
    engine.book.restore(make_warning(customer_id="bad-a", weight=50))
    make_exporter(engine, customer_series_cap=3)

    kept = [series["customer"] for series in warning_series(registry)]

    assert sorted(kept) == ["bad-a", "bad-b", "worst"]
    assert registry.get_sample_value("churn_customer_warning_series_dropped") == 1
    assert registry.get_sample_value("churn_customers_at_risk") == 4


def test_warning_series_cap_zero_exports_none(
    make_exporter: ExporterFactory,
    registry: CollectorRegistry,
    engine: Engine,
    make_warning: WarningFactory,
) -> None:
    engine.book.restore(make_warning())
    make_exporter(engine, customer_series_cap=0)

    assert warning_series(registry) == []
    assert registry.get_sample_value("churn_customer_warning_series_dropped") == 1


def test_customer_in_two_engines_exported_once(
    make_exporter: ExporterFactory,
    registry: CollectorRegistry,
    default_rules: RuleSet,
    make_warning: WarningFactory,
) -> None:
    """A partition mid-handover must not produce a duplicate series."""
    old, new = Engine(default_rules), Engine(default_rules)
    old.book.restore(make_warning())
    new.book.restore(make_warning())
    make_exporter(old, new)

    assert len(warning_series(registry)) == 1
    assert registry.get_sample_value("churn_customers_at_risk") == 1
    assert registry.get_sample_value("churn_customer_warning_series_dropped") == 0


def test_pseudonymised_customer_label_is_keyed_hash(
    make_exporter: ExporterFactory,
    registry: CollectorRegistry,
    engine: Engine,
    make_warning: WarningFactory,
) -> None:
    engine.book.restore(make_warning(customer_id="acme-corp"))
    make_exporter(engine, pseudonymise_key=KEY)
    expected = hmac.new(KEY.encode(), b"acme-corp", hashlib.sha256).hexdigest()[:16]

    [series] = warning_series(registry)

    assert series["customer"] == expected == pseudonymise("acme-corp", KEY)
    assert "acme-corp" not in generate_latest(registry).decode()


def test_short_pseudonymise_key_refused(make_exporter: ExporterFactory) -> None:
    with pytest.raises(SettingsError, match=r"metrics.pseudonymise_key.*at least 16"):
        make_exporter(pseudonymise_key="short")


def test_long_evidence_cut_in_label(
    make_exporter: ExporterFactory,
    registry: CollectorRegistry,
    engine: Engine,
    make_warning: WarningFactory,
) -> None:
    engine.book.restore(make_warning(evidence={"summary": "x" * 1000}))
    make_exporter(engine)

    [series] = warning_series(registry)

    assert len(series["evidence"]) == 256
    assert series["evidence"].endswith("...")


def test_scrape_retries_when_engine_changes_underneath(
    make_exporter: ExporterFactory,
    registry: CollectorRegistry,
    engine: Engine,
    make_warning: WarningFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a lock, a read that meets a change in size is simply taken again."""
    engine.book.restore(make_warning())
    real = churn_collector._read_engines
    calls = []

    def changing(engines: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("dictionary changed size during iteration")
        return real(engines)

    monkeypatch.setattr(churn_collector, "_read_engines", changing)
    make_exporter(engine)

    assert registry.get_sample_value("churn_customers_at_risk") == 1
    assert len(calls) == 2


def test_guard_and_event_time_lag_over_engines(
    make_exporter: ExporterFactory, registry: CollectorRegistry, default_rules: RuleSet
) -> None:
    ahead, behind = Engine(default_rules), Engine(default_rules)
    ahead.advance_to(START.timestamp() + 3_600)
    behind.advance_to(START.timestamp())
    behind.guard_active = True
    make_exporter(ahead, behind, clock=START.timestamp() + 7_200)

    assert registry.get_sample_value("churn_event_time_lag_seconds") == 7_200
    assert registry.get_sample_value("churn_absence_guard_active") == 1


def test_event_time_lag_absent_before_any_event(
    make_exporter: ExporterFactory, registry: CollectorRegistry, engine: Engine
) -> None:
    make_exporter(engine)

    assert registry.get_sample_value("churn_event_time_lag_seconds") is None
    assert registry.get_sample_value("churn_customers_tracked") == 0


def test_consumed_and_rejected_counters(
    make_exporter: ExporterFactory, registry: CollectorRegistry
) -> None:
    exporter = make_exporter()

    exporter.record_consumed("usage")
    exporter.record_consumed("usage", 4)
    exporter.record_rejected("late")

    def consumed(kind: str) -> float | None:
        return registry.get_sample_value("churn_events_consumed_total", {"type": kind})

    assert consumed("usage") == 5
    assert consumed("feedback") == 0
    assert (
        registry.get_sample_value("churn_events_rejected_total", {"reason": "late"})
        == 1
    )
    assert (
        registry.get_sample_value(
            "churn_events_rejected_total", {"reason": "duplicate"}
        )
        == 0
    )


def test_free_text_labels_folded_into_other(
    make_exporter: ExporterFactory,
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter = make_exporter()

    with caplog.at_level(logging.WARNING, logger="monitor.outputs.metrics"):
        for n in range(100):
            exporter.record_consumed(f"type-{n}")

    families = sample_names(registry)
    assert "churn_events_consumed_total" in families
    other = registry.get_sample_value("churn_events_consumed_total", {"type": "other"})
    assert other is not None
    assert other > 50
    assert caplog.text.count("too many label values") == 1


def test_warning_changes_counted_by_rule(
    make_exporter: ExporterFactory, registry: CollectorRegistry, default_rules: RuleSet
) -> None:
    h = Harness(default_rules)
    exporter = make_exporter(h.engine)
    exporter.attach(h.engine)
    exporter.attach(h.engine)  # twice is once

    h.feed([event("feedback", 1, score=2), event("feedback", 20, score=10)]).until(40)

    def count(name: str, rule: str) -> float | None:
        return registry.get_sample_value(name, {"rule": rule})

    assert count("churn_warnings_opened_total", "nps_detractor") == 1
    assert count("churn_warnings_resolved_total", "nps_detractor") == 1
    assert count("churn_warnings_opened_total", "inactivity") == 0


def test_warning_records_counted_and_rules_started_at_zero(
    make_exporter: ExporterFactory, registry: CollectorRegistry
) -> None:
    exporter = make_exporter()
    exporter.set_rule_state(2, 0, names=["inactivity", "nps_detractor"])

    exporter.record_warning("nps_detractor", "opened")
    exporter.record_warning("nps_detractor", "resolved")

    def count(name: str, rule: str) -> float | None:
        return registry.get_sample_value(name, {"rule": rule})

    assert count("churn_warnings_opened_total", "nps_detractor") == 1
    assert count("churn_warnings_resolved_total", "nps_detractor") == 1
    assert count("churn_warnings_opened_total", "inactivity") == 0
    assert registry.get_sample_value("churn_rules_loaded") == 2


def test_detached_engine_no_longer_counted(
    make_exporter: ExporterFactory, registry: CollectorRegistry, default_rules: RuleSet
) -> None:
    h = Harness(default_rules)
    exporter = make_exporter(h.engine)
    exporter.attach(h.engine)
    exporter.detach(h.engine)

    h.feed([event("feedback", 1, score=2)])

    labels = {"rule": "nps_detractor"}
    assert registry.get_sample_value("churn_warnings_opened_total", labels) == 0


@pytest.mark.parametrize(
    ("seconds", "le", "expected"),
    [
        (0.0001, "0.0005", 1),
        (0.0005, "0.0005", 1),
        (0.0006, "0.0005", 0),
        (0.0006, "0.001", 1),
        (60.0, "30.0", 0),
        (60.0, "+Inf", 1),
    ],
)
def test_latency_histogram_bucket_bounds_inclusive(
    make_exporter: ExporterFactory,
    registry: CollectorRegistry,
    seconds: float,
    le: str,
    expected: int,
) -> None:
    exporter = make_exporter()

    exporter.observe_latency(seconds)

    bucket = registry.get_sample_value(
        "churn_processing_latency_seconds_bucket", {"le": le}
    )
    assert bucket == expected
    assert registry.get_sample_value("churn_processing_latency_seconds_count") == 1
    assert registry.get_sample_value(
        "churn_processing_latency_seconds_sum"
    ) == pytest.approx(seconds)


def test_consumer_lag_set_and_removed_on_revocation(
    make_exporter: ExporterFactory, registry: CollectorRegistry
) -> None:
    exporter = make_exporter()
    exporter.set_consumer_lag("churn.events", 0, 120)
    exporter.set_consumer_lag("churn.events", 1, 7)

    exporter.remove_partition("churn.events", 0)

    def lag(partition: str) -> float | None:
        labels = {"topic": "churn.events", "partition": partition}
        return registry.get_sample_value("churn_consumer_lag_messages", labels)

    assert lag("0") is None
    assert lag("1") == 7


def test_checkpoint_age_from_last_mark(
    make_exporter: ExporterFactory, registry: CollectorRegistry, now: float
) -> None:
    exporter = make_exporter()
    before = registry.get_sample_value("churn_checkpoint_age_seconds")

    exporter.mark_checkpoint(now - 42)

    assert before is None
    assert registry.get_sample_value("churn_checkpoint_age_seconds") == 42


def test_rule_state_and_readiness(
    make_exporter: ExporterFactory,
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter = make_exporter()
    exporter.set_rule_state(loaded=11, errors=1)
    not_ready = registry.get_sample_value("churn_ready")

    with caplog.at_level(logging.INFO, logger="monitor.outputs.metrics"):
        exporter.set_ready(True)
        exporter.set_ready(True)

    assert registry.get_sample_value("churn_rules_loaded") == 11
    assert registry.get_sample_value("churn_rule_file_errors") == 1
    assert not_ready == 0
    assert registry.get_sample_value("churn_ready") == 1
    assert exporter.readiness() == (True, "")
    assert caplog.text.count("readiness changed: ready=True") == 1
