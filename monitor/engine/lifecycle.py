"""Warning lifecycle: open on a firing finding, hold while it lasts, resolve when clear.

Emits one record per change and nothing else; ids are stable, so a replay or a
restart rebuilds the same warnings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final

from monitor.decode.decoder import format_time
from monitor.state.customer import SECONDS_PER_DAY

if TYPE_CHECKING:
    # Typed for the compiler (native field reads); imported only for checking,
    # since the detectors import this module.
    from monitor.engine.detectors.params import RuleParams

__all__ = ["ChurnWarning", "Finding", "RecordSink", "WarningBook", "warning_id"]

RecordSink = Callable[[dict[str, Any]], None]


# Made per detector call, so init=False and a written __init__ (see records).
@dataclass(slots=True, init=False)
class Finding:
    """A detector's verdict: fire (True), clear (False) or no change (None)."""

    fire: bool | None
    evidence: dict[str, Any] = field(default_factory=dict)
    recheck_day: int | None = None

    def __init__(
        self,
        fire: bool | None,
        evidence: dict[str, Any] | None = None,
        recheck_day: int | None = None,
    ) -> None:
        self.fire = fire
        self.evidence = {} if evidence is None else evidence
        self.recheck_day = recheck_day


# A written __init__, as for Finding: the generated one is interpreted.
@dataclass(slots=True, init=False)
class ChurnWarning:
    """An open warning for one customer and one rule."""

    id: str
    customer_id: str
    rule: str
    kind: str
    severity: str
    weight: int
    action: str
    opened_at: float
    evidence: dict[str, Any]

    def __init__(
        self,
        id: str,
        customer_id: str,
        rule: str,
        kind: str,
        severity: str,
        weight: int,
        action: str,
        opened_at: float,
        evidence: dict[str, Any],
    ) -> None:
        self.id = id
        self.customer_id = customer_id
        self.rule = rule
        self.kind = kind
        self.severity = severity
        self.weight = weight
        self.action = action
        self.opened_at = opened_at
        self.evidence = evidence


def warning_id(customer_id: str, rule: str, opened_at: float) -> str:
    """Return the stable id of the warning opened for a customer and rule at a time."""
    key = f"{customer_id}\x1f{rule}\x1f{int(opened_at)}".encode()
    return hashlib.sha256(key).hexdigest()[:20]


