"""Engine throughput and memory per customer, beside the bare JSON-decode floor.

Generates a history (default 1,000,000 events, 100,000 customers, 90 days), then in
one run: times bare ``orjson.loads`` over the lines, times the engine with a
single event-driven rule (decode, validate, state: the cost before rules), then
the whole engine with the default rules over the same lines, and measures memory
per tracked customer with tracemalloc. Prints figures and ratios; asserts nothing.

    python bench/engine.py [--events N] [--customers N] [--days N]
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from monitor.engine.core import Engine
from monitor.engine.loader import RuleSet, load_rules
from monitor.runtime import engine_build, tune_gc

RULES = Path(__file__).resolve().parent.parent / "rules"
START = datetime(2026, 1, 5, tzinfo=UTC)


def generate(events: int, customers: int, days: int, seed: int = 1) -> list[bytes]:
    """Return ``events`` JSON lines in time order for a mixed population."""
    rng = random.Random(seed)
    span = days * 86_400
    # Customers differ in how active they are: a few heavy, many light.
    weights = [rng.paretovariate(1.5) for _ in range(customers)]
    ids = [f"c{i:06d}" for i in range(customers)]
    chosen = rng.choices(range(customers), weights=weights, k=events)
    offsets = sorted(rng.random() * span for _ in range(events))
    features = ("dashboard", "reports", "search", "export", "alerts")
    lines = []
    for n, (who, offset) in enumerate(zip(chosen, offsets, strict=True)):
        stamp = (START + timedelta(seconds=offset)).isoformat().replace("+00:00", "Z")
        roll = rng.random()
        body: dict[str, object] = {
            "customer_id": ids[who],
            "timestamp": stamp,
            "event_id": f"b{n}",
        }
        # A SaaS mix: mostly usage, a few answers (NPS skewed to the high end, as
        # real answers are), renewals with the odd failed payment or downgrade.
        if roll < 0.94:
            body.update(
                type="usage",
                action="view",
                count=rng.randint(1, 5),
                feature=rng.choice(features),
            )
        elif roll < 0.98:
            score = min(10, max(0, round(rng.gauss(8, 2))))
            body.update(type="feedback", channel="nps", score=score)
        else:
            status = rng.choices(
                ("renewed", "payment_failed", "downgraded", "upgraded"),
                weights=(90, 4, 3, 3),
            )[0]
            body.update(type="subscription", status=status, plan="pro", mrr=99.0)
        lines.append(orjson.dumps(body))
    return lines


def time_decode(lines: list[bytes]) -> float:
    loads = orjson.loads
    start = time.perf_counter()
    for line in lines:
        loads(line)
    return time.perf_counter() - start


def time_engine(lines: list[bytes], rules: RuleSet) -> tuple[float, Engine]:
    engine = Engine(rules)
    process = engine.process
    start = time.perf_counter()
    for line in lines:
        process(line)
    return time.perf_counter() - start, engine


def memory_per_customer(lines: list[bytes]) -> tuple[float, int]:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    engine = Engine(load_rules(RULES))
    for line in lines:
        engine.process(line)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    customers = len(engine.customers)
    return (after - before) / customers, customers


def main() -> None:
    tune_gc()  # as churn-monitor runs
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()

    lines = generate(args.events, args.customers, args.days)
    size = sum(map(len, lines)) / len(lines)
    print(f"engine build: {engine_build()}")
    print(
        f"history: {len(lines):,} events, {args.customers:,} customers, "
        f"{args.days} days, {size:.0f} bytes/event on average"
    )

    rules = load_rules(RULES)
    # The same pipeline with one rule that only reacts to downgrades: what
    # decoding, validating and keeping state cost before any rule runs.
    one_rule = RuleSet(
        tuple(r for r in rules.rules if r.name == "downgrade"), rules.source
    )
    decode_s = min(time_decode(lines) for _ in range(2))
    engine_s, engine = time_engine(lines, rules)
    summary = engine.summary()
    del engine  # each run starts with the memory of none before it
    gc.collect()
    floor_s = time_engine(lines, one_rule)[0]
    gc.collect()
    decode_rate, engine_rate = len(lines) / decode_s, len(lines) / engine_s
    print(
        f"bare orjson.loads : {decode_rate:12,.0f} events/s "
        f"({decode_s / len(lines) * 1e6:.2f} us/event)"
    )
    print(
        f"whole engine      : {engine_rate:12,.0f} events/s "
        f"({engine_s / len(lines) * 1e6:.2f} us/event)"
    )
    floor_rate = len(lines) / floor_s
    print(
        f"before the rules  : {floor_rate:12,.0f} events/s "
        f"({floor_s / len(lines) * 1e6:.2f} us/event: decode, validate, state, "
        f"with one event-driven rule; ratio {floor_rate / decode_rate:.3f})"
    )
    print(
        f"ratio engine/decode: {engine_rate / decode_rate:.3f} "
        f"(target >= 0.125); target rate >= 120,000 events/s"
    )
    print(
        f"warnings opened {summary['warnings_opened']:,}, resolved "
        f"{summary['warnings_resolved']:,}, rejected {summary['rejected']}"
    )

    per_customer, customers = memory_per_customer(lines)
    print(
        f"memory: {per_customer:,.0f} bytes per tracked customer over "
        f"{customers:,} customers (tracemalloc; target <= 2,048)"
    )


if __name__ == "__main__":
    main()
