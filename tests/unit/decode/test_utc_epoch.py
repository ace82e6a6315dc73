"""The fast reading of UTC timestamps agrees with ``datetime`` or steps aside."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import example, given, settings
from hypothesis import strategies as st

from monitor.decode.decoder import utc_epoch

MOMENTS = st.datetimes(
    min_value=datetime(1965, 1, 1), max_value=datetime(2105, 12, 31, 23, 59, 59)
)
SHAPES = st.sampled_from(["seconds", "milliseconds", "microseconds", "auto"])
SUFFIXES = st.sampled_from(["Z", "+00:00", "-00:00", "+02:00", "-05:30", ""])


def _slow(text: str) -> float | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return None if parsed.tzinfo is None else parsed.timestamp()


@settings(max_examples=2000)
@given(MOMENTS, SHAPES, SUFFIXES)
@example(datetime(2024, 2, 29, 23, 59, 59, 999999), "microseconds", "Z")
@example(datetime(2100, 1, 1), "seconds", "Z")
@example(datetime(1970, 1, 1), "seconds", "+00:00")
def test_utc_epoch_equals_fromisoformat_or_declines(
    moment: datetime, shape: str, suffix: str
) -> None:
    text = moment.isoformat(timespec=shape) + suffix
    fast = utc_epoch(text)

    if fast >= 0:
        assert fast == _slow(text)
    if suffix in ("Z", "+00:00") and 1970 <= moment.year <= 2099 and shape != "auto":
        # The shape producers write is always read fast.
        assert fast == _slow(text)
        assert abs(fast - moment.replace(tzinfo=UTC).timestamp()) < 1


@settings(max_examples=3000)
@given(
    st.text(alphabet="0123456789-T:.Z+ tz", min_size=18, max_size=34),
    st.sampled_from(["", "2026-02-28T12:00:00Z", "2026-02-29T12:00:00Z"]),
)
@example("2026-13-01T00:00:00Z", "")
@example("2026-04-31T00:00:00Z", "")
@example("2026-01-01T24:00:00Z", "")
@example("2026-01-01T23:60:00Z", "")
@example("2026-01-01T23:59:60Z", "")
@example("2026-01-01T23:59:59.12Z", "")
@example("2026-01-01 23:59:59Z", "")
@example("2026-01-01T23:59:59.1x3Z", "")
def test_utc_epoch_never_reads_what_fromisoformat_refuses(text: str, base: str) -> None:
    for candidate in (text, base):
        fast = utc_epoch(candidate)
        if fast >= 0:
            assert fast == _slow(candidate)


def test_utc_epoch_declines_other_offsets() -> None:
    moment = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=2)))

    assert utc_epoch(moment.isoformat()) == -1.0


@settings(max_examples=500)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["2026-02-28", "2026-02-29", "2026-03-01", "2024-02-29"]),
            st.sampled_from(
                ["T00:00:00", "T23:59:59.500", "T24:00:00", "T12:61:00", ""]
            ),
            st.sampled_from(["Z", "+00:00", "+01:00"]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_utc_epoch_in_a_row_reads_each_as_alone(
    parts: list[tuple[str, str, str]],
) -> None:
    """The date read last is reused for the next timestamp that starts with
    it: a run of timestamps, valid or not, reads as each one alone would."""
    for date, clock, suffix in parts:
        text = date + clock + suffix
        fast = utc_epoch(text)
        slow = _slow(text)
        if fast >= 0:
            assert fast == slow
        elif suffix != "+01:00" and slow is not None and len(clock) >= 9:
            raise AssertionError(f"{text} not read")
