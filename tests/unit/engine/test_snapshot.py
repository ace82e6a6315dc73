"""A checkpoint restores an engine exactly: the rest of the stream gives the same."""

from __future__ import annotations

import marshal
from typing import Any

import pytest
from helpers import Harness

from monitor.engine.core import Engine
from monitor.engine.loader import RuleSet
from monitor.engine.snapshot import (
    _counts,
    _uncounts,
    dump_customer,
    dump_engine,
    restore,
)
from monitor.settings import EngineSettings
from monitor.simulate import simulate_lines
from monitor.state.customer import DayCounts

LINES = simulate_lines(80, 150, seed=11)


def _checkpoint(engine: Engine, store: dict[str, bytes]) -> bytes:
    """Write the customers changed since the last checkpoint, like the app does."""
    for customer_id in engine.changed_ids():
        blob = dump_customer(engine, customer_id)
        if blob is not None:
            store[customer_id] = blob
    engine.clear_changes()
    return dump_engine(engine)


def _signature(engine: Engine) -> dict[str, Any]:
    blobs = {cid: dump_customer(engine, cid) for cid in sorted(engine.customers)}
    blobs["__engine__"] = dump_engine(engine)
    return {key: marshal.loads(blob) for key, blob in blobs.items() if blob}


@pytest.mark.parametrize(
    "crash_at", [1, 5_000, 20_000, len(LINES) // 2, len(LINES) - 1]
)
def test_restore_from_incremental_checkpoints_continues_identically(
    default_rules: RuleSet, crash_at: int
) -> None:
    settings = EngineSettings(allowed_lateness_s=1800)
    whole = Harness(default_rules, settings).feed(LINES)

    first = Harness(default_rules, settings)
    store: dict[str, bytes] = {}
    engine_blob = b""
    for n, line in enumerate(LINES[:crash_at]):
        first.engine.process(line)
        if n % 997 == 0:
            engine_blob = _checkpoint(first.engine, store)
            done = n + 1
    engine_blob = _checkpoint(first.engine, store)
    done = crash_at
    kept = len(first.records)

    second = Harness(default_rules, settings)
    restore(second.engine, engine_blob, store)
    second.feed(LINES[done:])

    assert first.records[:kept] + second.records == whole.records
    assert _signature(second.engine) == _signature(whole.engine)
    assert second.engine.summary() == whole.engine.summary()
    _assert_states_see_their_warnings(second.engine)
    _assert_states_see_their_warnings(whole.engine)


def _assert_states_see_their_warnings(engine: Engine) -> None:
    """Each state's reference to its open warnings is the book's own table."""
    book = engine.book.by_customer
    for customer_id, state in engine.customers.items():
        assert state.customer_id == customer_id
        assert state.warnings is book.get(customer_id)


def test_restore_keeps_held_events_and_duplicate_memory(
    default_rules: RuleSet, make_event: Any
) -> None:
    settings = EngineSettings(allowed_lateness_s=6 * 3600)
    held = make_event("usage", 1, 2, event_id="x1")  # next day, within lateness
    lines = [make_event("usage", 0, 20, event_id="x0"), held]

    first = Harness(default_rules, settings).feed(lines)
    engine_blob = _checkpoint(first.engine, store := {})
    second = Harness(default_rules, settings)
    restore(second.engine, engine_blob, store)
    second.feed([held, make_event("usage", 0, 21, event_id="x0")]).until(3)

    assert second.engine.stats.rejected == {"duplicate": 2}
    assert second.engine.sync_stats().applied == 2


def test_day_counts_past_32_bits_are_capped_in_a_checkpoint() -> None:
    counts = DayCounts(100)
    counts.add(100, 2**33, 30)
    counts.add(101, 7, 30)

    restored = _uncounts(_counts(counts))

    assert restored is not None
    assert restored.base_day == 100
    assert list(restored.counts) == [2**32 - 1, 7]
