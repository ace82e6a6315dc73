"""Each rule kind, through the engine: quiet when it should be, fires, resolves."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from helpers import Harness, daily_usage, event, in_time_order, rules_from

from monitor.engine.loader import RuleSet


def weekly_rhythm(weekday_events: int, weekend_events: int):  # type: ignore[no-untyped-def]
    return lambda day: weekend_events if day % 7 >= 5 else weekday_events


def test_declining_usage_steady_weekly_rhythm_quiet(default_rules: RuleSet) -> None:
    """Weekends with a tenth of the weekday use never look like a decline."""
    lines = daily_usage("c1", range(120), weekly_rhythm(20, 2))

    h = Harness(default_rules).feed(lines).until(120)

    assert h.opened("declining_usage") == []


def test_declining_usage_drop_fires_with_evidence(default_rules: RuleSet) -> None:
    lines = daily_usage("c1", range(56), weekly_rhythm(20, 4))
    lines += daily_usage("c1", range(56, 80), weekly_rhythm(3, 1))

    h = Harness(default_rules).feed(lines).until(80)

    [opened] = h.opened("declining_usage")
    evidence = opened["evidence"]
    assert evidence["baseline_per_day"] > 14
    assert evidence["recent_per_day"] < 0.5 * evidence["baseline_per_day"]
    assert evidence["change_pct"] <= -50
    assert "baseline" in evidence["summary"]
    assert opened["action"].startswith("Schedule a check-in call")
    assert opened["health_score"] == 65


def test_declining_usage_recovery_resolves_once(default_rules: RuleSet) -> None:
    lines = daily_usage("c1", range(56), weekly_rhythm(20, 4))
    lines += daily_usage("c1", range(56, 75), weekly_rhythm(3, 1))
    lines += daily_usage("c1", range(75, 120), weekly_rhythm(20, 4))

    h = Harness(default_rules).feed(lines).until(120)

    assert len(h.opened("declining_usage")) == 1
    [resolved] = h.resolved("declining_usage")
    assert resolved["id"] == h.opened("declining_usage")[0]["id"]
    assert (
        resolved["evidence"]["recent_per_day"]
        >= 0.75 * resolved["evidence"]["baseline_per_day"]
    )


def test_declining_usage_short_history_quiet(default_rules: RuleSet) -> None:
    """Too new to judge: a customer with four weeks of history gets no warning."""
    lines = daily_usage("c1", range(20), weekly_rhythm(20, 4))
    lines += daily_usage("c1", range(20, 40), weekly_rhythm(1, 0))

    h = Harness(default_rules).feed(lines).until(40)

    assert h.opened("declining_usage") == []


def test_declining_usage_small_customer_quiet(default_rules: RuleSet) -> None:
    """Below the minimum baseline volume nothing fires, however it drops."""
    lines = daily_usage("c1", range(0, 56, 3), lambda day: 1)

    h = Harness(default_rules).feed(lines).until(100)

    assert h.opened("declining_usage") == []


def test_inactivity_fires_after_days_and_resolves_on_use(
    default_rules: RuleSet,
) -> None:
    lines = daily_usage("c1", range(21), lambda day: 2)
    lines += daily_usage("c1", range(45, 46), lambda day: 1)

    h = Harness(default_rules).feed(lines).until(50)

    [opened] = h.opened("inactivity")
    assert opened["at"] == "2026-04-06T00:00:00Z"  # end of day 34: 14 days silent
    assert opened["evidence"]["days_silent"] == 14
    [resolved] = h.resolved("inactivity")
    assert resolved["at"] == "2026-04-17T00:00:00Z"


def test_inactivity_cancelled_customer_quiet(default_rules: RuleSet) -> None:
    lines = daily_usage("c1", range(10), lambda day: 2)
    lines.append(event("subscription", 10, status="cancelled"))

    h = Harness(default_rules).feed(lines).until(60)

    assert h.opened("inactivity") == []


def test_population_silence_holds_absence_rules(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rules = rules_from(
        tmp_path, "kind: inactivity\nname: idle\ndays: 2\naction: call\n"
    )
    lines = []
    for day in range(42):
        if day in (35, 36):
            continue  # nobody's events arrive: an ingestion outage
        for n in range(40):
            lines.append(event("usage", day, 10, customer_id=f"c{n}"))

    with caplog.at_level(logging.WARNING, logger="monitor.engine.core"):
        h = Harness(rules).feed(lines).until(42)

    assert h.opened("idle") == []
    assert "absence rules held, population-wide silence" in caplog.text


def test_one_customer_silent_still_fires_among_busy_population(tmp_path: Path) -> None:
    rules = rules_from(
        tmp_path, "kind: inactivity\nname: idle\ndays: 2\naction: call\n"
    )
    lines = [
        event("usage", day, 10, customer_id=f"c{n}")
        for day in range(42)
        for n in range(40)
        if not (n == 0 and day >= 30)
    ]

    h = Harness(rules).feed(lines).until(42)

    assert [r["customer_id"] for r in h.opened("idle")] == ["c0"]


def test_ignored_new_feature_fires_for_active_non_users(default_rules: RuleSet) -> None:
    lines = [event("release", 0, 1, feature="ai_assistant")]
    for customer in ("user", "ignorer", "late_user"):
        lines += daily_usage(customer, range(60), lambda day: 3, feature="reports")
    lines.append(event("usage", 5, 13, customer_id="user", feature="ai_assistant"))
    lines.append(
        event("usage", 30, 13, customer_id="late_user", feature="ai_assistant")
    )

    h = Harness(default_rules).feed(in_time_order(lines)).until(60)

    opened = {r["customer_id"] for r in h.opened("ignored_new_feature")}
    assert opened == {"ignorer", "late_user"}
    assert h.opened("ignored_new_feature", "ignorer")[0]["evidence"]["features"] == [
        "ai_assistant"
    ]
    assert [r["customer_id"] for r in h.resolved("ignored_new_feature")] == [
        "late_user"
    ]


def test_release_for_other_plans_not_expected(default_rules: RuleSet) -> None:
    lines = [
        event("subscription", 0, 0.5, plan="basic"),
        event("release", 0, 1, feature="audit_log", plans=["enterprise"]),
    ]
    lines += daily_usage("c1", range(1, 40), lambda day: 3)

    h = Harness(default_rules).feed(lines).until(40)

    assert h.opened("ignored_new_feature") == []


def test_abandoned_feature_fires_after_regular_use_stops(
    default_rules: RuleSet,
) -> None:
    lines = daily_usage("c1", range(30), lambda day: 2, feature="reports")
    lines += daily_usage("c1", range(30, 70), lambda day: 2, feature="search")

    h = Harness(default_rules).feed(lines).until(70)

    [opened] = h.opened("abandoned_feature")
    assert opened["evidence"]["features"] == ["reports"]


def test_vanishing_feedback_fires_after_steady_cadence_stops(
    default_rules: RuleSet,
) -> None:
    lines = [
        event("feedback", day, channel="survey", score=7) for day in range(0, 71, 10)
    ]

    h = Harness(default_rules).feed(lines).until(130)

    [opened] = h.opened("vanishing_feedback")
    assert opened["evidence"]["days_silent"] == 40
    assert opened["evidence"]["usual_interval_days"] == 10


def test_vanishing_feedback_irregular_answers_quiet(default_rules: RuleSet) -> None:
    lines = [event("feedback", day, channel="survey") for day in (0, 3, 60, 64)]

    h = Harness(default_rules).feed(lines).until(120)

    assert h.opened("vanishing_feedback") == []


def test_nps_detractor_opens_at_event_time_and_clears_on_promoter(
    default_rules: RuleSet,
) -> None:
    lines = [
        event("feedback", 1, 9.5, channel="nps", score=3),
        event("feedback", 10, 9.5, channel="nps", score=10),
    ]

    h = Harness(default_rules).feed(lines).until(12)

    [opened] = h.opened("nps_detractor")
    assert opened["at"] == "2026-03-03T09:30:00Z"
    assert opened["evidence"]["last_score"] == 3
    assert h.resolved("nps_detractor")[0]["at"] == "2026-03-12T09:30:00Z"


def test_repeated_tickets_need_three_within_window(default_rules: RuleSet) -> None:
    spread = [event("feedback", day, channel="support_ticket") for day in (0, 20, 40)]
    burst = [
        event("feedback", day, customer_id="c2", channel="support_ticket")
        for day in (50, 52, 55)
    ]

    h = Harness(default_rules).feed(spread + burst).until(60)

    assert [r["customer_id"] for r in h.opened("repeated_tickets")] == ["c2"]


def test_payment_failed_waits_for_retries(default_rules: RuleSet) -> None:
    retried = [
        event("subscription", 1, status="payment_failed"),
        event("subscription", 2, status="renewed"),
    ]
    stuck = [event("subscription", 1, customer_id="c2", status="payment_failed")]

    h = Harness(default_rules).feed(in_time_order(retried + stuck)).until(10)

    [opened] = h.opened("payment_failed")
    assert opened["customer_id"] == "c2"
    assert opened["at"] == "2026-03-07T00:00:00Z"  # end of the third day after


def test_downgrade_opens_and_cancel_resolves_everything(default_rules: RuleSet) -> None:
    lines = [
        event("subscription", 0, status="started", plan="pro"),
        event("subscription", 3, status="downgraded", plan="basic", mrr=29.0),
        event("subscription", 9, status="cancelled"),
    ]

    h = Harness(default_rules).feed(lines).until(12)

    assert len(h.opened("downgrade")) == 1
    [resolved] = h.resolved("downgrade")
    assert resolved["evidence"]["resolution"] == "customer cancelled"


def test_threshold_ratio_rule_with_hysteresis(tmp_path: Path) -> None:
    rules = rules_from(
        tmp_path,
        """
kind: threshold
name: dislikes
action: Ask what they dislike
metric: ratio
match: {action: dislike}
per: {action: like}
window_days: 7
op: ">"
value: 1.0
clear_value: 0.5
min_denominator: 3
min_open_days: 0
""",
    )
    lines = []
    for day in range(30):
        likes, dislikes = (5, 1) if day < 10 or day >= 20 else (4, 9)
        lines += [event("usage", day, 9, action="like")] * likes
        lines += [event("usage", day, 10, action="dislike")] * dislikes

    h = Harness(rules).feed(lines).until(30)

    [opened] = h.opened("dislikes")
    assert opened["evidence"]["value"] > 1.0
    assert len(h.resolved("dislikes")) == 1
