"""Checkpoint an engine: one blob per customer plus one for what is engine-wide.

A customer's blob holds everything about it (state, open warnings, rechecks,
held events, recent event ids), so a checkpoint writes only the customers that
changed and a partition's state can move customer by customer. Uses ``marshal``:
fast and exact for plain data; blobs are internal and versioned.
"""

from __future__ import annotations

import marshal
from array import array
from dataclasses import fields
from typing import Any

from monitor.decode.events import (
    Event,
    FeedbackEvent,
    ReleaseEvent,
    SubscriptionEvent,
    UsageEvent,
)
from monitor.engine.accounting import PeriodFigures
from monitor.engine.core import Engine, EngineStats
from monitor.engine.detectors import Release
from monitor.engine.lifecycle import ChurnWarning
from monitor.state.customer import CustomerState, DayCounts

__all__ = ["FORMAT", "dump_customer", "dump_customers", "dump_engine", "restore"]

FORMAT = 1
_EVENTS: tuple[type, ...] = (UsageEvent, FeedbackEvent, SubscriptionEvent, ReleaseEvent)
_FIGURES = [f.name for f in fields(PeriodFigures)]
_MAX_COUNT = 2**32 - 1


def _counts(counts: DayCounts | None) -> tuple[int, bytes] | None:
    """Pack a counter as 32-bit days; a count past that range is capped there."""
    if counts is None:
        return None
    try:
        packed = array("I", counts.ordered())
    except OverflowError:
        packed = array("I", [min(n, _MAX_COUNT) for n in counts.ordered()])
    return counts.base_day, packed.tobytes()


def _uncounts(value: tuple[int, bytes] | None) -> DayCounts | None:
    if value is None:
        return None
    counts: array[int] = array("I")
    counts.frombytes(value[1])
    return DayCounts(value[0], counts.tolist())


def _event(event: Event) -> tuple[Any, ...]:
    return (
        _EVENTS.index(type(event)),
        *(getattr(event, f.name) for f in fields(event)),
    )


def _unevent(value: tuple[Any, ...]) -> Event:
    cls = _EVENTS[value[0]]
    event: Event = cls(*value[1:])
    return event


def dump_customers(engine: Engine, customer_ids: list[str]) -> dict[str, bytes | None]:
    """Return the blobs of several customers, reading the recheck table once."""
    customers = engine.customers
    wanted = {state for cid in customer_ids if (state := customers.get(cid))}
    due: dict[str, list[tuple[int, int]]] = {}
    for day, entries in sorted(engine._due.items()):
        # The view's & walks the smaller side: a commit's few customers, not the
        # whole day's table.
        for state in entries.keys() & wanted:
            due.setdefault(state.customer_id, []).append((day, entries[state]))
    names = [rule.name for rule in engine.rules.rules]
    return {cid: _dump(engine, cid, due.get(cid, []), names) for cid in customer_ids}


def dump_customer(engine: Engine, customer_id: str) -> bytes | None:
    """Return the blob of one customer, or None when the engine forgot it."""
    return dump_customers(engine, [customer_id])[customer_id]


def _dump(
    engine: Engine, customer_id: str, masks: list[tuple[int, int]], names: list[str]
) -> bytes | None:
    state = engine.customers.get(customer_id)
    if state is None:
        return None
    warnings = [
        (w.id, w.rule, w.kind, w.severity, w.weight, w.action, w.opened_at, w.evidence)
        for w in engine.book.open_for(customer_id).values()
    ]
    due = [
        (day, [n for i, n in enumerate(names) if mask >> i & 1])
        for day, mask in masks
        if mask
    ]
    open_day = engine.clock.open_day
    series = (
        None
        if state.series is None
        else {key: _counts(c) for key, c in state.series.items()}
    )
    return marshal.dumps(
        (
            FORMAT,
            state.first_day,
            _counts(state.usage),
            state.last_usage_day,
            series,
            state.packed_features(),
            state.feedback,
            (state.status, state.plan, state.mrr),
            (
                state.downgraded_at,
                state.payment_failed_at,
                state.payment_ok_at,
                state.upgraded_at,
            ),
            None if state.pending is None else [_event(e) for e in state.pending],
            state.live_ids(-1 if open_day is None else open_day),
            warnings,
            due,
            state.touched,
        )
    )


