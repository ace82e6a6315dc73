"""End to end: a customer's usage declines, Prometheus scrapes the monitor, the alert
reaches customer success through Alertmanager; the customer recovers and the
resolved notification follows.

Everything is real: the rules in rules/, the engine, the exporter's HTTP endpoint,
Prometheus and Alertmanager with the configs in deploy/, and a webhook receiver.
The monitor is reached only through `MonitorUnderTest`, so the same story can be
told through Kafka and the `churn-monitor run` command by swapping the fixture.
"""

from __future__ import annotations

import socket
import threading
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import orjson
import promstack
import pytest
from helpers import REPO, START, daily_usage, in_time_order
from kafka import KafkaProducer
from live import LiveSetup, MonitorProcess, consumed_everything, wait_until

from monitor.engine.core import Engine
from monitor.engine.loader import load_rules
from monitor.outputs.metrics import MetricsExporter
from monitor.settings import MetricsSettings

pytestmark = pytest.mark.integration

TARGET = "c-decline"
POPULATION = tuple(f"c-{n:02d}" for n in range(40))
STEADY_DAYS = range(56)  # eight weeks of baseline
DECLINE_DAYS = range(56, 64)  # the default declining_usage rule opens on day 63
RECOVERY_DAYS = range(64, 76)  # and resolves on day 73
# Alerts and notifications arrive within a few 1 s scrape and evaluation rounds.
NOTIFY_TIMEOUT_S = 60.0


def weekly(weekday_events: int, weekend_events: int) -> Callable[[int], int]:
    return lambda day: weekend_events if day % 7 >= 5 else weekday_events


def history(days: range, target_per_day: Callable[[int], int]) -> list[bytes]:
    """Usage events of the target and a steady population, in time order.

    The population keeps the population-wide silence guard quiet, as a real
    customer base would.
    """
    lines = daily_usage(TARGET, days, target_per_day)
    for customer in POPULATION:
        lines += daily_usage(customer, days, weekly(5, 1))
    return in_time_order(lines)


class MonitorUnderTest(Protocol):
    """A running monitor: where Prometheus scrapes it and how events reach it."""

    @property
    def address(self) -> str: ...

    def feed(self, lines: Sequence[bytes], until_day: int) -> list[dict[str, Any]]:
        """Deliver events, let the monitor judge every day before ``until_day``
        (days after START) and return the warning records emitted meanwhile."""
        ...