class WarningBook:
    """Hold the open warnings and turn findings into lifecycle records."""

    def __init__(self, sink: RecordSink | None = None) -> None:
        # None: the records are made (for the listeners) but go nowhere.
        self._sink = sink
        self._open: dict[str, dict[str, ChurnWarning]] = {}
        self.opened = 0
        self.resolved = 0
        self.on_change: list[Callable[[ChurnWarning, str], None]] = []
        # The table of open warnings of the customer whose warning opened last.
        self.last_table: dict[str, ChurnWarning] | None = None
        # Changes held back by ``hold`` until ``release``, in the order made.
        self._held: list[tuple[str, ChurnWarning, str, dict[str, Any]]] | None = None
        # The last time formatted: a day end's changes all share one.
        self._at: float = -1.0
        self._at_text = ""

    def hold(self) -> None:
        """Keep the changes from now on until ``release``."""
        if self._held is None:
            self._held = []

    def release(self) -> None:
        """Deliver the held changes ordered by customer, each customer's in the
        order they were made (a day end judges customers in any order, but its
        records come out the same every time)."""
        held, self._held = self._held, None
        if held:
            held.sort(key=_BY_CUSTOMER)
            for _, warning, status, record in held:
                self._deliver(warning, status, record)

    def open_for(self, customer_id: str) -> dict[str, ChurnWarning]:
        return self._open.get(customer_id, {})

    @property
    def by_customer(self) -> dict[str, dict[str, ChurnWarning]]:
        """Return customer -> rule -> open warning; customers with none are absent.

        The book's own table, for fast reads; change it only through the book.
        """
        return self._open

    def get(self, customer_id: str, rule: str) -> ChurnWarning | None:
        return self._open.get(customer_id, {}).get(rule)

    def all_open(self) -> list[ChurnWarning]:
        return [w for by_rule in self._open.values() for w in by_rule.values()]

    def health(self, customer_id: str) -> int:
        """Return 100 minus the weights of the customer's open warnings, at least 0."""
        return _health(self._open.get(customer_id))

    def apply_to(
        self,
        rule: RuleParams,
        customer_id: str,
        warning: ChurnWarning | None,
        finding: Finding,
        at: float,
        open_now: dict[str, ChurnWarning] | None = None,
    ) -> str | None:
        """Open, keep or resolve the rule's warning; return the change made.

        ``warning`` is the rule's open warning for the customer, or None;
        ``open_now``, when given, is the customer's table of open warnings as
        ``by_customer`` holds it (saves looking the customer up again).
        """
        if finding.fire is True:
            if warning is not None:
                warning.evidence = finding.evidence
                return None
            warning = ChurnWarning(
                id=warning_id(customer_id, rule.name, at),
                customer_id=customer_id,
                rule=rule.name,
                kind=rule.kind,
                severity=rule.severity,
                weight=rule.weight,
                action=rule.action,
                opened_at=at,
                evidence=finding.evidence,
            )
            by_rule = open_now if open_now is not None else self._open.get(customer_id)
            if by_rule is None:
                by_rule = self._open[customer_id] = {}
            by_rule[rule.name] = warning
            self.last_table = by_rule
            self.opened += 1
            self._emit(warning, "opened", at, finding.evidence, by_rule)
            return "opened"

        if finding.fire is False and warning is not None:
            # Hysteresis in time: a warning stays open for min_open_days at least.
            if at - warning.opened_at < rule.min_open_days * SECONDS_PER_DAY:
                return None
            self.close(warning, at, finding.evidence, open_now)
            return "resolved"
        return None

    def close(
        self,
        warning: ChurnWarning,
        at: float,
        evidence: dict[str, Any],
        open_now: dict[str, ChurnWarning] | None = None,
    ) -> None:
        """Resolve an open warning with the evidence that cleared it."""
        by_rule = (
            open_now if open_now is not None else self._open.get(warning.customer_id)
        )
        if by_rule is not None:
            if warning.rule in by_rule:
                del by_rule[warning.rule]
            if not by_rule:
                del self._open[warning.customer_id]
        self.resolved += 1
        self._emit(warning, "resolved", at, evidence, by_rule)

    def close_all(self, customer_id: str, at: float, reason: str) -> None:
        """Resolve every open warning of a customer, e.g. when it cancels."""
        for warning in sorted(self.open_for(customer_id).values(), key=_by_rule):
            self.close(warning, at, {"resolution": reason, "summary": reason})

    def restore(self, warning: ChurnWarning) -> None:
        """Put back a warning loaded from a checkpoint, without emitting."""
        self._open.setdefault(warning.customer_id, {})[warning.rule] = warning

    def _emit(
        self,
        warning: ChurnWarning,
        status: str,
        at: float,
        evidence: dict[str, Any],
        by_rule: dict[str, ChurnWarning] | None,
    ) -> None:
        # No log line: the record is the account of the change.
        if at != self._at:
            self._at, self._at_text = at, format_time(at)
        record = {
            "customer_id": warning.customer_id,
            "rule": warning.rule,
            "kind": warning.kind,
            "status": status,
            "at": self._at_text,
            "severity": warning.severity,
            "evidence": evidence,
            "action": warning.action,
            "id": warning.id,
            "health_score": _health(by_rule),
        }
        if self._held is not None:
            self._held.append((warning.customer_id, warning, status, record))
        else:
            self._deliver(warning, status, record)

    def _deliver(
        self, warning: ChurnWarning, status: str, record: dict[str, Any]
    ) -> None:
        if self._sink is not None:
            self._sink(record)
        for listener in self.on_change:
            listener(warning, status)


def _by_rule(warning: ChurnWarning) -> str:
    return warning.rule


def _health(open_now: dict[str, ChurnWarning] | None) -> int:
    if not open_now:
        return 100
    score = 100
    for warning in open_now.values():
        score -= warning.weight
    return max(0, score)


# Held changes sort by their first item, the customer id (a C key function:
# the sort calls it once per change).
_BY_CUSTOMER: Final = itemgetter(0)