def dump_engine(engine: Engine) -> bytes:
    """Return the blob of what belongs to no single customer."""
    ledger, stats = engine.ledger, engine.sync_stats()
    periods = {
        label: tuple(getattr(p, name) for name in _FIGURES)
        for label, p in ledger.periods.items()
    }
    releases = {
        name: [(r.feature, r.day, r.plans) for r in known]
        for name, known in engine._releases.items()
    }
    return marshal.dumps(
        (
            FORMAT,
            (engine.clock.max_event_time, engine.clock.open_day),
            (
                ledger.active,
                ledger.active_mrr,
                ledger.pending,
                ledger.cancel_day,
                periods,
                ledger.current.label if ledger.current else None,
            ),
            {k: _counts(c) for k, c in engine.feedback_stats.counts.items()},
            _counts(engine._active),
            (sorted(engine._outage), engine.guard_active),
            releases,
            sorted(engine._release_passes),
            {
                d: [_event(e) for e in evs]
                for d, evs in engine._pending_releases.items()
            },
            sorted(engine._release_ids),
            (
                stats.read,
                stats.rejected,
                stats.by_type,
                engine.book.opened,
                engine.book.resolved,
            ),
        )
    )


def restore(
    engine: Engine, engine_blob: bytes | None, customers: dict[str, bytes]
) -> None:
    """Load a checkpoint into a fresh engine built with the same rules."""
    if engine_blob is not None:
        _restore_engine(engine, marshal.loads(engine_blob))
    bits = {rule.name: 1 << i for i, rule in enumerate(engine.rules.rules)}
    open_day = engine.clock.open_day
    for customer_id, blob in customers.items():
        _restore_customer(engine, customer_id, marshal.loads(blob), bits, open_day)
    engine.clear_changes()


def _restore_engine(engine: Engine, value: tuple[Any, ...]) -> None:
    (
        _,
        clock,
        ledger,
        feedback,
        active,
        outage,
        releases,
        passes,
        held,
        release_ids,
        stats,
    ) = value
    engine.clock.max_event_time, engine.clock.open_day = clock
    active_count, active_mrr, pending, cancel_day, periods, current = ledger
    engine.ledger.active, engine.ledger.active_mrr = active_count, active_mrr
    engine.ledger.pending, engine.ledger.cancel_day = pending, cancel_day
    engine.ledger.periods = {
        label: PeriodFigures(**dict(zip(_FIGURES, values, strict=True)))
        for label, values in periods.items()
    }
    engine.ledger.current = engine.ledger.periods.get(current) if current else None
    for key, counts in feedback.items():
        engine.feedback_stats.counts[key] = _uncounts(counts) or DayCounts(0)
    engine._active = _uncounts(active) or DayCounts(0)
    engine._outage = set(outage[0])
    engine._outage_frozen = frozenset(engine._outage)
    engine.guard_active = outage[1]
    for name, known in releases.items():
        engine._releases[name] = tuple(Release(f, d, p) for f, d, p in known)
    engine._release_passes = set(passes)
    engine._pending_releases = {
        d: [_unevent(e) for e in evs]  # type: ignore[misc]
        for d, evs in held.items()
    }
    engine._release_ids = set(release_ids)
    read, rejected, by_type, opened, resolved = stats
    engine.stats = EngineStats(read=read, rejected=rejected)
    engine.applied_usage = by_type.get("usage", 0)
    engine.applied_feedback = by_type.get("feedback", 0)
    engine.applied_subscription = by_type.get("subscription", 0)
    engine.applied_release = by_type.get("release", 0)
    engine.book.opened, engine.book.resolved = opened, resolved


def _restore_customer(
    engine: Engine,
    customer_id: str,
    value: tuple[Any, ...],
    bits: dict[str, int],
    open_day: int | None,
) -> None:
    (
        _,
        first_day,
        usage,
        last_usage_day,
        series,
        features,
        feedback,
        subscription,
        billing,
        pending,
        recent_ids,
        warnings,
        due,
        touched,
    ) = value
    state = CustomerState(
        first_day=first_day,
        usage=_uncounts(usage),
        last_usage_day=last_usage_day,
        customer_id=customer_id,
    )
    if series is not None:
        state.series = {k: c for k, v in series.items() if (c := _uncounts(v))}
    state.set_features(features)
    state.feedback = feedback
    state.status, state.plan, state.mrr = subscription
    (
        state.downgraded_at,
        state.payment_failed_at,
        state.payment_ok_at,
        state.upgraded_at,
    ) = billing
    state.restore_ids(recent_ids)
    engine.customers[customer_id] = state
    if touched:
        state.touched = touched
        engine._touched.append(state)

    if pending:
        state.pending = [_unevent(e) for e in pending]
        for event in state.pending:
            day = int(event.event_time // 86_400)
            engine._pending_days.setdefault(day, {})[state] = None
    for wid, rule, kind, severity, weight, action, opened_at, evidence in warnings:
        engine.book.restore(
            ChurnWarning(
                wid,
                customer_id,
                rule,
                kind,
                severity,
                weight,
                action,
                opened_at,
                evidence,
            )
        )
    state.warnings = engine.book.by_customer.get(customer_id)
    for day, names in due:
        mask = sum(bits.get(name, 0) for name in names)
        if mask and (open_day is None or day >= open_day):
            entry = engine._due.setdefault(day, {})
            entry[state] = entry.get(state, 0) | mask
            state.recheck_bits |= mask & engine.absence_bits
