"""Detection quality on the simulator's history: the issue's acceptance figures."""

from __future__ import annotations

from monitor.backtest import backtest
from monitor.engine.loader import RuleSet
from monitor.simulate import simulate_lines


def test_default_rules_meet_targets_on_simulated_history(
    default_rules: RuleSet,
) -> None:
    """At least 80 % recall, 50 % precision and 14 days median lead time."""
    scores = backtest(simulate_lines(400, 180, seed=7), default_rules)

    overall = scores[-1]
    assert overall.rule.startswith("(all rules")
    assert overall.churners > 50
    assert overall.recall is not None
    assert overall.recall >= 0.8
    assert overall.precision is not None
    assert overall.precision >= 0.5
    assert overall.median_lead_days is not None
    assert overall.median_lead_days >= 14


def test_scores_one_row_per_rule_and_the_set(default_rules: RuleSet) -> None:
    scores = backtest(simulate_lines(50, 120, seed=2), default_rules)

    assert [s.rule for s in scores[:-1]] == sorted(r.name for r in default_rules.rules)
    assert all(0 <= (s.recall or 0) <= 1 for s in scores)
