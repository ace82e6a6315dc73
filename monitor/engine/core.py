"""The engine: apply events to customer state in event time and run the rules.

Each customer sees its events grouped by day, in arrival order within a day, with a
day tick between days; that order, not the interleaving of customers, decides every
warning, which is why a replay and a live run agree. Does no I/O.

Over 500 lines: intake, holding, the day tick and the population guard share the
clock and the recheck table, and the hot path keeps them in one class on purpose.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any, Final

from monitor.decode.decoder import decode
from monitor.decode.records import (
    Event,
    FeedbackEvent,
    Rejected,
    RejectReason,
    ReleaseEvent,
    SubscriptionEvent,
    UsageEvent,
)
from monitor.engine.accounting import ACTIVE_STATUSES, ChurnLedger, FeedbackStats
from monitor.engine.detectors import (
    Context,
    Release,
    RuleParams,
    detect,
    params_for,
    quiet_below_age,
    quiet_below_use,
    quiet_while_active,
    silence_reaches,
)
from monitor.engine.lifecycle import ChurnWarning, Finding, RecordSink, WarningBook
from monitor.engine.loader import RuleSet
from monitor.engine.schema import IgnoredFeatureRule
from monitor.settings import EngineSettings
from monitor.state.clock import EventClock
from monitor.state.customer import SECONDS_PER_DAY, CustomerState, DayCounts, day_of

__all__ = ["Engine", "EngineStats"]

logger = logging.getLogger(__name__)

_RECOVERY: Final = {"renewed", "reactivated", "started", "upgraded"}
# What a customer did on a day, as bits: a rule runs on days with its kinds of
# input, on the days it asked to look again, and never otherwise.
_USAGE: Final = 1
_FEEDBACK: Final = 2
_BILLING: Final = 4
_MASK_LIST_RULES: Final = 12
# Event-driven kinds judge each event as it comes; at day ends they only run
# when they asked to look again (expiry, grace).
_TRIGGERS: Final = {
    "declining_usage": _USAGE,
    "inactivity": _USAGE,
    "ignored_feature": _USAGE,
    "threshold": _USAGE,
    "vanishing_feedback": _FEEDBACK,
    "negative_feedback": 0,
    "billing_risk": 0,
}


@dataclass(slots=True)
class EngineStats:
    """Counts of what went through the engine, for the summary and metrics."""

    read: int = 0
    applied: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


class Engine:
    """Own the customer states, the clock, the open warnings and the churn ledger."""

    def __init__(
        self,
        rules: RuleSet,
        settings: EngineSettings | None = None,
        sink: RecordSink | None = None,
        on_reject: Callable[[Rejected], None] | None = None,
    ) -> None:
        self.rules = rules
        self.settings = settings or EngineSettings()
        self.clock = EventClock(self.settings.allowed_lateness_s)
        self.book = WarningBook(sink)
        self.ledger = ChurnLedger(self.settings.period, self.settings.churn_grace_days)
        self.feedback_stats = FeedbackStats(self.settings.feedback_window_days)
        self.customers: dict[str, CustomerState] = {}
        self.stats = EngineStats()
        self.on_reject = on_reject
        self.on_tick: list[Callable[[int], None]] = []
        # Events applied, by type (native counters: one is bumped per event).
        self.applied_usage = 0
        self.applied_feedback = 0
        self.applied_subscription = 0
        self.applied_release = 0
        self._max_event_bytes = self.settings.max_event_bytes

        lateness_days = int(self.settings.allowed_lateness_s // SECONDS_PER_DAY) + 2
        self._capacity = rules.history_days + lateness_days
        self._series = rules.series
        # Day -> customers holding events for that day, in order of arrival.
        self._pending_days: dict[int, dict[CustomerState, None]] = {}
        self._pending_releases: dict[int, list[ReleaseEvent]] = {}
        self._release_ids: set[str] = set()
        # Customers active on the open day; what they did is on their state.
        self._touched: list[CustomerState] = []
        # Customers changed since the last checkpoint took them (marked on
        # the state too, so marking again is a flag test, not a set lookup).
        self._changed: list[CustomerState] = []
        # Mask -> the rules and bits it names: a list indexed by mask where the
        # rule set is small enough (a dict would box every mask it is asked).
        self._masks: dict[int, list[tuple[RuleParams, int]]] = {}
        self._mask_list: list[list[tuple[RuleParams, int]] | None] = (
            [None] * (1 << len(rules.rules))
            if len(rules.rules) <= _MASK_LIST_RULES
            else []
        )
        self._rule_bits = {rule.name: 1 << i for i, rule in enumerate(rules.rules)}
        # The rules as the detectors read them, in the rule set's order.
        self._params = [params_for(rule) for rule in rules.rules]
        # Leave out rules whose detectors cannot fire for a customer today; off,
        # every due rule runs (tests compare the two).
        self.skip_quiet = True
        # Rules left uncalled for an active customer without their warning
        # while a recheck of theirs is pending (see quiet_while_active).
        self._absence_rules = [
            (rule, 1 << i)
            for i, rule in enumerate(self._params)
            if quiet_while_active(rule)
        ]
        self.absence_bits = sum(bit for _, bit in self._absence_rules)
        # (bit, age): rules quiet for a customer younger than age days.
        self._age_gates = [
            (1 << i, age)
            for i, rule in enumerate(self._params)
            if (age := quiet_below_age(rule)) > 0
        ]
        # (least days, bit): rules quiet while no feature was used on that many.
        self._use_gates = [
            (least, 1 << i)
            for i, rule in enumerate(self._params)
            if (least := quiet_below_use(rule)) > 0
        ]
        # What a customer did (bits) -> the rules it triggers; a list, so that
        # compiled code indexes it without boxing the bits as a dict key.
        self._rules_for = [
            sum(
                1 << i
                for i, rule in enumerate(rules.rules)
                if _TRIGGERS[rule.kind] & touched
            )
            for touched in range(8)
        ]
        # Day -> customer -> bit mask of the rules to run again on that day.
        self._due: dict[int, dict[CustomerState, int]] = {}
        # The entry of ``_due`` that ``_recheck`` used last, and its day.
        self._last_due_day = -1
        self._last_due_entry: dict[CustomerState, int] = {}
        self._active = DayCounts(0)
        self._outage: set[int] = set()
        self._outage_frozen: frozenset[int] = frozenset()
        self.guard_active = False
        self._instant: dict[str, list[RuleParams]] = {
            "feedback": [p for p in self._params if p.kind == "negative_feedback"],
            "subscription": [p for p in self._params if p.kind == "billing_risk"],
        }
        self._new_feature_rules = [
            r
            for r in rules.rules
            if isinstance(r, IgnoredFeatureRule) and r.mode == "new"
        ]
        self._releases: dict[str, tuple[Release, ...]] = {}
        self._release_passes: set[int] = set()
        for rule in self._new_feature_rules:
            for launch in rule.launches:
                day = _day_of_date(launch.date)
                plans = tuple(launch.plans) if launch.plans else None
                self._add_release(rule, Release(launch.feature, day, plans))

    # 1. Input

    def process(self, raw: bytes) -> Event | Rejected:
        """Decode and apply one raw event; bad input is counted and returned."""
        item = decode(raw, self._max_event_bytes)
        self.stats.read += 1
        if isinstance(item, Rejected):
            self._reject(item)
            return item
        rejected = self.accept(item, raw)
        return item if rejected is None else rejected

    def accept(self, event: Event, raw: bytes = b"") -> Rejected | None:
        """Apply a decoded event now, or hold it until its day is the open day."""
        event_time = event.event_time
        day = day_of(event_time)
        clock = self.clock
        # Clock fields read into typed locals: compiled, comparing an int with
        # an ``int | None`` field goes through Python's generic comparison.
        open_day = clock.open_day
        if open_day is None:
            open_day = clock.start(event_time)
        elif day < open_day:
            return self._reject(Rejected(RejectReason.LATE, "day already closed", raw))
        # The customer is looked up once here and its state handed on.
        if isinstance(event, ReleaseEvent):
            state = None
            if event.event_id is not None and self._is_repeated_release(event):
                return self._reject(
                    Rejected(RejectReason.DUPLICATE, f"event_id {event.event_id}", raw)
                )
        else:
            state = self._state(event.customer_id, day)
            # Ids are kept until their day closes; a copy arriving later is late.
            if event.event_id is not None and state.seen_id(
                event.event_id, day, open_day
            ):
                return self._reject(
                    Rejected(RejectReason.DUPLICATE, f"event_id {event.event_id}", raw)
                )

        latest = clock.max_event_time
        if latest is None or event_time > latest:
            clock.max_event_time = event_time
            closable = day_of(event_time - clock.lateness_s)
            if closable > open_day:
                self._close_days(closable)
                open_day = closable
        if day == open_day:
            self._apply(event, state, day)
        else:
            self._hold(event, state, day)
        return None

    def _hold(self, event: Event, state: CustomerState | None, day: int) -> None:
        """Keep an event of a later day until that day opens."""
        if isinstance(event, ReleaseEvent) or state is None:
            self._pending_releases.setdefault(day, []).append(event)  # type: ignore[arg-type]
            return
        if state.pending is None:
            state.pending = []
        state.pending.append(event)
        waiting = self._pending_days.get(day)
        if waiting is None:
            waiting = self._pending_days[day] = {}
        waiting[state] = None
        self._mark(state)

    def _release_held(self, day: int) -> None:
        """Apply the events held for a day that has just opened."""
        for release in self._pending_releases.pop(day, ()):
            self._apply(release, None, day)
        for state in self._pending_days.pop(day, ()):
            held, state.pending = state.pending or [], None
            # In arrival order; those of a later day wait on (a new list only
            # when there are any).
            for event in held:
                if day_of(event.event_time) == day:
                    self._apply(event, state, day)
                elif state.pending is None:
                    state.pending = [event]
                else:
                    state.pending.append(event)

    def advance_to(self, epoch: float) -> None:
        """Move the watermark to ``epoch`` and judge every day that ends before it."""
        if self.clock.open_day is None:
            self.clock.start(epoch)
        watermark = self.clock.watermark or epoch
        if epoch > watermark:
            self.clock.max_event_time = epoch + self.clock.lateness_s
        self._close_days(int(epoch // SECONDS_PER_DAY))

    def _is_repeated_release(self, event: ReleaseEvent) -> bool:
        if event.event_id in self._release_ids:
            return True
        self._release_ids.add(event.event_id)  # type: ignore[arg-type]
        return False

    def _mark(self, state: CustomerState) -> None:
        """Note that a customer changed since the last checkpoint."""
        if not state.dirty:
            state.dirty = True
            self._changed.append(state)

    def has_changes(self) -> bool:
        return bool(self._changed)

    def changed_ids(self) -> list[str]:
        """Return the ids of the customers changed since ``clear_changes``, sorted."""
        return sorted(state.customer_id for state in self._changed)

    def clear_changes(self) -> None:
        for state in self._changed:
            state.dirty = False
        self._changed = []

    def _reject(self, rejected: Rejected) -> Rejected:
        reason = rejected.reason.value
        self.stats.rejected[reason] = self.stats.rejected.get(reason, 0) + 1
        if self.on_reject is not None:
            self.on_reject(rejected)
        return rejected

    # 2. State

    def _state(self, customer_id: str, day: int) -> CustomerState:
        state = self.customers.get(customer_id)
        if state is None:
            state = self.customers[customer_id] = CustomerState(
                first_day=day, customer_id=customer_id
            )
        return state

    def _touch(self, state: CustomerState, kind: int) -> None:
        """Note what a customer did on the open day; its rules run at the day end."""
        if not state.touched:
            self._touched.append(state)
        state.touched |= kind

    def _apply(self, event: Event, state: CustomerState | None, day: int) -> None:
        if isinstance(event, ReleaseEvent) or state is None:
            self.applied_release += 1
            self._apply_release(event, day)  # type: ignore[arg-type]
            return
        self._mark(state)
        if isinstance(event, UsageEvent):
            self.applied_usage += 1
            self._apply_usage(event, state, day)
        elif isinstance(event, FeedbackEvent):
            self.applied_feedback += 1
            self._apply_feedback(event, state, day)
        else:
            self.applied_subscription += 1
            self._apply_subscription(event, state, day)

    def _apply_usage(self, event: UsageEvent, state: CustomerState, day: int) -> None:
        capacity = self._capacity
        if state.record_usage(day, 1, capacity):
            self._active.add(day, 1, capacity)
            self._touch(state, _USAGE)
        for key, match, counts_events in self._series:
            if (match.action is None or match.action == event.action) and (
                match.feature is None or match.feature == event.feature
            ):
                amount = 1 if counts_events else event.count
                state.record_series(key, day, amount, capacity)
        feature = event.feature
        if feature is not None:
            state.record_feature(feature, day)

    def _apply_feedback(
        self, event: FeedbackEvent, state: CustomerState, day: int
    ) -> None:
        state.record_feedback(day, event.channel, event.score, event.sentiment)
        self.feedback_stats.record(event.channel, event.score, day)
        self._touch(state, _FEEDBACK)
        self._evaluate_now("feedback", state, event.event_time)

    def _apply_subscription(
        self, event: SubscriptionEvent, state: CustomerState, day: int
    ) -> None:
        customer_id, at, status = event.customer_id, event.event_time, event.status
        before = (
            state.status in ACTIVE_STATUSES,
            state.plan or "unknown",
            state.mrr or 0.0,
        )
        plan = event.plan or state.plan
        mrr = event.mrr if event.mrr is not None else state.mrr
        after = (status in ACTIVE_STATUSES, plan or "unknown", mrr or 0.0)
        self.ledger.apply(customer_id, at, status, before, after)
        if status == "payment_failed":
            state.payment_failed_at = at
        elif status in _RECOVERY:
            state.payment_ok_at = at
        if status == "downgraded":
            state.downgraded_at = at
        elif status in ("upgraded", "started", "reactivated"):
            state.upgraded_at = at
        resumed = state.status == "cancelled" and status != "cancelled"
        state.status, state.plan, state.mrr = status, plan, mrr
        if resumed:
            self._resume_absence(state, day)
        if status == "cancelled":
            self.book.close_all(customer_id, at, "customer cancelled")
            state.warnings = None
            return
        self._touch(state, _BILLING)
        self._evaluate_now("subscription", state, at)

    def _resume_absence(self, state: CustomerState, day: int) -> None:
        """Ask the inactivity rules to look again at a customer back from a
        cancellation: its rechecks fell while it was cancelled, and a customer
        who does not use the product again would otherwise never be judged.
        """
        for rule, bit in self._absence_rules:
            recheck = silence_reaches(rule, state)
            if recheck > day:
                self._recheck(state, recheck, bit, bit)

    def _apply_release(self, event: ReleaseEvent, day: int) -> None:
        release = Release(event.feature, day, event.plans)
        for rule in self._new_feature_rules:
            self._add_release(rule, release)
        logger.info("feature release seen: feature=%s day=%d", event.feature, day)

    def add_release(self, event: ReleaseEvent) -> None:
        """Learn of a launch from outside this engine's stream, whatever its time.

        Launches are facts for every customer, so lateness does not apply; a
        deadline already behind the clock is judged at the next day end.
        """
        day = int(event.event_time // SECONDS_PER_DAY)
        self._apply_release(event, day)

    def _add_release(self, rule: IgnoredFeatureRule, release: Release) -> None:
        known = self._releases.get(rule.name, ())
        if any(r.feature == release.feature for r in known):
            return
        self._releases[rule.name] = (*known, release)
        deadline = release.day + rule.after_days
        if self.clock.open_day is not None:
            deadline = max(deadline, self.clock.open_day)
        self._release_passes.add(deadline)

    # 3. Judging

    def _evaluate_now(self, kind: str, state: CustomerState, at: float) -> None:
        """Run the event-driven rules at the event's own time."""
        rules = self._instant[kind]
        if not rules or state.is_cancelled:
            return
        day = int(at // SECONDS_PER_DAY)
        ctx = self._context(day)
        for rule in rules:
            recheck = self._judge(rule, state, ctx, at)
            if recheck is not None and recheck > day:
                self._schedule(recheck, state, rule)

    def _schedule(self, day: int, state: CustomerState, rule: RuleParams) -> None:
        """Ask for a rule to run again for a customer on a day."""
        self._mark(state)
        entry = self._due.get(day)
        if entry is None:
            entry = self._due[day] = {}
        entry[state] = entry.get(state, 0) | self._rule_bits[rule.name]

    def _judge(
        self, rule: RuleParams, state: CustomerState, ctx: Context, at: float
    ) -> int | None:
        """Run one rule for one customer; return the day it wants to look again."""
        open_now = state.warnings
        warning = open_now.get(rule.name) if open_now else None
        if warning is not None and at < warning.opened_at:
            return None
        finding = detect(rule, state, ctx, warning)
        if finding.fire is None or (finding.fire is False and warning is None):
            return finding.recheck_day
        return self._settle(rule, state, warning, finding, at)

    def _settle(
        self,
        rule: RuleParams,
        state: CustomerState,
        warning: ChurnWarning | None,
        finding: Finding,
        at: float,
    ) -> int | None:
        """Apply a finding that changes or refreshes a warning."""
        open_now = state.warnings
        change = self.book.apply_to(
            rule, state.customer_id, warning, finding, at, open_now
        )
        if change is not None:
            if open_now is None:
                # The book made the customer's table with this first warning.
                state.warnings = self.book.last_table
            elif not open_now:
                # The book dropped the table its last warning left.
                state.warnings = None
        # Given an open warning and a clear finding, no change means it was held.
        if warning is not None and finding.fire is False and change is None:
            # Held by min_open_days; look again once that has passed.
            opened_day = int(warning.opened_at // SECONDS_PER_DAY)
            return opened_day + rule.min_open_days
        return finding.recheck_day

    def _context(self, day: int) -> Context:
        return Context(day, self.guard_active, self._outage_frozen, self._releases)

    def _close_days(self, first_open: int) -> None:
        clock = self.clock
        while clock.open_day is not None and clock.open_day < first_open:
            day = clock.open_day
            self._tick(day)
            clock.open_day = day + 1
            self._release_held(day + 1)

    def _tick(self, day: int) -> None:
        """Judge a complete day: the guard, the due customers, the churn ledger."""
        self._update_guard(day)
        # Customers are judged in the order they became due; the book hands
        # their changes on in customer order, as a replay or a restart would.
        self.book.hold()
        try:
            self._judge_due(day)
        finally:
            self.book.release()

        self.ledger.close_day(day)
        for listener in self.on_tick:
            listener(day)

    def _judge_due(self, day: int) -> None:
        """Run the rules due at the end of ``day`` for each customer, and reschedule.

        Due are the rules a customer asked to run again today and those its own
        input of today triggers. The customers with a recheck come first (what
        they did today joins their mask), then the other active ones: no table
        of every due customer is built. Order does not matter: the book hands
        the changes on in customer order.
        """
        touched, self._touched = self._touched, []
        due = self._due.pop(day, None)
        self._last_due_day = -1
        # The inactivity rechecks of today are used up. A customer's own bits:
        # cleared as it comes up, which is the same as all first.
        absence = self.absence_bits
        if day in self._release_passes:
            due, absence = self._everyone_due(day, due), 0
        judge = _DayJudge(self, day)
        rules_for = self._rules_for
        if due:
            for state, mask in due.items():
                if mask & absence:
                    state.recheck_bits &= ~mask
                if state.touched:
                    mask |= rules_for[state.touched]
                    state.touched = 0
                self._judge_customer(judge, state, mask)
        for state in touched:
            if state.touched:
                mask = rules_for[state.touched]
                state.touched = 0
                self._judge_customer(judge, state, mask)

    def _everyone_due(
        self, day: int, due: dict[CustomerState, int] | None
    ) -> dict[CustomerState, int]:
        """Return every rule due for every customer, as on the day a feature is
        released; the inactivity rechecks of the day are used up first."""
        self._release_passes.discard(day)
        absence = self.absence_bits
        if due and absence:
            for state, mask in due.items():
                if mask & absence:
                    state.recheck_bits &= ~mask
        every = (1 << len(self.rules.rules)) - 1
        return {state: every for state in self.customers.values()}

    def _judge_customer(
        self, judge: _DayJudge, state: CustomerState, mask: int
    ) -> None:
        """Run the rules of a mask for one customer at a day end.

        The engine's hot loop, written for the compiler: typed locals and direct
        calls (a method bound to a local would be called through Python). The
        customer is marked changed first, so a recheck goes straight into the
        table instead of through ``_schedule``. An inactivity rule is left out
        for a customer active today while a recheck of it is pending, an
        abandoned-feature rule while no feature was used on enough days.
        """
        if not state.dirty:
            state.dirty = True
            self._changed.append(state)
        if state.status == "cancelled":
            return
        day = judge.day
        open_now = state.warnings
        quiet = self._quiet_today(judge, state)
        if open_now or state.first_day > judge.settled:
            mask &= ~self._quiet_bits(state.first_day, open_now, quiet, judge.gates)
        else:
            mask &= ~quiet
        mask_list = self._mask_list
        selected = mask_list[mask] if mask < len(mask_list) else None
        if selected is None:
            selected = self._selected(mask)
        ctx = judge.ctx
        for rule, bit in selected:
            warning = open_now.get(rule.name) if open_now else None
            finding = detect(rule, state, ctx, warning)
            fire = finding.fire
            if fire or (fire is False and warning is not None):
                recheck = self._settle(rule, state, warning, finding, judge.at)
            else:
                recheck = finding.recheck_day
            if recheck is not None and recheck > day:
                self._recheck(state, recheck, bit, judge.absence)

    def _quiet_today(self, judge: _DayJudge, state: CustomerState) -> int:
        """Return the rules quiet for this customer today, before age gates and
        open warnings (see ``_judge_customer``)."""
        quiet = judge.idle
        if state.last_usage_day == judge.day:
            quiet |= state.recheck_bits & judge.absence
        for least, bit in judge.use_gates:
            if state.feature_days_max < least:
                quiet |= bit
        return quiet

    def _recheck(self, state: CustomerState, day: int, bit: int, absence: int) -> None:
        """Put a rule's recheck into the table; note it if of the inactivity kind."""
        # A day end files most rechecks under a few days: the last day's entry
        # is kept at hand (compiled, a dict keyed by day boxes the day each time).
        if day == self._last_due_day:
            entry = self._last_due_entry
        else:
            got = self._due.get(day)
            if got is None:
                got = self._due[day] = {}
            entry = self._last_due_entry = got
            self._last_due_day = day
        entry[state] = entry.get(state, 0) | bit
        if bit & absence:
            state.recheck_bits |= bit

    def _idle_bits(self) -> int:
        """Return the rules quiet today for every customer without their warning.

        A new-feature rule with no launch known finds nothing to judge.
        """
        return sum(
            self._rule_bits[rule.name]
            for rule in self._new_feature_rules
            if not self._releases.get(rule.name)
        )

    def _quiet_bits(
        self,
        first_day: int,
        open_now: dict[str, ChurnWarning] | None,
        idle: int,
        gates: list[tuple[int, int]],
    ) -> int:
        """Return the rules whose detectors would stay quiet for this customer.

        A rule with an open warning is never skipped: a quiet verdict may resolve it.
        """
        quiet = idle
        for oldest, bit in gates:
            if first_day > oldest:
                quiet |= bit
        if quiet and open_now:
            for name in open_now:
                quiet &= ~self._rule_bits.get(name, 0)
        return quiet

    def _selected(self, mask: int) -> list[tuple[RuleParams, int]]:
        """Return the rules named by a mask with their bits, cached per mask."""
        selected = self._masks.get(mask)
        if selected is None:
            selected = self._masks[mask] = [
                (rule, 1 << i) for i, rule in enumerate(self._params) if mask >> i & 1
            ]
            if mask < len(self._mask_list):
                self._mask_list[mask] = selected
        return selected

    def _update_guard(self, day: int) -> None:
        """Call a day an outage when far fewer customers were active than usual."""
        usual = [
            self._active.get(day - 7 * k)
            for k in range(1, 5)
            if day - 7 * k not in self._outage and self._active.get(day - 7 * k)
        ]
        active = self._active.get(day)
        reference = statistics.median(usual) if usual else 0
        settings = self.settings
        outage = (
            reference >= settings.guard_min_customers
            and active < (1 - settings.guard_drop) * reference
        )
        if outage:
            self._outage.add(day)
            self._outage = {d for d in self._outage if d > day - self._capacity}
            self._outage_frozen = frozenset(self._outage)
        if outage != self.guard_active:
            self.guard_active = outage
            if outage:
                logger.warning(
                    "absence rules held, population-wide silence: day=%s active=%d "
                    "usual=%d",
                    _day_label(day),
                    active,
                    reference,
                )
            else:
                logger.info(
                    "absence rules resumed: day=%s active=%d", _day_label(day), active
                )

    # 4. Reading

    def health(self, customer_id: str) -> int:
        return self.book.health(customer_id)

    def sync_stats(self) -> EngineStats:
        """Bring the applied counts of ``stats`` up to date and return it."""
        counts = {
            "usage": self.applied_usage,
            "feedback": self.applied_feedback,
            "subscription": self.applied_subscription,
            "release": self.applied_release,
        }
        self.stats.by_type = {name: n for name, n in counts.items() if n}
        self.stats.applied = sum(counts.values())
        return self.stats

    def summary(self) -> dict[str, Any]:
        """Return the counts printed at the end of a replay."""
        self.sync_stats()
        return {
            "events_read": self.stats.read,
            "events_applied": self.stats.applied,
            "events_by_type": dict(sorted(self.stats.by_type.items())),
            "rejected": dict(sorted(self.stats.rejected.items())),
            "warnings_opened": self.book.opened,
            "warnings_resolved": self.book.resolved,
            "warnings_open": len(self.book.all_open()),
            "customers": len(self.customers),
            "watermark": None if self.clock.watermark is None else self.clock.watermark,
        }


def _day_of_date(value: Any) -> int:
    moment = datetime.combine(value, time(0), tzinfo=None)
    return moment.toordinal() - 719_163


def _day_label(day: int) -> str:
    return datetime.fromordinal(day + 719_163).date().isoformat()


class _DayJudge:
    """What every customer judged at one day end shares: the day, its context,
    and the rules quiet for all (see ``Engine._judge_customer``)."""

    __slots__ = ("absence", "at", "ctx", "day", "gates", "idle", "settled", "use_gates")

    def __init__(self, engine: Engine, day: int) -> None:
        skip = engine.skip_quiet
        self.day = day
        self.ctx = engine._context(day)
        self.at = float((day + 1) * SECONDS_PER_DAY)
        self.idle = engine._idle_bits() if skip else 0
        self.absence = engine.absence_bits if skip else 0
        self.gates = (
            [(day + 1 - age, bit) for bit, age in engine._age_gates] if skip else []
        )
        self.use_gates = engine._use_gates if skip else []
        # A customer who started on or before ``settled`` is past every age gate.
        self.settled = min((oldest for oldest, _ in self.gates), default=day)
