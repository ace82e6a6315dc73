"""Scheduled jobs: run on time, failures logged and counted, main-loop hand-over."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry

from monitor.scheduler import Scheduler


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def scheduler(registry: CollectorRegistry) -> Iterator[Scheduler]:
    scheduler = Scheduler(registry=registry)
    yield scheduler
    scheduler.stop()


def errors(registry: CollectorRegistry, job: str) -> float | None:
    return registry.get_sample_value("churn_scheduler_job_errors_total", {"job": job})


def broken() -> None:
    raise ValueError("disk full")


def test_failing_job_logged_counted_and_kept(
    scheduler: Scheduler,
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    scheduler.add("checkpoint", 60, broken)

    with caplog.at_level(logging.ERROR, logger="monitor.scheduler"):
        first = scheduler.run_now("checkpoint")
        second = scheduler.run_now("checkpoint")

    assert (first, second) == (False, False)
    assert errors(registry, "checkpoint") == 2
    assert "scheduled job failed: job=checkpoint" in caplog.text
    assert "ValueError: disk full" in caplog.text


def test_job_runs_on_its_interval(scheduler: Scheduler) -> None:
    ran = threading.Event()
    scheduler.add("refresh", 0.05, ran.set)

    scheduler.start()

    assert ran.wait(timeout=10)


def test_interval_job_survives_its_own_failure(
    scheduler: Scheduler, registry: CollectorRegistry
) -> None:
    """A run that raises does not stop the runs after it."""
    runs: list[int] = []
    again = threading.Event()

    def flaky() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("first run fails")
        again.set()

    scheduler.add("flaky", 0.05, flaky)
    scheduler.start()

    assert again.wait(timeout=10)
    assert errors(registry, "flaky") == 1


def test_main_loop_job_runs_only_when_drained(scheduler: Scheduler) -> None:
    ran_on: list[int] = []
    scheduler.add_on_main_loop(
        "advance", 60, lambda: ran_on.append(threading.get_ident())
    )
    requester = threading.Thread(target=scheduler.run_now, args=["advance"])
    requester.start()
    requester.join()
    queued = len(scheduler.queue)

    drained = scheduler.queue.drain()

    assert queued == 1
    assert drained == 1
    assert ran_on == [threading.get_ident()]


def test_main_loop_request_coalesced_while_pending(scheduler: Scheduler) -> None:
    """A main loop busy for several intervals runs the job once, not once per tick."""
    runs: list[int] = []
    scheduler.add_on_main_loop("advance", 60, lambda: runs.append(1))

    for _ in range(5):
        scheduler.run_now("advance")
    scheduler.queue.drain()
    scheduler.run_now("advance")
    scheduler.queue.drain()

    assert runs == [1, 1]


def test_main_loop_job_failure_counted_at_drain(
    scheduler: Scheduler,
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    later: list[int] = []
    scheduler.queue.request("checkpoint", broken)
    scheduler.queue.request("advance", lambda: later.append(1))

    with caplog.at_level(logging.ERROR, logger="monitor.scheduler"):
        drained = scheduler.queue.drain()

    assert drained == 2
    assert later == [1]
    assert errors(registry, "checkpoint") == 1
    assert "scheduled job failed: job=checkpoint" in caplog.text


def test_main_loop_jobs_handed_to_the_apps_own_queue(
    registry: CollectorRegistry,
) -> None:
    """With hand_over, runs go to the app's queue, still wrapped and counted."""
    app_queue: list[Callable[[], None]] = []
    scheduler = Scheduler(registry=registry, hand_over=app_queue.append)
    scheduler.add_on_main_loop("checkpoint", 60, broken)

    scheduler.run_now("checkpoint")
    scheduler.run_now("checkpoint")
    for work in app_queue:
        work()

    assert len(app_queue) == 1
    assert errors(registry, "checkpoint") == 1
    assert scheduler.queue.drain() == 0


def test_drain_with_nothing_queued_runs_nothing(scheduler: Scheduler) -> None:
    assert scheduler.queue.drain() == 0


@pytest.mark.parametrize(
    ("name", "interval_s", "match"),
    [
        ("refresh", 10, "already added"),
        ("other", 0, "must be > 0"),
        ("other", -5, "must be > 0"),
    ],
)
def test_bad_job_refused(
    scheduler: Scheduler, name: str, interval_s: float, match: str
) -> None:
    scheduler.add("refresh", 10, lambda: None)

    with pytest.raises(ValueError, match=match):
        scheduler.add(name, interval_s, lambda: None)


def test_start_and_stop_logged(
    scheduler: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler.add("refresh", 10, lambda: None)
    scheduler.add_on_main_loop("checkpoint", 60, lambda: None)

    with caplog.at_level(logging.INFO, logger="monitor.scheduler"):
        scheduler.start()
        scheduler.stop()
        scheduler.stop()

    assert "scheduler started: jobs=checkpoint,refresh" in caplog.text
    assert caplog.text.count("scheduler stopped") == 1
