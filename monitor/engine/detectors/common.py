"""What every detector shares: the context of a judgement and quiet findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from librt.vecs import vec
from mypy_extensions import i64

from monitor.engine.lifecycle import Finding
from monitor.state.customer import (
    CustomerState,
    DayCounts,
)

__all__ = [
    "DAY_MASK",
    "HOLD",
    "QUIET",
    "Context",
    "Release",
    "counts_for",
    "quiet_until",
    "window",
]


QUIET: Final = Finding(False)
HOLD: Final = Finding(None)
# The day fields of a packed feature record (see ``pack_feature``).
DAY_MASK: Final = (1 << 20) - 1


# Shared clear findings by recheck day, in slots by the day's low bits with the
# day each holds beside them: a dict keyed by day boxes the day on every
# lookup, and an lru_cache wrapper is reached through Python from compiled code.
_QUIET_SLOTS: Final = 512
_QUIET_UNTIL: Final[list[Finding]] = [QUIET] * _QUIET_SLOTS
_QUIET_DAYS: Final = vec[i64]([-1] * _QUIET_SLOTS)


def quiet_until(recheck_day: int | None) -> Finding:
    """Return a shared clear finding that asks to look again on ``recheck_day``.

    Only for a customer without an open warning: such a finding is read for its
    recheck day and dropped, so one object per day spares an allocation per call.
    """
    if recheck_day is None:
        return QUIET
    slot = recheck_day & (_QUIET_SLOTS - 1)
    if _QUIET_DAYS[slot] == recheck_day:
        return _QUIET_UNTIL[slot]
    finding = Finding(False, recheck_day=recheck_day)
    _QUIET_UNTIL[slot] = finding
    _QUIET_DAYS[slot] = recheck_day
    return finding


@dataclass(frozen=True, slots=True)
class Release:
    feature: str
    day: int
    plans: tuple[str, ...] | None


# A written __init__ (see records): one is made per day end and per feedback
# or subscription event.
@dataclass(slots=True, init=False)
class Context:
    """What detectors may know beyond the customer: the day and the population."""

    day: int
    guard_active: bool = False
    outage_days: frozenset[int] = frozenset()
    releases: dict[str, tuple[Release, ...]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        day: int,
        guard_active: bool = False,
        outage_days: frozenset[int] = frozenset(),
        releases: dict[str, tuple[Release, ...]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.day = day
        self.guard_active = guard_active
        self.outage_days = outage_days
        self.releases = {} if releases is None else releases
        self.extra = {} if extra is None else extra


def counts_for(state: CustomerState, series: str | None) -> DayCounts | None:
    """Return the daily counts a rule reads: a series named by ``series_key``
    (worked out once per rule), or all usage events for None."""
    if series is None:
        return state.usage
    return state.series.get(series) if state.series else None


def window(
    counts: DayCounts, first: int, last: int, outage: frozenset[int]
) -> tuple[int, int]:
    """Return the total and the number of days counted, leaving out outage days."""
    if not outage:
        return counts.total(first, last), last - first + 1
    total = sum(n for day, n in counts.days(first, last) if day not in outage)
    days = sum(1 for day in range(first, last + 1) if day not in outage)
    return total, days
