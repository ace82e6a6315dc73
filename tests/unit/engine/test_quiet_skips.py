"""Leaving quiet detectors uncalled changes no warning, recheck or state."""

from __future__ import annotations

from helpers import EventFactory, Harness, stamp

from monitor.engine.core import Engine
from monitor.engine.loader import RuleSet
from monitor.engine.snapshot import dump_customer, dump_engine
from monitor.simulate import simulate_lines

LINES = simulate_lines(120, 150, seed=5)


def _checkpoint(engine: Engine) -> list[bytes | None]:
    """Return every blob a checkpoint would write, rechecks included."""
    blobs = [dump_customer(engine, cid) for cid in sorted(engine.customers)]
    return [*blobs, dump_engine(engine)]


def test_skipping_quiet_rules_gives_the_same_records(default_rules: RuleSet) -> None:
    skipping = Harness(default_rules).feed(LINES).until(160)
    calling = Harness(default_rules)
    calling.engine.skip_quiet = False
    calling.feed(LINES).until(160)

    assert skipping.records == calling.records
    assert skipping.engine.summary() == calling.engine.summary()
    assert _checkpoint(skipping.engine) == _checkpoint(calling.engine)


def test_declining_usage_judged_on_the_first_day_old_enough(
    default_rules: RuleSet, make_event: EventFactory
) -> None:
    """Recent 14 + gap 14 + baseline 28 days: judged from day 55 on, not before."""
    busy = [make_event("usage", day, 9 + n / 4) for day in range(42) for n in range(20)]
    slow = [make_event("usage", day, 12) for day in range(42, 60)]

    h = Harness(default_rules).feed(busy + slow).until(60)

    assert h.opened("declining_usage", "c1")[0]["at"] == stamp(56, 0)


def _both_ways(rules: RuleSet, lines: list[bytes], until: int) -> Harness:
    """Feed the lines with and without skipping; return the skipping run."""
    skipping = Harness(rules).feed(lines).until(until)
    calling = Harness(rules)
    calling.engine.skip_quiet = False
    calling.feed(lines).until(until)

    assert skipping.records == calling.records
    return skipping


def test_inactivity_fires_on_the_day_silence_reaches_its_days(
    default_rules: RuleSet, make_event: EventFactory
) -> None:
    """Daily use to day 20: the recheck asked for on day 0 carries on to day 34."""
    lines = [make_event("usage", day, 12) for day in range(21)]

    h = _both_ways(default_rules, lines, 40)

    assert h.opened("inactivity", "c1")[0]["at"] == stamp(35, 0)


def test_inactivity_judged_after_a_cancellation_without_further_use(
    default_rules: RuleSet, make_event: EventFactory
) -> None:
    """Back on day 30 without using the product again: the recheck pending for
    day 28 fell while it was cancelled, the day-34 one still counts."""
    lines = [make_event("subscription", 0, 8, status="started")]
    lines += [make_event("usage", day, 12) for day in range(21)]
    lines += [
        make_event("subscription", 21, 9, status="cancelled"),
        make_event("subscription", 30, 9, status="reactivated"),
    ]

    h = _both_ways(default_rules, lines, 40)

    assert h.opened("inactivity", "c1")[0]["at"] == stamp(35, 0)


def test_abandoned_feature_skipped_until_a_feature_is_used_regularly(
    default_rules: RuleSet, make_event: EventFactory
) -> None:
    """Reports on 6 days (min_use_days) for c1, on 5 for c2, then use without a
    feature: c1 dropped a regular feature, c2 never had one, and the run that
    leaves the rule uncalled below 6 days opens the same warning the same day."""
    lines = []
    for customer, days in (("c1", 6), ("c2", 5)):
        lines += [
            make_event("usage", day, 12, customer_id=customer, feature="reports")
            for day in range(days)
        ]
        lines += [
            make_event("usage", day, 12, customer_id=customer)
            for day in range(days, 90)
        ]

    h = _both_ways(default_rules, lines, 90)

    [opened] = h.opened("abandoned_feature")
    assert (opened["customer_id"], opened["evidence"]["features"]) == (
        "c1",
        ["reports"],
    )
