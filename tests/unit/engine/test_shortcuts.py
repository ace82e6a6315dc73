"""The detectors' shortcuts for customers too small to judge give the full verdicts.

Declining usage answers at once, with no recheck, when all the counts kept fall
short of the minimum baseline (no later day can fire without new usage), and
the abandoned-feature rule when no feature was used on enough days; each test
turns the shortcut off (a bound no customer reaches) and compares.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.engine.detectors import Context, detect, params_for
from monitor.engine.schema import RuleFile
from monitor.state.customer import CustomerState

START = 20_000
COMMON = {"name": "r", "action": "Call them.", "severity": "warning", "weight": 5}
DECLINING = params_for(
    RuleFile.model_validate(
        {
            "rule": {
                **COMMON,
                "kind": "declining_usage",
                "recent_days": 7,
                "gap_days": 0,
                "baseline_days": 14,
                "min_baseline_per_day": 0.5,
                "min_z": 1.0,
            }
        }
    ).rule
)
ABANDONED = params_for(
    RuleFile.model_validate(
        {
            "rule": {
                **COMMON,
                "kind": "ignored_feature",
                "mode": "abandoned",
                "min_use_days": 3,
                "silence_factor": 2.0,
                "after_days": 3,
                "max_age_days": 30,
                "active_within_days": 40,
            }
        }
    ).rule
)
# (day offset, events that day, feature)
_USE = st.lists(
    st.tuples(st.integers(0, 40), st.integers(1, 4), st.sampled_from("abc")),
    max_size=40,
)


def _state(uses: list[tuple[int, int, str]]) -> CustomerState:
    state = CustomerState(first_day=START)
    for offset, events, feature in sorted(uses):
        for _ in range(events):
            state.record_usage(START + offset, 1, 60)
        state.record_feature(feature, START + offset)
    return state


@settings(max_examples=300)
@given(_USE, st.integers(21, 50))
def test_declining_shortcut_matches_the_full_comparison(
    uses: list[tuple[int, int, str]], offset: int
) -> None:
    state = _state(uses)
    ctx = Context(START + offset)
    quick = detect(DECLINING, state, ctx, None)
    kept = state.usage.kept if state.usage is not None else 0
    if state.usage is not None:
        state.usage.kept = 10**9
    full = detect(DECLINING, state, ctx, None)

    assert quick.fire == full.fire
    if quick.recheck_day != full.recheck_day:
        # The shortcut took it and asks for no recheck: no later day without
        # new usage may fire either, outage days in the recent window or not.
        assert quick.recheck_day is None
        assert kept / DECLINING.baseline_days < DECLINING.min_baseline_per_day
        for later in range(ctx.day + 1, ctx.day + 60):
            for outage in (frozenset(), frozenset(range(ctx.day + 1, later + 1))):
                verdict = detect(DECLINING, state, Context(later, False, outage), None)
                assert not verdict.fire


@settings(max_examples=300)
@given(_USE, st.integers(0, 50))
def test_abandoned_shortcut_matches_the_full_scan(
    uses: list[tuple[int, int, str]], offset: int
) -> None:
    state = _state(uses)
    ctx = Context(START + offset)
    quick = detect(ABANDONED, state, ctx, None)
    state.feature_days_max = 10**6
    full = detect(ABANDONED, state, ctx, None)

    assert (quick.fire, quick.recheck_day, quick.evidence) == (
        full.fire,
        full.recheck_day,
        full.evidence,
    )