class InProcessMonitor:
    """One engine and the real exporter, served on a free local port."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.engine = Engine(load_rules(REPO / "rules"), sink=self.records.append)
        # Held while feeding, as the app's main loop holds it while it works: a
        # scrape copies its figures under the same lock.
        self._lock = threading.Lock()
        self.exporter = MetricsExporter(
            MetricsSettings(address="127.0.0.1:0"),
            lambda: [self.engine],
            lock=self._lock,
        )
        self.exporter.attach(self.engine)
        self.exporter.set_rule_state(loaded=len(self.engine.rules.rules), errors=0)
        self.exporter.set_ready(True)

    @property
    def address(self) -> str:
        assert self.exporter.address is not None
        return self.exporter.address

    def feed(self, lines: Sequence[bytes], until_day: int) -> list[dict[str, Any]]:
        seen = len(self.records)
        with self._lock:
            for line in lines:
                self.engine.process(line)
                self.exporter.record_consumed(orjson.loads(line)["type"])
            self.engine.advance_to((START + timedelta(days=until_day)).timestamp())
        return self.records[seen:]


class KafkaMonitor:
    """``churn-monitor run`` in its own process, fed through a real broker.

    A day is judged once every partition's clock passes it, so after the events
    a "renewed" subscription event (which opens no warning) goes to each partition
    a little after ``until_day`` starts.
    """

    def __init__(self, live: LiveSetup, folder: Path) -> None:
        self.live = live
        self.port = _free_port()
        config = live.config("a", metrics={"address": f"127.0.0.1:{self.port}"})
        self.process = MonitorProcess(config, folder / "monitor.log")
        self._producer = KafkaProducer(bootstrap_servers=live.bootstrap, acks="all")
        wait_until(self._ready, 60, "the monitor's /readyz")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def feed(self, lines: Sequence[bytes], until_day: int) -> list[dict[str, Any]]:
        seen = {(r["id"], r["status"]) for r in self.live.warnings(settle_s=1.0)}
        topic = self.live.kafka["topics"][0]
        for line in lines:
            self._producer.send(
                topic, value=line, key=orjson.loads(line)["customer_id"].encode()
            )
        tick = (START + timedelta(days=until_day, hours=2, seconds=1)).isoformat()
        for partition in range(self.live.kafka["partitions"]):
            body = {
                "type": "subscription",
                "customer_id": f"clock-{partition}",
                "timestamp": tick,
                "status": "renewed",
            }
            self._producer.send(topic, value=orjson.dumps(body), partition=partition)
        self._producer.flush()
        wait_until(
            lambda: consumed_everything(
                self.live.bootstrap, self.live.kafka["group_id"], topic
            ),
            120,
            "the monitor to consume every event",
        )
        return [
            r
            for r in self.live.warnings(settle_s=1.0)
            if (r["id"], r["status"]) not in seen
        ]

    def close(self) -> None:
        self._producer.close()
        assert self.process.stop() == 0

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://{self.address}/readyz", timeout=2
            ) as r:
                return bool(r.status == 200)
        except OSError:
            return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(params=["in_process", "kafka_run"])
def monitor(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[MonitorUnderTest]:
    if request.param == "kafka_run":
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        through_kafka = KafkaMonitor(LiveSetup(bootstrap, tmp_path), tmp_path)
        try:
            yield through_kafka
        finally:
            through_kafka.close()
        return
    in_process = InProcessMonitor()
    in_process.exporter.start()
    try:
        yield in_process
    finally:
        in_process.exporter.stop()


def to_customer_success(status: str) -> Callable[[promstack.ReceivedPost], bool]:
    return lambda post: post.path == "/hook" and post.body["status"] == status


def test_declining_customer_alerted_then_resolved(
    tmp_path: Path, monitor: MonitorUnderTest
) -> None:
    with (
        promstack.WebhookReceiver() as hook,
        promstack.start_alertmanager(tmp_path, hook.url) as alertmanager,
        promstack.start_prometheus(
            tmp_path,
            scrape_targets=[monitor.address],
            alertmanager=alertmanager.address,
            interval_s=1,
            for_override={"ChurnWarning": "2s"},
        ) as prometheus,
    ):
        # 1. Eight quiet weeks, then the decline that opens a warning.
        quiet = monitor.feed(history(STEADY_DAYS, weekly(20, 4)), STEADY_DAYS.stop)
        opened = monitor.feed(history(DECLINE_DAYS, weekly(3, 1)), DECLINE_DAYS.stop)
        firing = hook.wait_for(to_customer_success("firing"), NOTIFY_TIMEOUT_S)

        # 2. Usage comes back; the warning resolves and its series goes.
        resolved = monitor.feed(
            history(RECOVERY_DAYS, weekly(20, 4)), RECOVERY_DAYS.stop
        )
        recovered = hook.wait_for(to_customer_success("resolved"), NOTIFY_TIMEOUT_S)
        remaining = prometheus.query("churn_customer_warning")

    assert quiet == []
    [warning] = opened
    assert (warning["customer_id"], warning["rule"]) == (TARGET, "declining_usage")
    assert firing.body["groupLabels"] == {"customer": TARGET}
    [alert] = firing.body["alerts"]
    assert alert["labels"] == {
        "alertname": "ChurnWarning",
        "team": "customer-success",
        "customer": TARGET,
        "rule": "declining_usage",
        "kind": "declining_usage",
        "severity": "warning",
    }
    assert alert["annotations"]["evidence"] == warning["evidence"]["summary"]
    assert alert["annotations"]["action"] == warning["action"]
    assert "health score 65 of 100" in alert["annotations"]["description"]

    assert [(r["customer_id"], r["status"]) for r in resolved] == [(TARGET, "resolved")]
    [cleared] = recovered.body["alerts"]
    assert cleared["status"] == "resolved"
    assert cleared["labels"]["customer"] == TARGET
    assert remaining == []
