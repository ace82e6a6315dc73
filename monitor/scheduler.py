"""Periodic work: named interval jobs on APScheduler, and a queue into the main loop.

The engines are not thread-safe. A job that touches them (idle clock advance,
period rollover, checkpoint) must not run on the scheduler's threads; it is added
with ``add_on_main_loop``, which only queues it, and the main loop runs the queue
between two polls with ``queue.drain()``:

    scheduler = Scheduler(registry=exporter.registry)
    scheduler.add_on_main_loop("checkpoint", 60, save_checkpoint)
    scheduler.start()
    while running:
        batch = consumer.poll(timeout_s)
        ...  # process the batch
        scheduler.queue.drain()

An app with a queue of its own passes ``hand_over=monitor.request`` instead and
runs its queue as before; each run is still wrapped, logged and counted.

A failing job is logged and counted (``churn_scheduler_job_errors_total{job}``);
the schedule goes on.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
from collections.abc import Callable
from datetime import UTC

from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import CollectorRegistry, Counter

__all__ = ["MainLoopQueue", "Scheduler"]

logger = logging.getLogger(__name__)

JobFunc = Callable[[], object]
Work = Callable[[], None]


class _JobErrors:
    """Count and log a job's failure; shared by the scheduler and its queue."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.counter = Counter(
            "churn_scheduler_job_errors",
            "Scheduled job runs that raised, by job",
            ["job"],
            registry=registry,
        )

    def run(self, name: str, func: JobFunc) -> bool:
        """Run one job; return False when it raised."""
        # The loop boundary of periodic work: one failing run must not stop the
        # schedule or the main loop, so it is logged, counted and left behind.
        try:
            func()
        except Exception:
            logger.exception("scheduled job failed: job=%s", name)
            self.counter.labels(name).inc()
            return False
        return True


class MainLoopQueue:
    """Work handed from other threads to the main loop, one pending run per name.

    Args:
        hand_over: how a wrapped run reaches the main loop, for an app that has
            its own queue (``Monitor.request``); by default a queue of this
            object's own, emptied by ``drain``.
    """

    def __init__(
        self, errors: _JobErrors, hand_over: Callable[[Work], None] | None = None
    ) -> None:
        self._errors = errors
        self._queue: queue.SimpleQueue[Work] = queue.SimpleQueue()
        self._hand_over = hand_over or self._queue.put
        self._pending: set[str] = set()
        self._lock = threading.Lock()

    def request(self, name: str, func: JobFunc) -> bool:
        """Queue ``func`` for the main loop (any thread); False if already queued.

        A main loop stuck in a long batch would otherwise find the same job queued
        once per missed interval.
        """
        with self._lock:
            if name in self._pending:
                return False
            self._pending.add(name)
        self._hand_over(functools.partial(self._run, name, func))
        return True

    def drain(self) -> int:
        """Run what is queued, in order, on the calling (main) thread; return count."""
        ran = 0
        while not self._queue.empty():
            self._queue.get_nowait()()
            ran += 1

        return ran

    def __len__(self) -> int:
        return self._queue.qsize()

    def _run(self, name: str, func: JobFunc) -> None:
        with self._lock:
            self._pending.discard(name)
        self._errors.run(name, func)


class Scheduler:
    """Run named jobs at fixed intervals, on its own threads or on the main loop.

    Args:
        registry: where the job error counter is registered; a private registry
            when None (errors are still logged).
        hand_over: see ``MainLoopQueue``; main-loop jobs go through it.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        hand_over: Callable[[Work], None] | None = None,
    ) -> None:
        self._errors = _JobErrors(registry or CollectorRegistry())
        self.queue = MainLoopQueue(self._errors, hand_over)
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={
                # A late run is still worth doing once, never several times over.
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": None,
            },
        )
        self._jobs: dict[str, JobFunc] = {}

    @property
    def job_names(self) -> list[str]:
        return sorted(self._jobs)

    def add(self, name: str, interval_s: float, func: JobFunc) -> None:
        """Run ``func`` every ``interval_s`` seconds on a scheduler thread.

        Only for work that is safe off the main thread (it must not touch the
        engines); the first run comes one interval after ``start``.

        Raises:
            ValueError: a name already taken, or an interval that is not positive.
        """
        if name in self._jobs:
            raise ValueError(f"scheduler job {name!r} already added")
        if interval_s <= 0:
            raise ValueError(f"scheduler job {name!r}: interval_s must be > 0")
        self._jobs[name] = func
        self._scheduler.add_job(
            self.run_now, "interval", args=[name], seconds=interval_s, id=name
        )

    def add_on_main_loop(self, name: str, interval_s: float, func: JobFunc) -> None:
        """Queue ``func`` for the main loop every ``interval_s`` seconds."""
        self.add(name, interval_s, lambda: self.queue.request(name, func))

    def run_now(self, name: str) -> bool:
        """Run a job once on the calling thread (as its schedule would)."""
        return self._errors.run(name, self._jobs[name])

    def start(self) -> None:
        self._scheduler.start()
        logger.info("scheduler started: jobs=%s", ",".join(self.job_names))

    def stop(self, wait: bool = True) -> None:
        """Stop scheduling; with ``wait``, let running jobs finish first."""
        if not self._scheduler.running:
            return
        self._scheduler.shutdown(wait=wait)
        logger.info("scheduler stopped")
