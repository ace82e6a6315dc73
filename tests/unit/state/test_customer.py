"""Daily counters and packed records keep what a plain model would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from monitor.state.customer import (
    CustomerState,
    DayCounts,
    day_of,
    pack_feedback,
    unpack_feedback,
)

CAPACITY = 20


@given(
    st.lists(st.tuples(st.integers(0, 60), st.integers(1, 50)), max_size=80),
    st.integers(0, 80),
    st.integers(0, 25),
)
def test_daycounts_match_a_plain_dict_within_capacity(
    adds: list[tuple[int, int]], end: int, width: int
) -> None:
    """Days arrive in order (as the engine applies them); sums match a dict."""
    counts = DayCounts(1000)
    model: dict[int, int] = {}
    for day, amount in sorted(adds):
        counts.add(1000 + day, amount, CAPACITY)
        model[day] = model.get(day, 0) + amount
    newest = max((d for d, _ in adds), default=0)
    first = max(end - width, newest - CAPACITY + 1)

    expected = sum(n for d, n in model.items() if first <= d <= end)

    assert counts.total(1000 + first, 1000 + end) == expected
    assert len(counts.counts) <= CAPACITY
    assert counts.kept == sum(counts.counts)


@given(
    st.lists(st.tuples(st.integers(0, 9), st.integers(1, 5)), max_size=60),
    st.sampled_from([1, 3, 7, 20]),
    st.sampled_from([1, 3, 7, 20]),
)
def test_daycounts_ring_reads_as_the_days_kept(
    steps: list[tuple[int, int]], capacity: int, later_capacity: int
) -> None:
    """Days a few apart, past the capacity many times over (the counters turn
    as a ring), then a change of capacity: every read, the ordered copy and a
    copy restored from it agree with a plain model of the days kept."""
    counts = DayCounts(100)
    model: dict[int, int] = {}
    day = 100
    for n, (gap, amount) in enumerate(steps):
        cap = capacity if n < len(steps) // 2 else later_capacity
        day += gap
        assert counts.add(day, amount, cap)
        model[day] = model.get(day, 0) + amount
        oldest = counts.base_day
        kept = {d: c for d, c in model.items() if d >= oldest}
        assert day - oldest < max(cap, len(counts.counts))
        assert counts.kept == sum(kept.values())
        assert [counts.get(d) for d in range(oldest - 2, day + 2)] == [
            kept.get(d, 0) for d in range(oldest - 2, day + 2)
        ]
        assert counts.total(oldest - 5, day) == sum(kept.values())
        assert counts.total(day - 2, day) == sum(
            c for d, c in kept.items() if d >= day - 2
        )
        assert counts.days(oldest, day) == sorted(kept.items())
        assert counts.last_nonzero(day + 3) == day
        restored = DayCounts(counts.base_day, counts.ordered())
        assert [restored.get(d) for d in range(oldest, day + 1)] == [
            counts.get(d) for d in range(oldest, day + 1)
        ]
    assert not counts.add(counts.base_day - 1, 1, later_capacity)


@given(st.lists(st.integers(0, 30), min_size=1, max_size=40))
def test_daycounts_last_nonzero_is_latest_day(days: list[int]) -> None:
    counts = DayCounts(500)
    for day in sorted(days):
        counts.add(500 + day, 1, 64)

    assert counts.last_nonzero(500 + 40) == 500 + max(days)
    assert counts.last_nonzero(500 + min(days) - 1) == -1


@given(
    st.integers(0, 60000),
    st.sampled_from(["nps", "csat", "survey"]),
    st.one_of(st.none(), st.integers(0, 10).map(float)),
    st.one_of(st.none(), st.floats(-1, 1).map(lambda x: round(x, 2))),
)
def test_feedback_record_round_trips(
    day: int, channel: str, score: float | None, sentiment: float | None
) -> None:
    got = unpack_feedback(pack_feedback(day, channel, score, sentiment))

    assert got[:3] == (day, channel, score)
    assert (got[3] is None) == (sentiment is None)
    if sentiment is not None and got[3] is not None:
        assert abs(got[3] - sentiment) < 0.006


def test_feature_use_counts_distinct_days() -> None:
    state = CustomerState(first_day=10)
    for day in (10, 10, 11, 15, 15, 15):
        state.record_feature("reports", day)

    assert state.feature_use("reports") == (10, 15, 3)
    assert state.feature_use("missing") is None
    state.record_feature("search", 16)
    assert state.feature_days_max == 3
    restored = CustomerState(first_day=10)
    restored.set_features(state.packed_features())
    assert restored.feature_days_max == 3
    assert restored.packed_features() == state.packed_features()
    assert restored.feature_use("search") == (16, 16, 1)


def test_feedback_memory_is_bounded() -> None:
    state = CustomerState(first_day=0)
    for day in range(100):
        state.record_feedback(day, "survey", 5.0, None)

    records = state.feedback_records()

    assert len(records) == 16
    assert records[-1][0] == 99


@given(
    st.one_of(
        st.floats(-1e10, 5e9, allow_nan=False),
        st.integers(-(10**9), 5 * 10**9).map(float),
        st.integers(-(10**5), 10**5).map(lambda d: d * 86_400.0),
    )
)
def test_day_of_matches_float_floor_division(epoch: float) -> None:
    assert day_of(epoch) == int(epoch // 86_400)
