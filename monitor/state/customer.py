"""Compact per-customer state: daily counters, feature use, feedback, subscription.

Holds facts only; judging them is the engine's job. Days are whole UTC days since
the epoch (``int(epoch_seconds // 86400)``).
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, Final

from librt.vecs import append, pop, vec
from mypy_extensions import i64

__all__ = [
    "FEEDBACK_CODES",
    "SECONDS_PER_DAY",
    "CustomerState",
    "DayCounts",
    "FeatureUse",
    "FeedbackRecord",
    "channel_mask",
    "day_of",
    "feature_name",
    "feature_number",
    "feedback_limits",
    "feedback_score",
    "feedback_sentiment",
    "pack_feature",
    "pack_feedback",
    "unpack_feature",
    "unpack_feedback",
]

SECONDS_PER_DAY: Final = 86_400
# Channel codes for packed feedback records; order is part of the checkpoint format.
FEEDBACK_CODES: Final = (
    "survey",
    "nps",
    "csat",
    "support_ticket",
    "review",
    "social",
    "other",
)
_CHANNEL_CODE: Final = {name: code for code, name in enumerate(FEEDBACK_CODES)}
# For reads by code: compiled, a Final tuple of literals is built again at every use.
_CHANNEL_OF_CODE: Final = list(FEEDBACK_CODES)
_NONE: Final = 255
_DAY_MASK: Final = (1 << 20) - 1
_FIRST_MASK: Final = _DAY_MASK
_FEEDBACK_KEEP: Final = 16
# Feature names numbered in the order this process first saw them, shared by
# every customer: a customer keeps numbers, not names (see CustomerState).
_FEATURE_NUMBER: Final[dict[str, int]] = {}
_FEATURE_NAME: Final[list[str]] = []


def feature_number(name: str) -> int:
    """Return the process-wide number of a feature name, numbering it if new."""
    number = _FEATURE_NUMBER.get(name)
    if number is None:
        number = _FEATURE_NUMBER[name] = len(_FEATURE_NAME)
        _FEATURE_NAME.append(name)
    return number


def feature_name(number: int) -> str:
    return _FEATURE_NAME[number]


def channel_mask(channels: Iterable[str]) -> int:
    """Return the feedback channels as bits by code (see ``feedback_days_in``)."""
    mask = 0
    for channel in channels:
        code = _CHANNEL_CODE.get(channel)
        if code is not None:
            mask |= 1 << code
    return mask


def day_of(epoch: float) -> int:
    """Return the UTC day of epoch seconds, ``int(epoch // 86400)``.

    The same day through whole seconds: a float floor division goes through
    a float modulo (``fmod``), a few hundred instructions on every event.
    """
    whole = int(epoch)
    if float(whole) > epoch:
        # int() rounds toward zero: a negative time with a fraction.
        whole -= 1
    return whole // SECONDS_PER_DAY


class DayCounts:
    """Daily counters for the last ``capacity`` days, from ``base_day`` on.

    A native vector of 64-bit integers (``librt.vecs``, from mypyc's runtime
    library): compiled, an item is read and written in place, without an int
    object per count, and the collector has nothing to traverse. A list did
    the same through int objects; an ``array`` item goes through Python's
    generic item access. Once it holds ``capacity`` days it is a ring: the
    counter of ``base_day`` sits at ``start``, and a new day reuses the slots
    of the days it pushes out, so a day costs the days it skips, not a move of
    the whole window. ``ordered`` gives the counters oldest first.
    """

    __slots__ = ("base_day", "counts", "kept", "start")

    def __init__(self, base_day: int, counts: Iterable[int] | None = None) -> None:
        self.base_day = base_day
        self.counts: vec[i64] = vec[i64]() if counts is None else vec[i64](counts)
        self.start: i64 = 0
        # The sum of the kept counters, so that a rule can tell at once that no
        # window of them reaches its minimum.
        kept = 0
        for count in self.counts:
            kept += count
        self.kept = kept

    def add(self, day: int, amount: int, capacity: int) -> bool:
        """Add to a day's counter; return False when the day is older than kept."""
        index = day - self.base_day
        if index < 0:
            return False
        size = len(self.counts)
        if index >= capacity and size == capacity:
            index = self._advance(index, capacity)
        elif index >= size or index >= capacity:
            index = self._grow(index, capacity)
        counts = self.counts
        self.kept += amount
        slot = self._slot(index)
        counts[slot] = counts[slot] + amount
        return True

    def _slot(self, index: i64) -> i64:
        """Return where the counter of the day ``index`` days after ``base_day``
        sits (the ring starts at ``start``)."""
        slot = self.start + index
        size = len(self.counts)
        return slot - size if slot >= size else slot

    def _advance(self, index: int, capacity: int) -> int:
        """Turn a full ring on to the day at ``index``: the days pushed out give
        their slots, zeroed, to the new ones. Return the day's new index."""
        counts = self.counts
        size = len(counts)
        shift = index - capacity + 1
        start = self.start
        if shift >= size:
            for i in range(size):
                counts[i] = 0
            self.kept = 0
            start = 0
        else:
            for _ in range(shift):
                self.kept -= counts[start]
                counts[start] = 0
                start += 1
                if start == size:
                    start = 0
        self.start = start
        self.base_day += shift
        return capacity - 1

    def _grow(self, index: int, capacity: int) -> int:
        """Make room for the day at ``index`` while the counters are fewer than
        ``capacity`` (or the capacity changed), in order, oldest first. Return
        the day's new index."""
        counts = self.ordered() if self.start else self.counts
        self.start = 0
        size = len(counts)
        if index >= capacity:
            shift = index - capacity + 1
            if shift >= size:
                counts = vec[i64]()
                self.kept = 0
            else:
                # Moved down in place and the tail popped: the items keep their
                # room (a slice would be exact-sized, and the next append would
                # double it).
                for i in range(shift):
                    self.kept -= counts[i]
                for i in range(size - shift):
                    counts[i] = counts[i + shift]
                for _ in range(shift):
                    counts, _dropped = pop(counts)
            self.base_day += shift
            index -= shift
        while len(counts) <= index:
            counts = append(counts, 0)
        # A vec is a value: growing it may move its items.
        self.counts = counts
        return index

    def ordered(self) -> vec[i64]:
        """Return the counters oldest first, from ``base_day`` on."""
        counts = self.counts
        if not self.start:
            return counts
        ordered = vec[i64]()
        for i in range(len(counts)):
            ordered = append(ordered, counts[self._slot(i)])
        return ordered

    def get(self, day: int) -> int:
        index = day - self.base_day
        if 0 <= index < len(self.counts):
            return self.counts[self._slot(index)]
        return 0

    def total(self, first_day: int, last_day: int) -> int:
        """Sum the counters of days ``first_day..last_day`` inclusive."""
        counts = self.counts
        size = len(counts)
        first = max(first_day - self.base_day, 0) + self.start
        stop = min(last_day - self.base_day + 1, size) + self.start
        total = 0
        # In slot order: up to the end of the vector, then on from its start.
        for i in range(first, min(stop, size)):
            total += counts[i]
        for i in range(max(first - size, 0), stop - size):
            total += counts[i]
        return total

    def days(self, first_day: int, last_day: int) -> list[tuple[int, int]]:
        """Return ``(day, count)`` for the non-zero days in the range."""
        first = max(first_day - self.base_day, 0)
        stop = min(last_day - self.base_day + 1, len(self.counts))
        found = []
        for i in range(first, stop):
            count = self.get(self.base_day + i)
            if count:
                found.append((self.base_day + i, count))
        return found

    def last_nonzero(self, up_to_day: int) -> int:
        """Return the latest day at or before ``up_to_day`` with a count, or -1."""
        stop = min(up_to_day - self.base_day, len(self.counts) - 1)
        for i in range(stop, -1, -1):
            if self.get(self.base_day + i):
                return self.base_day + i
        return -1


FeatureUse = tuple[int, int, int]
FeedbackRecord = tuple[int, str, float | None, float | None]


def pack_feature(first_day: int, last_day: int, days_used: int) -> int:
    """Pack a feature's first day, last day and distinct days used into one int."""
    return first_day | (last_day << 20) | (days_used << 40)


def unpack_feature(packed: int) -> FeatureUse:
    mask = (1 << 20) - 1
    return packed & mask, (packed >> 20) & mask, packed >> 40


def pack_feedback(
    day: int, channel: str, score: float | None, sentiment: float | None
) -> int:
    """Pack one feedback response: day, channel, score x10 and sentiment."""
    score_code = _NONE if score is None else round(score * 10)
    sentiment_code = _NONE if sentiment is None else round((sentiment + 1) * 100)
    return (
        (day << 24) | (_CHANNEL_CODE[channel] << 16) | (score_code << 8)
    ) | sentiment_code


def unpack_feedback(packed: int) -> FeedbackRecord:
    return (
        packed >> 24,
        _CHANNEL_OF_CODE[(packed >> 16) & 0xFF],
        feedback_score(packed),
        feedback_sentiment(packed),
    )


def feedback_limits(
    max_score: float | None, max_sentiment: float | None
) -> tuple[int, int]:
    """Return the highest score and sentiment codes at or under the given values.

    Codes rise with the values they stand for, so "at or under" is a range of
    codes and a packed response is judged without unpacking; -1 matches nothing.
    """
    scores = [c for c in range(_NONE) if max_score is not None and c / 10 <= max_score]
    sentiments = [
        c
        for c in range(_NONE)
        if max_sentiment is not None and c / 100 - 1 <= max_sentiment
    ]
    return max(scores, default=-1), max(sentiments, default=-1)


def feedback_score(packed: int) -> float | None:
    """Return the score of a packed response, or None when it had none."""
    code = (packed >> 8) & 0xFF
    return None if code == _NONE else code / 10


def feedback_sentiment(packed: int) -> float | None:
    """Return the sentiment of a packed response, or None when it had none."""
    code = packed & 0xFF
    return None if code == _NONE else code / 100 - 1


# eq=False: states are compared and hashed by identity (the engine keys tables
# by them); two customers with equal facts are still two customers. A written
# __init__ (see records): one is made for every new customer, and the generated
# one, interpreted, cost about 7,000 instructions.
@dataclass(slots=True, eq=False, init=False)
class CustomerState:
    """What the monitor remembers about one customer; kept small on purpose."""

    # Compiled, the fields lie in this order: those every event or day end
    # reads come first, a cache line or two, then the rarely read ones.
    first_day: int
    # The features used, as pairs in one vector, in order of first use: the
    # feature's number (``feature_number``), then its packed use (see
    # ``pack_feature``). A day of use is a write in place; finding a feature
    # reads one block of memory, with no table per customer.
    features: vec[i64]
    last_usage_day: int = -1
    usage: DayCounts | None = None
    # The most days of use of any one feature (see ``record_feature``).
    feature_days_max: int = 0
    # The event ids seen on days still open, so that a repeat is a duplicate:
    # one id in ``last_id`` (of day ``ids_max_day``), more in ``recent_ids``
    # (id -> day, earliest ``ids_low_day``). Ids of closed days are dropped
    # lazily, at the customer's next event (see ``seen_id``).
    ids_max_day: int = -1
    last_id: str | None = None
    recent_ids: dict[str, int] | None = None
    # The engine's bookkeeping, so that the hot path reads the state it already
    # holds instead of looking the customer up again in engine-wide tables:
    # what it did on the open day (bits), whether it changed since the last
    # checkpoint, its open warnings (rule -> warning, as the engine's warning
    # book holds them, or None; refreshed on every change), the rules of the
    # inactivity kind with a recheck waiting in the engine's table, and the id
    # it is filed under.
    touched: int = 0
    dirty: bool = False
    status: str | None = None
    warnings: dict[str, Any] | None = None
    recheck_bits: int = 0
    # Events of days not yet open (within the lateness), in arrival order.
    pending: list[Any] | None = None
    customer_id: str = ""
    ids_low_day: int = -1
    series: dict[str, DayCounts] | None = None
    feedback: list[int] | None = None
    plan: str | None = None
    mrr: float | None = None
    downgraded_at: float = -1.0
    payment_failed_at: float = -1.0
    payment_ok_at: float = -1.0
    upgraded_at: float = -1.0

    def __init__(
        self,
        first_day: int,
        usage: DayCounts | None = None,
        last_usage_day: int = -1,
        customer_id: str = "",
    ) -> None:
        self.first_day = first_day
        self.usage = usage
        self.last_usage_day = last_usage_day
        self.series = None
        self.features = vec[i64]()
        self.feature_days_max = 0
        self.feedback = None
        self.status = None
        self.plan = None
        self.mrr = None
        self.downgraded_at = -1.0
        self.payment_failed_at = -1.0
        self.payment_ok_at = -1.0
        self.upgraded_at = -1.0
        self.pending = None
        self.last_id = None
        self.recent_ids = None
        self.ids_low_day = -1
        self.customer_id = customer_id
        self.warnings = None
        self.ids_max_day = -1
        self.recheck_bits = 0
        self.touched = 0
        self.dirty = False

    def seen_id(self, event_id: str, day: int, open_day: int) -> bool:
        """Return True when ``event_id`` came already on a day not yet closed
        (``open_day`` or later); otherwise remember it for ``day`` and return False.

        Most customers send one event a day or fewer: their one id is kept
        without a table, and a table of ids is made only for a second id while
        the first is still live. Ids of closed days go at the next event.
        """
        if self.ids_max_day < open_day:
            # Every id held belongs to a closed day.
            self.recent_ids = None
            self.last_id = event_id
            self.ids_max_day = day
            return False
        ids = self.recent_ids
        if ids is None:
            last = self.last_id
            if last == event_id:
                return True
            # A second live id: from now on a table.
            ids = self.recent_ids = {}
            self.ids_low_day = day
            if last is not None:
                ids[last] = self.ids_max_day
                self.ids_low_day = min(day, self.ids_max_day)
            self.last_id = None
        else:
            seen = ids.get(event_id)
            if seen is not None and seen >= open_day:
                return True
            if self.ids_low_day < open_day:
                # Some ids belong to closed days: keep the live ones.
                ids = self.recent_ids = {i: d for i, d in ids.items() if d >= open_day}
                self.ids_low_day = min(ids.values()) if ids else day
        ids[event_id] = day
        if day < self.ids_low_day:
            self.ids_low_day = day
        if day > self.ids_max_day:
            self.ids_max_day = day
        return False

    def live_ids(self, open_day: int) -> dict[str, int] | None:
        """Return id -> day of the ids held for days not yet closed, or None."""
        if self.ids_max_day < open_day:
            return None
        if self.recent_ids is None:
            return None if self.last_id is None else {self.last_id: self.ids_max_day}
        live = {i: d for i, d in self.recent_ids.items() if d >= open_day}
        return live or None

    def restore_ids(self, ids: dict[str, int] | None) -> None:
        """Hold again the ids a checkpoint kept (``live_ids``)."""
        self.last_id, self.recent_ids = None, None
        self.ids_max_day, self.ids_low_day = -1, -1
        if not ids:
            return
        self.ids_max_day = max(ids.values())
        if len(ids) == 1:
            self.last_id = next(iter(ids))
        else:
            self.recent_ids = dict(ids)
            self.ids_low_day = min(ids.values())

    def record_usage(self, day: int, count: int, capacity: int) -> bool:
        """Count usage on a day; return True when it is the day's first use."""
        usage = self.usage
        if usage is None:
            usage = self.usage = DayCounts(day)
        usage.add(day, count, capacity)
        if day > self.last_usage_day:
            self.last_usage_day = day
            return True
        return False

    def record_series(self, key: str, day: int, count: int, capacity: int) -> None:
        if self.series is None:
            self.series = {}
        counts = self.series.get(key)
        if counts is None:
            counts = self.series[key] = DayCounts(day)
        counts.add(day, count, capacity)

    def _feature_at(self, number: int) -> i64:
        """Return where the packed use of feature ``number`` sits in
        ``features``, or -1 if the customer never used it."""
        features = self.features
        for i in range(0, len(features), 2):
            if features[i] == number:
                return i + 1
        return -1

    def record_feature(self, feature: str, day: int) -> None:
        number = feature_number(feature)
        at = self._feature_at(number)
        if at < 0:
            features = append(self.features, number)
            self.features = append(features, pack_feature(day, day, 1))
            if self.feature_days_max < 1:
                self.feature_days_max = 1
            return
        packed = self.features[at]
        # Days arrive in order (the engine applies a day's events only while it
        # is the open day), so a later day is a new day of use.
        if day > (packed >> 20) & _DAY_MASK:
            used = (packed >> 40) + 1
            self.features[at] = (packed & _FIRST_MASK) | (day << 20) | (used << 40)
            if used > self.feature_days_max:
                self.feature_days_max = used

    def packed_features(self) -> dict[str, int] | None:
        """Return feature name -> packed use (``pack_feature``), in order of first
        use, as checkpoints hold; None when the customer used none."""
        features = self.features
        if not len(features):
            return None
        return {
            _FEATURE_NAME[features[i]]: features[i + 1]
            for i in range(0, len(features), 2)
        }

    def set_features(self, features: dict[str, int] | None) -> None:
        """Put back packed feature uses (``packed_features``), as from a checkpoint."""
        kept = vec[i64]()
        most = 0
        for name, packed in (features or {}).items():
            kept = append(kept, feature_number(name))
            kept = append(kept, packed)
            most = max(most, packed >> 40)
        self.features = kept
        self.feature_days_max = most

    def feature_use(self, feature: str) -> FeatureUse | None:
        number = _FEATURE_NUMBER.get(feature)
        at = -1 if number is None else self._feature_at(number)
        return None if at < 0 else unpack_feature(self.features[at])

    def record_feedback(
        self, day: int, channel: str, score: float | None, sentiment: float | None
    ) -> None:
        if self.feedback is None:
            self.feedback = []
        bisect.insort(self.feedback, pack_feedback(day, channel, score, sentiment))
        if len(self.feedback) > _FEEDBACK_KEEP:
            del self.feedback[0]

    def feedback_records(self) -> list[FeedbackRecord]:
        if not self.feedback:
            return []
        return [unpack_feedback(packed) for packed in self.feedback]

    def feedback_between(
        self, first_day: int, last_day: int, channel: str | None = None
    ) -> list[int]:
        """Return the packed responses of days ``first_day..last_day``, oldest first."""
        packed = self.feedback
        if not packed:
            return []
        # At most _FEEDBACK_KEEP responses, sorted with the day as the top
        # field: a plain scan, compiled, beats bisecting through Python calls.
        code = -1 if channel is None else _CHANNEL_CODE.get(channel, _NONE)
        found: list[int] = []
        for p in packed:
            day = p >> 24
            if day > last_day:
                break
            if day >= first_day and (code < 0 or (p >> 16) & 0xFF == code):
                found.append(p)
        return found

    def feedback_days(self, channels: Collection[str]) -> list[int]:
        """Return the distinct days with a response on one of ``channels``, sorted."""
        return self.feedback_days_in(channel_mask(channels))

    def feedback_days_in(self, mask: int) -> list[int]:
        """Return the distinct days with a response on a channel of ``mask``
        (see ``channel_mask``), sorted."""
        days: list[int] = []
        if not self.feedback:
            return days
        last = -1
        # Sorted with the day as the top field: a day repeats only in a row.
        for p in self.feedback:
            if mask >> ((p >> 16) & 0xFF) & 1:
                day = p >> 24
                if day != last:
                    days.append(day)
                    last = day
        return days

    @property
    def is_cancelled(self) -> bool:
        return self.status == "cancelled"
