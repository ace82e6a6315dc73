"""Parts of the live pipeline that need no broker: wall-clock advance, routing."""

from __future__ import annotations

import inspect
import logging
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import REPO
from kafka import KafkaProducer, TopicPartition
from kafka.errors import KafkaTimeoutError
from kafka.producer.sender import Sender

from monitor.app import Monitor, _Task
from monitor.engine.core import Engine
from monitor.engine.loader import load_rules
from monitor.ingest.kafka import (
    KAFKA_ERRORS,
    discard_producer,
    end_transaction,
    translate,
)
from monitor.ingest.producer import route
from monitor.settings import KafkaSettings, Settings, StoreSettings


class _Producer:
    def __init__(self) -> None:
        self.began = 0

    def begin_transaction(self) -> None:
        self.began += 1

    def send(self, *args: object, **kwargs: object) -> None:
        return None


def _monitor(tmp_path: Path) -> tuple[Monitor, Engine, _Producer]:
    settings = Settings(
        kafka=KafkaSettings(idle_advance_s=1),
        store=StoreSettings(path=tmp_path / "s.db"),
    )
    monitor = Monitor(settings, load_rules(REPO / "rules"))
    engine = Engine(monitor.rules, settings.engine)
    tp = TopicPartition("t", 0)
    monitor.tasks[tp] = _Task(tp, engine, None, None)
    producer = _Producer()
    monitor._producer = producer
    monitor._last_input = time.monotonic() - 10
    return monitor, engine, producer


def test_quiet_live_stream_clock_moves_to_wall_time(tmp_path: Path) -> None:
    monitor, engine, producer = _monitor(tmp_path)
    engine.advance_to(time.time() - 3 * 3600)

    monitor.advance_idle_clocks()

    watermark = engine.clock.watermark
    assert watermark is not None
    assert abs(watermark - (time.time() - 7200)) < 5
    assert producer.began == 1


def test_replayed_history_never_judged_against_today(tmp_path: Path) -> None:
    monitor, engine, producer = _monitor(tmp_path)
    old = time.time() - 200 * 86400
    engine.advance_to(old)

    monitor.advance_idle_clocks()

    assert engine.clock.watermark == old
    assert producer.began == 0


def test_producer_routes_by_customer_and_launches_apart() -> None:
    settings = KafkaSettings()

    assert route(b'{"type":"usage","customer_id":"acme"}', settings) == (
        "churn.events",
        b"acme",
    )
    assert route(b'{"type":"release","feature":"x"}', settings) == (
        "churn.releases",
        None,
    )
    assert route(b"{broken", settings) == ("churn.events", None)


def test_every_caught_kafka_error_has_a_mapping() -> None:
    for cls in KAFKA_ERRORS:
        error = translate(cls("boom"), "127.0.0.1:9092")
        assert "boom" in str(error)


