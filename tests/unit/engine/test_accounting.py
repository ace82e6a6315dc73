"""Churn per period and plan: at start, lost after the grace, rates, MRR."""

from __future__ import annotations

from helpers import Harness, event

from monitor.engine.accounting import period_of
from monitor.engine.loader import RuleSet


def test_period_labels() -> None:
    day = 20_514  # 2026-03-02, a Monday

    assert period_of(day, "month") == ("2026-03", 20_513)
    assert period_of(day, "week") == ("2026-W10", 20_514)
    assert period_of(day, "quarter") == ("2026-Q1", 20_454)


def test_monthly_churn_rate_with_grace_and_mrr(default_rules: RuleSet) -> None:
    # START is 2026-03-02: day -2 is 28 February, days 30+ are in April.
    lines = [
        event("subscription", -2, customer_id=f"c{n}", plan="pro", mrr=100.0)
        for n in range(10)
    ]
    lines += [
        event("subscription", 5, customer_id="c0", status="cancelled"),
        event("subscription", 8, customer_id="c1", status="cancelled"),
        event("subscription", 11, customer_id="c1", status="reactivated"),
        event(
            "subscription",
            12,
            customer_id="c2",
            status="downgraded",
            plan="basic",
            mrr=30.0,
        ),
        event("subscription", 40, customer_id="c3", status="cancelled"),
    ]

    h = Harness(default_rules).feed(lines).until(60)

    march = h.engine.ledger.periods["2026-03"]
    assert march.at_start == {"pro": 10}
    assert march.lost == {"pro": 1}
    assert march.churn_rate() == 10.0
    assert march.mrr_at_start == {"pro": 1000.0}
    assert march.mrr_lost == {"pro": 100.0}
    assert march.mrr_contraction == {"pro": 70.0}
    april = h.engine.ledger.periods["2026-04"]
    assert april.at_start == {"pro": 8, "basic": 1}
    assert april.lost == {"pro": 1}


def test_first_period_marked_partial(default_rules: RuleSet) -> None:
    h = Harness(default_rules).feed([event("subscription", 3)]).until(40)

    assert h.engine.ledger.periods["2026-03"].partial is True
    assert h.engine.ledger.periods["2026-04"].partial is False


def test_nps_and_csat_from_feedback(default_rules: RuleSet) -> None:
    scores = [10, 9, 8, 3, 0]
    lines = [
        event("feedback", 1, customer_id=f"c{n}", channel="nps", score=s)
        for n, s in enumerate(scores)
    ]
    lines += [
        event("feedback", 2, customer_id="c9", channel="csat", score=s)
        for s in (5, 4, 1)
    ]

    h = Harness(default_rules).feed(lines)

    stats = h.engine.feedback_stats
    assert stats.nps(20_516) == 0.0  # 2 promoters, 2 detractors of 5
    assert round(stats.csat(20_516) or 0, 1) == 66.7
