"""Helpers for live tests: a monitor process, topic reading, expected warnings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import yaml
from kafka import KafkaConsumer, TopicPartition

from monitor.engine.core import Engine
from monitor.engine.loader import load_rules

REPO = Path(__file__).resolve().parents[2]

Key = tuple[str, str, str, str, str]


def record_key(record: dict[str, Any]) -> Key:
    return (
        record["customer_id"],
        record["rule"],
        record["status"],
        record["at"],
        record["id"],
    )


class LiveSetup:
    """Unique topics, group and state folders for one test, in a config file."""

    def __init__(self, bootstrap: str, folder: Path, partitions: int = 4) -> None:
        self.bootstrap = bootstrap
        self.folder = folder
        self.prefix = f"t{uuid.uuid4().hex[:8]}"
        self.kafka = {
            "bootstrap_servers": bootstrap,
            "topics": [f"{self.prefix}.events"],
            "releases_topic": f"{self.prefix}.releases",
            "warnings_topic": f"{self.prefix}.warnings",
            "dead_letter_topic": f"{self.prefix}.dlq",
            "changelog_topic": f"{self.prefix}.changelog",
            "group_id": f"{self.prefix}-group",
            "partitions": partitions,
            "commit_interval_s": 0.3,
            "session_timeout_s": 6,
            "transaction_timeout_s": 5,
        }

    def config(
        self, name: str = "a", metrics: dict[str, Any] | None = None, **kafka: Any
    ) -> Path:
        """Write a config for one monitor instance with its own state store."""
        path = self.folder / f"config-{name}.yaml"
        body = {
            "kafka": {**self.kafka, "instance_id": name, **kafka},
            "store": {"path": str(self.folder / f"state-{name}.db")},
            "metrics": metrics or {"enabled": False},
        }
        path.write_text(yaml.safe_dump(body), encoding="utf-8")
        return path

    def produce(
        self, events: Path, rate: float | None = None
    ) -> subprocess.Popen[bytes]:
        command = [
            sys.executable,
            "-m",
            "monitor",
            "produce",
            str(events),
            "--config",
            str(self.config("producer")),
        ]
        if rate:
            command += ["--rate", str(rate)]
        return subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL)

    def read(self, topic: str, settle_s: float = 2.0) -> list[Any]:
        """Return every committed message of a topic (all partitions)."""
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            consumer_timeout_ms=int(settle_s * 1000),
        )
        consumer.subscribe([topic])
        try:
            return list(consumer)
        finally:
            consumer.close()

    def warnings(self, settle_s: float = 2.0) -> list[dict[str, Any]]:
        messages = self.read(self.kafka["warnings_topic"], settle_s)
        return [orjson.loads(m.value) for m in messages]


class MonitorProcess:
    """``churn-monitor run`` in a child process, as an operator would start it."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self._out = log.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "monitor",
                "run",
                "--config",
                str(config),
                "--rules",
                str(REPO / "rules"),
            ],
            cwd=REPO,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        """kill -9: no commit, no goodbye to the group."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._out.close()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(30)
        except subprocess.TimeoutExpired:
            # Fail this test without leaving a stray monitor to upset the next.
            self.process.kill()
            self.process.wait(10)
            raise
        finally:
            self._out.close()
        return code


def expected_records(events: Path) -> list[dict[str, Any]]:
    """Warnings that ``replay`` gives for the same history."""
    records: list[dict[str, Any]] = []
    engine = Engine(load_rules(REPO / "rules"), sink=records.append)
    for line in events.read_bytes().splitlines():
        engine.process(line)
    return records


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1.0)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def env_without_ci() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "CI"}


def _committed_and_ends(
    bootstrap: str, group: str, topic: str
) -> list[tuple[int, int]]:
    """``(committed, end)`` offsets of the group for each partition of a topic."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    try:
        partitions = [
            TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()
        ]
        ends = consumer.end_offsets(partitions)
        return [(consumer.committed(tp) or 0, end) for tp, end in ends.items()]
    finally:
        consumer.close()


def consumed_everything(bootstrap: str, group: str, topic: str) -> bool:
    """True when the group's committed offsets reached the end of every partition."""
    return all(
        done >= end for done, end in _committed_and_ends(bootstrap, group, topic)
    )


def every_partition_committed(bootstrap: str, group: str, topic: str) -> bool:
    """True when the group has committed past offset 0 on every partition."""
    return all(done > 0 for done, _ in _committed_and_ends(bootstrap, group, topic))


def changelog_starts(bootstrap: str, topic: str) -> list[int]:
    """Return the first offset kept in each partition of a topic."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return list(consumer.beginning_offsets(parts).values())
    finally:
        consumer.close()


def committed_total(bootstrap: str, group: str, topic: str) -> int:
    """Sum of the group's committed offsets over a topic's partitions."""
    return sum(done for done, _ in _committed_and_ends(bootstrap, group, topic))
