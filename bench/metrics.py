"""Cost of the Prometheus exporter: scrape time and size, engine rate, metrics on/off.

Builds an engine with 100,000 tracked customers (fed real events) and 5,000 open
warnings (restored, as after a checkpoint), serves it on 127.0.0.1 and scrapes it
over HTTP as Prometheus does (OpenMetrics, gzip) and as a plain client does. Then,
in the same run and on the same events, times fresh engines alternately without
metrics, with the per-event calls (``record_consumed`` and ``observe_latency`` for
every event) and with latency recorded once per poll batch, and once more while
another thread scrapes every second.
Prints figures and ratios; asserts nothing.

    python bench/metrics.py [--customers N] [--events N] [--warnings N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from monitor.decode.events import (
    FeedbackEvent,
    ReleaseEvent,
    SubscriptionEvent,
    UsageEvent,
)
from monitor.engine.core import Engine
from monitor.engine.lifecycle import ChurnWarning
from monitor.engine.loader import RuleSet, load_rules
from monitor.outputs.metrics import MetricsExporter
from monitor.runtime import engine_build
from monitor.settings import MetricsSettings

RULES = Path(__file__).resolve().parent.parent / "rules"
START = datetime(2026, 1, 5, tzinfo=UTC)
PROMETHEUS_ACCEPT = {
    "Accept": "application/openmetrics-text;version=1.0.0,"
    "application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
}
PLAIN_ACCEPT = {"Accept": "text/plain"}
BATCH = 500  # events per poll batch, as kafka.max_poll_records would deliver
TYPE_NAMES = {
    UsageEvent: "usage",
    FeedbackEvent: "feedback",
    SubscriptionEvent: "subscription",
    ReleaseEvent: "release",
}
PLANS = (("basic", 19.0), ("pro", 99.0), ("enterprise", 499.0))


def generate(customers: int, events: int, days: int, seed: int = 3) -> list[bytes]:
    """A subscription start for every customer, then mixed events in time order."""
    rng = random.Random(seed)
    ids = [f"cust-{i:06d}" for i in range(customers)]
    lines = []
    for n, customer in enumerate(ids):
        plan, mrr = rng.choice(PLANS)
        stamp = START + timedelta(seconds=n * 0.5)
        lines.append(
            _line(
                customer,
                stamp,
                type="subscription",
                status="started",
                plan=plan,
                mrr=mrr,
            )
        )

    span = (days - 1) * 86_400
    offsets = sorted(86_400 + rng.random() * span for _ in range(events - customers))
    for offset in offsets:
        customer = rng.choice(ids)
        stamp = START + timedelta(seconds=offset)
        roll = rng.random()
        if roll < 0.9:
            body = {"type": "usage", "action": "view", "feature": "reports"}
        elif roll < 0.97:
            body = {"type": "feedback", "channel": "nps", "score": rng.randint(7, 10)}
        else:
            body = {"type": "feedback", "channel": "csat", "score": rng.randint(3, 5)}
        lines.append(_line(customer, stamp, **body))
    return lines


def _line(customer: str, stamp: datetime, **body: object) -> bytes:
    moment = stamp.isoformat().replace("+00:00", "Z")
    return orjson.dumps({"customer_id": customer, "timestamp": moment, **body})


def open_warnings(engine: Engine, rules: RuleSet, count: int, seed: int = 5) -> None:
    """Leave exactly ``count`` open warnings, on random customers, with real texts."""
    for warning in engine.book.all_open():
        engine.book.close(warning, warning.opened_at, {})
    rng = random.Random(seed)
    customers = rng.sample(sorted(engine.customers), count)
    opened_at = (START + timedelta(days=20)).timestamp()
    for n, customer in enumerate(customers):
        rule = rules.rules[n % len(rules.rules)]
        recent, baseline = rng.uniform(0.5, 5), rng.uniform(8, 30)
        summary = (
            f"usage {recent:.1f}/day over the last 14d vs {baseline:.1f}/day "
            f"baseline ({(recent / baseline - 1) * 100:.0f}%)"
        )
        engine.book.restore(
            ChurnWarning(
                id=f"w{n}",
                customer_id=customer,
                rule=rule.name,
                kind=rule.kind,
                severity=rule.severity,
                weight=rule.weight,
                action=rule.action,
                opened_at=opened_at,
                evidence={"summary": summary},
            )
        )


def scrape(url: str, headers: dict[str, str]) -> tuple[float, int]:
    request = urllib.request.Request(url, headers=headers)
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as answer:
        size = len(answer.read())
    return time.perf_counter() - start, size


def time_scrapes(
    url: str, headers: dict[str, str], rounds: int
) -> tuple[list[float], int]:
    scrape(url, headers)  # warm the connection path and caches
    results = [scrape(url, headers) for _ in range(rounds)]
    return [seconds for seconds, _ in results], results[-1][1]


def run_off(rules: RuleSet, lines: list[bytes]) -> float:
    """The engine alone, as the app would drive it without metrics."""
    engine = Engine(rules)
    process = engine.process
    start = time.perf_counter()
    for line in lines:
        process(line)
    return time.perf_counter() - start


def run_on(rules: RuleSet, lines: list[bytes]) -> float:
    """The engine plus the per-event calls: count by type, latency per event."""
    engine = Engine(rules)
    exporter = MetricsExporter(MetricsSettings(), lambda: [engine])
    exporter.attach(engine)
    process, clock = engine.process, time.perf_counter
    consumed, latency = exporter.record_consumed, exporter.observe_latency
    names = TYPE_NAMES
    start = clock()
    for line in lines:
        began = clock()
        item = process(line)
        consumed(names.get(type(item), "invalid"))
        latency(clock() - began)
    return clock() - start


def run_batched(rules: RuleSet, lines: list[bytes]) -> float:
    """The engine plus a count per event and one latency call per poll batch."""
    engine = Engine(rules)
    exporter = MetricsExporter(MetricsSettings(), lambda: [engine])
    exporter.attach(engine)
    process, clock = engine.process, time.perf_counter
    consumed, latency = exporter.record_consumed, exporter.observe_latency
    names = TYPE_NAMES
    start = clock()
    for first in range(0, len(lines), BATCH):
        began = clock()
        batch = lines[first : first + BATCH]
        for line in batch:
            consumed(names.get(type(process(line)), "invalid"))
        latency(clock() - began, len(batch))
    return clock() - start


def time_calls_alone(count: int) -> float:
    """The per-event metric calls of ``run_on`` without the engine, per event."""
    exporter = MetricsExporter(MetricsSettings(), list)
    clock = time.perf_counter
    consumed, latency = exporter.record_consumed, exporter.observe_latency
    names, item = TYPE_NAMES, UsageEvent
    start = clock()
    for _ in range(count):
        began = clock()
        consumed(names.get(item, "invalid"))
        latency(clock() - began)
    return (clock() - start) / count


def run_on_scraped(
    rules: RuleSet, lines: list[bytes], url: str, every_s: float
) -> tuple[float, int]:
    """``run_batched`` while another thread scrapes the big exporter."""
    stop = threading.Event()
    scrapes = []

    def scraper() -> None:
        while not stop.wait(every_s):
            scrapes.append(scrape(url, PROMETHEUS_ACCEPT)[0])

    thread = threading.Thread(target=scraper, daemon=True)
    thread.start()
    try:
        seconds = run_batched(rules, lines)
    finally:
        stop.set()
        thread.join()
    return seconds, len(scrapes)


def _ms(values: list[float]) -> str:
    return (
        f"min {min(values) * 1e3:6.1f} ms, median "
        f"{statistics.median(values) * 1e3:6.1f} ms, max {max(values) * 1e3:6.1f} ms"
    )


def measure_scrapes(url: str, rounds: int) -> float:
    """Print scrape figures; return the median Prometheus-style scrape time."""
    plain, plain_size = time_scrapes(url, PLAIN_ACCEPT, rounds)
    prom, prom_size = time_scrapes(url, PROMETHEUS_ACCEPT, rounds)
    print(f"engine build: {engine_build()}")
    print(f"scrape, uncompressed          : {_ms(plain)}; {plain_size:,} bytes")
    print(f"scrape, as Prometheus asks    : {_ms(prom)}; {prom_size:,} bytes (gzip)")
    return statistics.median(prom)


def measure_rates(rules: RuleSet, lines: list[bytes], rounds: int) -> dict[str, float]:
    """Alternate the runs, fresh engines each time; return each one's best time."""
    runs: dict[str, Callable[[RuleSet, list[bytes]], float]] = {
        "off": run_off,
        "on": run_on,
        "batched": run_batched,
    }
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            best[name] = min(best[name], run(rules, lines))
    return best


