"""Live from a real Kafka broker: same warnings as replay, through crashes,
scale-out, broker outages and garbage on the topic."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from kafka_fixture import broker_control
from live import (
    LiveSetup,
    MonitorProcess,
    changelog_starts,
    committed_total,
    every_partition_committed,
    expected_records,
    record_key,
    wait_until,
)

from monitor.simulate import simulate_lines

pytestmark = pytest.mark.integration


@pytest.fixture
def history(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(simulate_lines(40, 110, seed=21)) + b"\n")
    return path


@pytest.fixture
def live(kafka_bootstrap: str, tmp_path: Path) -> LiveSetup:
    return LiveSetup(kafka_bootstrap, tmp_path)


def _assert_same_as_replay(
    live: LiveSetup, history: Path, timeout_s: float = 120
) -> None:
    expected = sorted(map(record_key, expected_records(history)))
    assert expected, "the history should give warnings"
    got: list[tuple[str, ...]] = []

    def complete() -> bool:
        got[:] = sorted(map(record_key, live.warnings()))
        return len(got) >= len(expected)

    wait_until(complete, timeout_s, f"{len(expected)} warning records")
    time.sleep(1.5)
    got = sorted(map(record_key, live.warnings()))
    assert len(got) == len(set(got)), "a warning record was published twice"
    assert got == expected


def test_run_gives_the_same_warnings_as_replay(
    live: LiveSetup, history: Path, tmp_path: Path
) -> None:
    live.produce(history).wait(60)
    monitor = MonitorProcess(live.config("a"), tmp_path / "a.log")
    try:
        _assert_same_as_replay(live, history)
    finally:
        assert monitor.stop() == 0
    log = (tmp_path / "a.log").read_text()
    assert "partitions assigned" in log
    assert "monitor stopped" in log


def test_kill_9_and_restart_loses_nothing_and_repeats_nothing(
    live: LiveSetup, history: Path, tmp_path: Path
) -> None:
    producer = live.produce(history, rate=4000)
    first = MonitorProcess(live.config("a"), tmp_path / "a.log")
    time.sleep(3.5)
    first.kill()
    second = MonitorProcess(live.config("a"), tmp_path / "a.log")
    try:
        producer.wait(60)
        _assert_same_as_replay(live, history)
    finally:
        assert second.stop() == 0
    # After a kill -9 a partition comes back from the local store, or from the
    # changelog when the kill fell between a commit and its local save; after
    # a clean stop the local store is current and a restart reads only it.
    restores = _restore_sources((tmp_path / "a.log").read_text())
    assert restores
    assert set(restores) <= {"empty", "local", "changelog"}
    third = MonitorProcess(live.config("a"), tmp_path / "c.log")
    try:
        wait_until(
            lambda: "partitions assigned" in (tmp_path / "c.log").read_text(),
            60,
            "the third start owning its partitions",
        )
    finally:
        assert third.stop() == 0
    assert set(_restore_sources((tmp_path / "c.log").read_text())) == {"local"}


def _restore_sources(log: str) -> list[str]:
    return re.findall(r"state restored: partition=\S+ source=(\w+)", log)


def test_two_instances_one_killed_same_warnings(
    live: LiveSetup, history: Path, tmp_path: Path
) -> None:
    producer = live.produce(history, rate=3000)
    # Small snapshots: b restores from snapshots, deltas after them, and
    # partitions whose records before a snapshot are deleted.
    snapshots = {"changelog_snapshot_min_bytes": 16_384}
    a = MonitorProcess(live.config("a", **snapshots), tmp_path / "a.log")
    b = MonitorProcess(live.config("b", **snapshots), tmp_path / "b.log")
    group, topic = live.kafka["group_id"], live.kafka["topics"][0]
    try:
        # Kill a only once it owns partitions whose state it has committed, so
        # that b has to take that state over from the changelog.
        wait_until(
            lambda: all(
                "partitions assigned: partitions=['" in (tmp_path / n).read_text()
                for n in ("a.log", "b.log")
            ),
            60,
            "both instances owning partitions",
        )
        wait_until(
            lambda: every_partition_committed(live.bootstrap, group, topic),
            60,
            "a commit on every partition",
        )
        time.sleep(1)  # a commit of a's after the last rebalance
        before_kill = len((tmp_path / "b.log").read_text())
        a.kill()
        producer.wait(60)
        # a may have read its partitions to the end before it died: wait for b
        # to take them over (after the session timeout), not just for the output.
        wait_until(
            lambda: (
                "source=changelog" in (tmp_path / "b.log").read_text()[before_kill:]
            ),
            90,
            "b restoring a's partitions from the changelog",
        )
        _assert_same_as_replay(live, history, timeout_s=180)
    finally:
        b.stop()
    assert "changelog snapshot written" in (tmp_path / "a.log").read_text()
    assert any(changelog_starts(live.bootstrap, live.kafka["changelog_topic"]))


@pytest.mark.parametrize(
    ("down_s", "kafka"),
    [
        # Stop, four seconds down and start take longer than the 2 s after
        # which a blocked commit or a failed probe reports the broker lost.
        pytest.param(4, {"broker_lost_after_s": 2}, id="short"),
        # Longer than the transaction timeout: the coordinator aborts the open
        # transaction while the monitor waits to commit it.
        pytest.param(
            10,
            {"transaction_timeout_s": 3, "broker_lost_after_s": 2},
            id="past-transaction-timeout",
        ),
    ],
)
def test_broker_restart_mid_stream_loses_nothing(
    live: LiveSetup,
    tmp_path: Path,
    kafka_bootstrap: str,
    down_s: float,
    kafka: dict[str, Any],
) -> None:
    control = broker_control(kafka_bootstrap)
    history = tmp_path / "long.jsonl"
    # Large enough that the monitor is still consuming when the broker stops.
    history.write_bytes(b"\n".join(simulate_lines(300, 110, seed=23)) + b"\n")
    live.produce(history).wait(60)
    total = len(history.read_bytes().splitlines())
    group, topic = live.kafka["group_id"], live.kafka["topics"][0]
    monitor = MonitorProcess(live.config("a", **kafka), tmp_path / "a.log")
    try:
        wait_until(
            lambda: committed_total(live.bootstrap, group, topic) > 0,
            60,
            "the first commit",
        )
        assert committed_total(live.bootstrap, group, topic) < total, "not mid-stream"
        control.stop()
        time.sleep(down_s)
        control.start()
        _assert_same_as_replay(live, history, timeout_s=180)
    finally:
        monitor.stop()
    log = (tmp_path / "a.log").read_text()
    assert "broker lost" in log
    assert "broker back" in log


def test_garbage_goes_to_dead_letters_good_events_flow(
    live: LiveSetup, history: Path, tmp_path: Path
) -> None:
    garbage = [
        b"{not json",
        b'{"type":"usage"}',
        b"\xff\xfe\x00",
        b'{"type":"teleport","customer_id":"x","timestamp":"2026-04-01T00:00:00Z"}',
    ]
    lines = history.read_bytes().splitlines()
    for n, bad in enumerate(garbage):
        lines.insert(100 + 50 * n, bad)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"\n".join(lines) + b"\n")
    live.produce(mixed).wait(60)

    monitor = MonitorProcess(live.config("a"), tmp_path / "a.log")
    try:
        _assert_same_as_replay(live, history)
        wait_until(
            lambda: len(live.read(live.kafka["dead_letter_topic"])) >= 4,
            30,
            "dead letters",
        )
    finally:
        monitor.stop()
    letters = live.read(live.kafka["dead_letter_topic"])
    assert sorted(m.value for m in letters) == sorted(garbage)
    headers = dict(letters[0].headers)
    assert set(headers) >= {
        "churn-reason",
        "churn-source-topic",
        "churn-source-partition",
        "churn-source-offset",
    }
    reasons = sorted(dict(m.headers)["churn-reason"] for m in letters)
    assert reasons == [
        b"malformed_json",
        b"malformed_json",
        b"missing_field",
        b"unknown_type",
    ]
