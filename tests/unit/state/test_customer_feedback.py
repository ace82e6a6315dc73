"""Feedback read by day range or channel matches a filter over every record."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from monitor.state.customer import (
    FEEDBACK_CODES,
    CustomerState,
    feedback_limits,
    unpack_feedback,
)

RESPONSES = st.lists(
    st.tuples(
        st.integers(0, 120),
        st.sampled_from(FEEDBACK_CODES),
        st.one_of(st.none(), st.integers(0, 10).map(float)),
        st.one_of(st.none(), st.integers(-100, 100).map(lambda x: x / 100)),
    ),
    max_size=30,
)


def _state(
    responses: list[tuple[int, str, float | None, float | None]],
) -> CustomerState:
    state = CustomerState(first_day=0)
    for day, channel, score, sentiment in responses:
        state.record_feedback(day, channel, score, sentiment)
    return state


@given(
    RESPONSES,
    st.integers(-10, 130),
    st.integers(0, 60),
    st.one_of(st.none(), st.sampled_from(FEEDBACK_CODES)),
)
def test_feedback_between_matches_a_filter(
    responses: list[tuple[int, str, float | None, float | None]],
    first: int,
    width: int,
    channel: str | None,
) -> None:
    state = _state(responses)
    last = first + width

    got = [unpack_feedback(p) for p in state.feedback_between(first, last, channel)]

    assert got == [
        r
        for r in state.feedback_records()
        if first <= r[0] <= last and (channel is None or r[1] == channel)
    ]


@given(RESPONSES, st.sets(st.sampled_from(FEEDBACK_CODES)))
def test_feedback_days_are_the_distinct_days_of_the_channels(
    responses: list[tuple[int, str, float | None, float | None]],
    channels: set[str],
) -> None:
    state = _state(responses)

    days = state.feedback_days(channels)

    assert days == sorted({r[0] for r in state.feedback_records() if r[1] in channels})


LIMITS = st.one_of(
    st.none(),
    st.sampled_from([-1.0, -0.5, 0.0, 0.3, 2.0, 6.0, 10.0]),
    st.floats(-2, 12, allow_nan=False),
)


@given(RESPONSES, LIMITS, LIMITS)
def test_feedback_limits_agree_with_the_values(
    responses: list[tuple[int, str, float | None, float | None]],
    max_score: float | None,
    max_sentiment: float | None,
) -> None:
    state = _state(responses)
    score_top, sentiment_top = feedback_limits(max_score, max_sentiment)

    for packed in state.feedback or []:
        _, _, score, sentiment = unpack_feedback(packed)
        by_value = (
            max_score is not None and score is not None and score <= max_score
        ) or (
            max_sentiment is not None
            and sentiment is not None
            and sentiment <= max_sentiment
        )
        by_code = (packed >> 8) & 0xFF <= score_top or packed & 0xFF <= sentiment_top
        assert by_code == by_value
