"""Event-time clock: the watermark and which days are complete.

A day closes when the watermark (largest event time seen minus the allowed lateness)
passes its end. The clock never looks at the wall clock; live mode may push it.
"""

from __future__ import annotations

from monitor.state.customer import SECONDS_PER_DAY

__all__ = ["EventClock"]


class EventClock:
    """Track the largest event time and the first day that is still open."""

    __slots__ = ("lateness_s", "max_event_time", "open_day")

    def __init__(self, lateness_s: float) -> None:
        self.lateness_s = lateness_s
        self.max_event_time: float | None = None
        self.open_day: int | None = None

    @property
    def watermark(self) -> float | None:
        if self.max_event_time is None:
            return None
        return self.max_event_time - self.lateness_s

    def start(self, event_time: float) -> int:
        """Open the clock on the first event, leaving room for late ones; return
        the open day."""
        open_day = int((event_time - self.lateness_s) // SECONDS_PER_DAY)
        self.open_day = open_day
        self.max_event_time = event_time
        return open_day

    def observe(self, event_time: float) -> None:
        if self.max_event_time is None:
            self.start(event_time)
        elif event_time > self.max_event_time:
            self.max_event_time = event_time

    def is_late(self, day: int) -> bool:
        return self.open_day is not None and day < self.open_day

    def closable_until(self, epoch: float | None = None) -> int:
        """Return the first day that cannot close yet at this watermark."""
        watermark = self.watermark if epoch is None else epoch
        if watermark is None:
            return self.open_day or 0
        return int(watermark // SECONDS_PER_DAY)