def test_commit_blocked_past_limit_reports_not_ready(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monitor, _, _ = _monitor(tmp_path)
    monitor.ready = True
    monitor._blocked = ("commit", time.monotonic() - 6)

    with caplog.at_level(logging.WARNING, logger="monitor.app"):
        monitor.watch_broker()
        monitor.watch_broker()

    assert monitor.ready is False
    assert [r.message for r in caplog.records if "broker lost" in r.message] == [
        "broker lost: commit blocked for 6.0s, kafka-python retrying"
    ]


def test_short_commit_keeps_monitor_ready(tmp_path: Path) -> None:
    monitor, _, _ = _monitor(tmp_path)
    monitor.ready = True
    monitor._blocked = ("commit", time.monotonic() - 1)

    monitor.watch_broker()

    assert monitor.ready is True


def test_idle_probe_answered_brings_monitor_back(tmp_path: Path) -> None:
    monitor, _, _ = _monitor(tmp_path)
    asked: list[object] = []

    class _Consumer:
        def end_offsets(self, partitions: list[TopicPartition]) -> dict[Any, int]:
            asked.append(partitions)
            return {}

    monitor._consumer = _Consumer()  # type: ignore[assignment]
    monitor._broker_lost, monitor.ready = True, False
    monitor._last_probe = time.monotonic() - 10

    monitor._probe_when_idle()
    monitor._probe_when_idle()

    assert len(asked) == 1
    assert monitor.ready is True


def test_idle_probe_hanging_past_limit_reports_broker_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monitor, _, _ = _monitor(tmp_path)
    monitor.ready = True
    monitor.kafka = monitor.kafka.model_copy(update={"broker_lost_after_s": 0.2})
    watched: list[bool] = []

    class _Consumer:
        def end_offsets(self, partitions: list[TopicPartition]) -> dict[Any, int]:
            # kafka-python blocks here while it retries; the watch runs meanwhile.
            time.sleep(0.3)
            monitor.watch_broker()
            watched.append(monitor.ready)
            return {}

    monitor._consumer = _Consumer()  # type: ignore[assignment]
    monitor.tasks = {TopicPartition("t", 0): None}  # type: ignore[dict-item]
    monitor._last_probe = time.monotonic() - 10

    with caplog.at_level(logging.WARNING, logger="monitor.app"):
        monitor._probe_when_idle()

    assert watched == [False]
    assert "broker lost: end-offsets probe blocked for" in caplog.text
    assert monitor.ready is True  # answered in the end: broker back


def test_transaction_end_waits_bounded_then_times_out() -> None:
    class _Result:
        def wait(self, timeout_ms: float | None = None) -> bool:
            assert timeout_ms == 2000
            return False

    class _Manager:
        def begin_commit(self) -> _Result:
            return _Result()

    class _Sender:
        def wakeup(self) -> None:
            return None

    producer = SimpleNamespace(_transaction_manager=_Manager(), _sender=_Sender())

    with pytest.raises(KafkaTimeoutError, match="commit not done within 2s"):
        end_transaction(producer, commit=True, timeout_s=2)  # type: ignore[arg-type]


def test_kafka_python_keeps_the_transaction_internals_we_use() -> None:
    """``end_transaction`` repeats two steps of kafka-python's own commit."""
    source = inspect.getsource(KafkaProducer.commit_transaction)

    assert "self._transaction_manager.begin_commit()" in source
    assert "self._sender.wakeup()" in source
    offsets = inspect.getsource(KafkaProducer.send_offsets_to_transaction)
    assert "self._transaction_manager.send_offsets_to_transaction(" in offsets
    assert callable(Sender.force_close)


def test_discard_producer_stops_the_sender_when_flush_times_out() -> None:
    stopped: list[str] = []

    class _Sender:
        def force_close(self) -> None:
            stopped.append("force_close")

        def join(self, timeout: float) -> None:
            stopped.append(f"join {timeout}")

    class _Producer:
        _sender = _Sender()

        def close(self, timeout: float) -> None:
            raise KafkaTimeoutError("Timeout waiting for future")

    discard_producer(_Producer(), timeout_s=1)  # type: ignore[arg-type]

    assert stopped == ["force_close", "join 1"]


def test_rollback_without_a_commit_rereads_from_the_beginning(tmp_path: Path) -> None:
    monitor, _, _ = _monitor(tmp_path)
    moves: list[tuple[str, TopicPartition, int | None]] = []

    class _Consumer:
        def committed(self, tp: TopicPartition) -> int | None:
            return None

        def seek(self, tp: TopicPartition, offset: int) -> None:
            moves.append(("seek", tp, offset))

        def seek_to_beginning(self, tp: TopicPartition) -> None:
            moves.append(("beginning", tp, None))

    monitor._consumer = _Consumer()  # type: ignore[assignment]
    tp = TopicPartition("t", 0)

    monitor.take_partitions([tp], rebuild=True)

    assert moves == [("beginning", tp, None)]
    assert monitor.tasks[tp].next_offset is None
