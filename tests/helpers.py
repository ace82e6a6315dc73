"""Shared test helpers: event factories and an engine fed from Python values."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from monitor.engine.core import Engine
from monitor.engine.loader import RuleSet, load_rules
from monitor.settings import EngineSettings

REPO = Path(__file__).resolve().parent.parent
START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday

EventFactory = Callable[..., bytes]


def stamp(day: float, hour: float = 12.0) -> str:
    """Return an RFC 3339 time ``day`` days and ``hour`` hours after START."""
    moment = START + timedelta(days=day, hours=hour)
    return moment.isoformat().replace("+00:00", "Z")


def event(
    kind: str = "usage", day: float = 0, hour: float = 12.0, **fields: Any
) -> bytes:
    """Build one event line; fields override the defaults of its kind."""
    defaults: dict[str, dict[str, Any]] = {
        "usage": {"customer_id": "c1", "action": "view"},
        "feedback": {"customer_id": "c1", "channel": "nps", "score": 9},
        "subscription": {
            "customer_id": "c1",
            "status": "started",
            "plan": "pro",
            "mrr": 99.0,
        },
        "release": {"feature": "new_thing"},
    }
    body = {"type": kind, "timestamp": stamp(day, hour), **defaults[kind], **fields}
    return orjson.dumps({k: v for k, v in body.items() if v is not None})


class Harness:
    """An engine with its records collected, fed with event lines."""

    def __init__(self, rules: RuleSet, settings: EngineSettings | None = None) -> None:
        self.records: list[dict[str, Any]] = []
        self.engine = Engine(
            rules, settings or EngineSettings(), sink=self.records.append
        )

    def feed(self, lines: Iterable[bytes]) -> Harness:
        for line in lines:
            self.engine.process(line)
        return self

    def until(self, day: float) -> Harness:
        self.engine.advance_to((START + timedelta(days=day)).timestamp())
        return self

    def opened(
        self, rule: str | None = None, customer: str | None = None
    ) -> list[dict[str, Any]]:
        return self._select("opened", rule, customer)

    def resolved(
        self, rule: str | None = None, customer: str | None = None
    ) -> list[dict[str, Any]]:
        return self._select("resolved", rule, customer)

    def _select(
        self, status: str, rule: str | None, customer: str | None
    ) -> list[dict[str, Any]]:
        return [
            r
            for r in self.records
            if r["status"] == status
            and (rule is None or r["rule"] == rule)
            and (customer is None or r["customer_id"] == customer)
        ]


def rules_from(tmp_path: Path, *texts: str) -> RuleSet:
    """Write rule files into a fresh folder and load them."""
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    for number, text in enumerate(texts):
        (folder / f"rule_{number}.yaml").write_text(text, encoding="utf-8")
    return load_rules(folder)


def daily_usage(
    customer: str, days: range, per_day: Callable[[int], int], **fields: Any
) -> list[bytes]:
    """Usage events for a customer: ``per_day(day)`` events on each day."""
    lines = []
    for day in days:
        for n in range(per_day(day)):
            lines.append(
                event(
                    "usage",
                    day,
                    8 + (n * 10 / max(per_day(day), 1)),
                    customer_id=customer,
                    **fields,
                )
            )
    return lines


def in_time_order(lines: Iterable[bytes]) -> list[bytes]:
    """Sort event lines by their timestamp, as a producer in real time would send."""
    return sorted(lines, key=lambda line: orjson.loads(line)["timestamp"])
