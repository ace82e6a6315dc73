"""A customer's memory of event ids answers as a table forgotten day by day would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from monitor.state.customer import CustomerState

# (days the clock moves on before the event, event id, days ahead of the open day)
_STEPS = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from("abcdef"), st.integers(0, 2)),
    max_size=60,
)


@given(_STEPS)
def test_seen_id_matches_a_table_forgotten_at_each_day_close(
    steps: list[tuple[int, str, int]],
) -> None:
    state = CustomerState(first_day=100, customer_id="c1")
    model: dict[str, int] = {}
    open_day = 100
    for advance, event_id, ahead in steps:
        open_day += advance
        model = {i: d for i, d in model.items() if d >= open_day}
        day = open_day + ahead
        expected = event_id in model
        if not expected:
            model[event_id] = day
        assert state.seen_id(event_id, day, open_day) is expected
        assert (state.live_ids(open_day) or {}) == model


@given(_STEPS, st.integers(0, 3))
def test_live_ids_restore_to_the_same_answers(
    steps: list[tuple[int, str, int]], later: int
) -> None:
    state = CustomerState(first_day=100, customer_id="c1")
    open_day = 100
    for advance, event_id, ahead in steps:
        open_day += advance
        state.seen_id(event_id, open_day + ahead, open_day)
    open_day += later
    restored = CustomerState(first_day=100, customer_id="c1")
    restored.restore_ids(state.live_ids(open_day))
    for event_id in "abcdefg":
        assert restored.seen_id(event_id, open_day, open_day) is state.seen_id(
            event_id, open_day, open_day
        )
