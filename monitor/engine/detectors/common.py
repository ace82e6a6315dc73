"""What every detector shares: the context of a judgement and quiet findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

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


# Shared clear findings by recheck day; a plain dict rather than lru_cache,
# whose wrapper a compiled caller reaches through Python (about 660
# instructions a call, measured with callgrind; the dict is a fraction of it).
_QUIET_UNTIL: Final[dict[int, Finding]] = {}
_QUIET_UNTIL_MAX: Final = 256


def quiet_until(recheck_day: int | None) -> Finding:
    """Return a shared clear finding that asks to look again on ``recheck_day``.

    Only for a customer without an open warning: such a finding is read for its
    recheck day and dropped, so one object per day spares an allocation per call.
    """
    if recheck_day is None:
        return QUIET
    finding = _QUIET_UNTIL.get(recheck_day)
    if finding is None:
        if len(_QUIET_UNTIL) >= _QUIET_UNTIL_MAX:
            _QUIET_UNTIL.clear()
        finding = _QUIET_UNTIL[recheck_day] = Finding(False, recheck_day=recheck_day)
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
