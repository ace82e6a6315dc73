"""Throughput and latency of the whole monitor against a real Kafka broker.

In one run: pre-fills a topic (default 1,000,000 events, 100,000 customers), times a
bare kafka-python consume loop over it, times the monitor (engine, transactions,
changelog, checkpoints) over the same topic, then measures the time from producing
an event that crosses a rule's threshold (an NPS detractor answer) to its warning
record on the warnings topic while a steady load of 10,000 events/s flows.
Prints figures and ratios; asserts nothing. Needs KAFKA_BOOTSTRAP_SERVERS.

    python bench/kafka_e2e.py [--events N] [--customers N] [--rate 10000] [--probes 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import RULES, generate

from monitor.app import Monitor
from monitor.engine.loader import load_rules
from monitor.runtime import engine_build, tune_gc
from monitor.settings import KafkaSettings, Settings, StoreSettings


def settings_for(bootstrap: str, prefix: str, folder: Path) -> Settings:
    kafka = KafkaSettings(
        bootstrap_servers=bootstrap,
        topics=[f"{prefix}.events"],
        releases_topic=f"{prefix}.releases",
        warnings_topic=f"{prefix}.warnings",
        dead_letter_topic=f"{prefix}.dlq",
        changelog_topic=f"{prefix}.changelog",
        group_id=f"{prefix}-monitor",
        instance_id="bench",
    )
    return Settings(kafka=kafka, store=StoreSettings(path=folder / "state.db"))


def fill(bootstrap: str, topic: str, lines: list[bytes]) -> float:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=50,
        batch_size=256_000,
        compression_type=None,
        acks=1,
    )
    start = time.perf_counter()
    for line in lines:
        key = orjson.loads(line)["customer_id"].encode()
        producer.send(topic, value=line, key=key)
    producer.flush()
    producer.close()
    return time.perf_counter() - start


def bare_consume(bootstrap: str, topic: str, total: int) -> float:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=2000,
    )
    seen = 0
    start = time.perf_counter()
    while seen < total:
        for records in consumer.poll(timeout_ms=500).values():
            seen += len(records)
    elapsed = time.perf_counter() - start
    consumer.close()
    return elapsed


def committed_total(bootstrap: str, settings: Settings) -> int:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=settings.kafka.group_id,
        enable_auto_commit=False,
    )
    parts = [
        TopicPartition(settings.kafka.topics[0], p)
        for p in range(settings.kafka.partitions)
    ]
    total = sum(consumer.committed(tp) or 0 for tp in parts)
    consumer.close()
    return total


def monitor_consume(bootstrap: str, settings: Settings, total: int) -> float:
    monitor = Monitor(settings, load_rules(RULES))
    thread = threading.Thread(target=monitor.run, daemon=True)
    start = time.perf_counter()
    thread.start()
    while committed_total(bootstrap, settings) < total:
        time.sleep(0.5)
    elapsed = time.perf_counter() - start
    monitor.stop()
    thread.join(60)
    return elapsed


def latency(
    bootstrap: str, settings: Settings, rate: float, probes: int
) -> list[float]:
    """Median time from producing a detractor answer to its warning, under load."""
    monitor = Monitor(settings, load_rules(RULES))
    thread = threading.Thread(target=monitor.run, daemon=True)
    thread.start()
    topic = settings.kafka.topics[0]
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, acks=1)
    watcher = KafkaConsumer(
        settings.kafka.warnings_topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        isolation_level="read_committed",
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    watcher.poll(timeout_ms=2000)
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for records in watcher.poll(timeout_ms=100).values():
                for record in records:
                    body = orjson.loads(record.value)
                    if (
                        body["customer_id"].startswith("probe-")
                        and body["status"] == "opened"
                    ):
                        seen.setdefault(body["customer_id"], time.perf_counter())

    watcher_thread = threading.Thread(target=watch, daemon=True)
    watcher_thread.start()
    time.sleep(5)  # let the monitor join the group
    start = time.perf_counter()
    n = 0
    probe_every = max(1, int(rate * 0.5))
    while len(sent) < probes:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        customer = f"load-{n % 50_000}"
        line = orjson.dumps(
            {
                "type": "usage",
                "customer_id": customer,
                "timestamp": now,
                "action": "view",
            }
        )
        producer.send(topic, value=line, key=customer.encode())
        if n % probe_every == 0:
            probe = f"probe-{uuid.uuid4().hex[:8]}"
            body = {
                "type": "feedback",
                "customer_id": probe,
                "timestamp": now,
                "channel": "nps",
                "score": 1,
            }
            producer.send(topic, value=orjson.dumps(body), key=probe.encode())
            sent[probe] = time.perf_counter()
        n += 1
        ahead = start + n / rate - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
    producer.flush()
    time.sleep(5)
    stop.set()
    watcher_thread.join(5)
    monitor.stop()
    thread.join(60)
    achieved = n / (time.perf_counter() - start - 5)
    print(f"steady load: {achieved:,.0f} events/s produced while probing")
    return [seen[p] - t for p, t in sent.items() if p in seen] + [float("inf")] * sum(
        1 for p in sent if p not in seen
    )


def main() -> None:
    tune_gc()  # as churn-monitor runs
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=10_000)
    parser.add_argument("--probes", type=int, default=40)
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    folder = Path(tempfile.mkdtemp(prefix="churn-bench-"))
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    settings = settings_for(bootstrap, prefix, folder)
    from monitor.ingest.kafka import ensure_topics

    ensure_topics(settings.kafka)

    lines = generate(args.events, args.customers, 90)
    fill_s = fill(bootstrap, settings.kafka.topics[0], lines)
    print(f"engine build: {engine_build()}")
    print(f"topic filled: {len(lines):,} events in {fill_s:.1f}s")
    bare_s = bare_consume(bootstrap, settings.kafka.topics[0], len(lines))
    monitor_s = monitor_consume(bootstrap, settings, len(lines))
    bare_rate, monitor_rate = len(lines) / bare_s, len(lines) / monitor_s
    print(f"bare kafka-python consume : {bare_rate:12,.0f} events/s")
    print(f"whole monitor             : {monitor_rate:12,.0f} events/s")
    print(f"ratio monitor/bare        : {monitor_rate / bare_rate:.3f} (target >= 0.5)")

    live = settings_for(
        bootstrap, prefix + "l", Path(tempfile.mkdtemp(prefix="churn-bench-"))
    )
    ensure_topics(live.kafka)
    waits = latency(bootstrap, live, args.rate, args.probes)
    finite = [w for w in waits if w != float("inf")]
    print(
        f"event-to-warning latency at {args.rate:,.0f} events/s, "
        f"{len(waits)} probes: "
        f"median {statistics.median(waits) * 1000:.0f} ms, "
        f"p90 {sorted(waits)[int(len(waits) * 0.9) - 1] * 1000:.0f} ms, "
        f"missing {len(waits) - len(finite)} (target median < 1000 ms)"
    )


if __name__ == "__main__":
    main()