def report_rates(
    best: dict[str, float], events: int, scraped: tuple[float, int]
) -> None:
    off_rate = events / best["off"]
    print(f"engine, metrics off           : {off_rate:10,.0f} events/s")
    for label, seconds in (
        ("on, latency per event", best["on"]),
        ("on, latency per batch", best["batched"]),
        ("per batch + scrape 1/s", scraped[0]),
    ):
        rate = events / seconds
        print(
            f"engine, {label:<22}: {rate:10,.0f} events/s "
            f"(ratio {rate / off_rate:.3f}, cost {1 - rate / off_rate:5.1%})"
        )
    print(f"  ({scraped[1]} scrapes during the last run; target cost <= 10%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--warnings", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    rules = load_rules(RULES)
    lines = generate(args.customers, args.events, args.days)
    engine = Engine(rules)
    for line in lines:
        engine.process(line)
    open_warnings(engine, rules, args.warnings)
    exporter = MetricsExporter(
        MetricsSettings(address="127.0.0.1:0", customer_series_cap=args.warnings),
        lambda: [engine],
    )
    exporter.start()
    url = f"{exporter.url}/metrics"
    print(
        f"engine: {len(engine.customers):,} tracked customers, "
        f"{len(engine.book.all_open()):,} open warnings; events: {len(lines):,}"
    )

    scrape_s = measure_scrapes(url, rounds=10)
    best = measure_rates(rules, lines, args.rounds)
    scraped = run_on_scraped(rules, lines, url, every_s=1.0)
    exporter.stop()
    report_rates(best, len(lines), scraped)

    calls_s = min(time_calls_alone(len(lines)) for _ in range(3))
    event_s = best["off"] / len(lines)
    print(
        f"per-event calls alone         : {calls_s * 1e9:.0f} ns, "
        f"{calls_s / event_s:.1%} of the engine's {event_s * 1e6:.1f} us/event"
    )
    print(
        f"a scrape every 15 s (Prometheus' default) takes {scrape_s / 15:.2%} of "
        "the process's time; target scrape < 250 ms"
    )


if __name__ == "__main__":
    main()
