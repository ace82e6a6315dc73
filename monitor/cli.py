"""The ``churn-monitor`` command line: replay, rules check, simulate, backtest, schema.

Parses arguments, sets up logging and wires the stages; holds no detection logic.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import signal
import sys
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import IO, Any

from monitor.backtest import backtest
from monitor.decode.decoder import parse_time
from monitor.decode.events import Rejected, event_json_schema
from monitor.engine.accounting import ChurnLedger
from monitor.engine.core import Engine
from monitor.engine.loader import check_rules, load_rules
from monitor.errors import MonitorError
from monitor.ingest.replay import read_lines
from monitor.outputs.writers import JsonlWriter, RejectsWriter, write_scores
from monitor.runtime import tune_gc
from monitor.settings import Settings, load_settings
from monitor.simulate import simulate_lines

__all__ = ["main"]

logger = logging.getLogger(__name__)


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # kafka-python narrates every connection at INFO; keep its warnings only.
    logging.getLogger("kafka").setLevel(max(level, logging.WARNING))
    if level > logging.DEBUG:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_KafkaThrottle())
    # APScheduler logs every job run at INFO.
    logging.getLogger("apscheduler").setLevel(max(level, logging.WARNING))


class _KafkaThrottle(logging.Filter):
    """Let one kafka-python record through per message and ``interval_s``.

    While a broker is away kafka-python logs every failed reconnect at ERROR,
    many a second; the monitor's own ``broker lost`` line says it once.
    """

    def __init__(self, interval_s: float = 60.0) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._last: dict[tuple[str, object], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("kafka"):
            return True
        key = (record.name, record.msg)
        last = self._last.get(key)
        if last is not None and record.created - last < self.interval_s:
            return False
        self._last[key] = record.created
        return True


@contextlib.contextmanager
def _open_out(target: str | None, binary: bool = True) -> Iterator[IO[Any] | None]:
    if target is None:
        yield None
    elif target == "-":
        yield sys.stdout.buffer if binary else sys.stdout
    else:
        with open(
            target, "wb" if binary else "w", encoding=None if binary else "utf-8"
        ) as f:
            yield f


class _LazyRejects:
    """Create the rejects file on the first rejection only."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stream: IO[bytes] | None = None
        self._writer: RejectsWriter | None = None
        self.line = 0

    def __call__(self, rejected: Rejected) -> None:
        if self._writer is None:
            # The file stays open across calls; close() closes it.
            self._stream = (
                sys.stdout.buffer if self.path == "-" else open(self.path, "wb")  # noqa: SIM115
            )
            self._writer = RejectsWriter(self._stream)
        self._writer(rejected, {"line": self.line})

    def close(self) -> None:
        if self._stream is not None and self.path != "-":
            self._stream.close()


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(Path(args.config) if args.config else None)


def _replay(args: argparse.Namespace) -> int:
    settings = _settings(args)
    rules = load_rules(Path(args.rules or settings.rules_dir))
    rejects = _LazyRejects(args.rejects)
    with _open_out(args.warnings) as out:
        writer = JsonlWriter(out) if out is not None else None
        engine = Engine(rules, settings.engine, sink=writer, on_reject=rejects)
        exporter = _snapshot_exporter(settings, engine) if args.metrics else None
        for number, raw in enumerate(read_lines(args.events), start=1):
            rejects.line = number
            engine.process(raw)
        if args.until:
            engine.advance_to(parse_time(args.until))
        if out is not None:
            out.flush()
    rejects.close()

    if exporter is not None:
        from monitor.outputs.exposition import encode_text

        stats = engine.sync_stats()
        for kind, n in stats.by_type.items():
            exporter.record_consumed(kind, n)
        for reason, n in stats.rejected.items():
            exporter.record_consumed("invalid", n)
            exporter.record_rejected(reason, n)
        Path(args.metrics).write_bytes(encode_text(exporter.registry))
    if args.scores:
        with open(args.scores, "w", encoding="utf-8") as f:
            write_scores(f, sorted(engine.customers), engine.book)
    if args.churn:
        with open(args.churn, "w", encoding="utf-8") as f:
            _write_churn(f, engine.ledger)
    summary = engine.summary()
    if summary["rejected"]:
        summary["rejects_file"] = args.rejects
    print(json.dumps(summary, indent=None, sort_keys=False), file=sys.stderr)
    return 0


def _snapshot_exporter(settings: Settings, engine: Engine) -> Any:
    """An exporter that serves nothing: its text is written once, after a replay."""
    from monitor.outputs.metrics import MetricsExporter

    quiet = settings.metrics.model_copy(update={"enabled": False})
    exporter = MetricsExporter(quiet, engines=lambda: [engine])
    exporter.attach(engine)
    exporter.set_rule_state(len(engine.rules.rules), 0)
    exporter.set_ready(True)
    return exporter


def _write_churn(stream: IO[str], ledger: ChurnLedger) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(
        [
            "period",
            "plan",
            "partial",
            "customers_at_start",
            "customers_lost",
            "churn_rate_pct",
            "mrr_at_start",
            "mrr_lost",
            "mrr_contraction",
        ]
    )
    for label in sorted(ledger.periods):
        figures = ledger.periods[label]
        for plan in [*figures.plans(), None]:
            rate = figures.churn_rate(plan)
            writer.writerow(
                [
                    label,
                    plan or "(all)",
                    figures.partial,
                    _pick(figures.at_start, plan),
                    _pick(figures.lost, plan),
                    "" if rate is None else f"{rate:.2f}",
                    _pick(figures.mrr_at_start, plan),
                    _pick(figures.mrr_lost, plan),
                    _pick(figures.mrr_contraction, plan),
                ]
            )


def _pick(table: dict[str, Any], plan: str | None) -> int | float:
    """Return one plan's figure, or the sum over plans when ``plan`` is None."""
    value = table.get(plan, 0) if plan is not None else sum(table.values())
    return round(value, 2) if isinstance(value, float) else int(value)


def _rules_check(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    try:
        rules, errors = check_rules(folder)
    except MonitorError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    for error in errors:
        print(f"FAILED: {error}", file=sys.stderr)
    if not rules and not errors:
        print(f"FAILED: {folder}: no rule files (*.yaml) found", file=sys.stderr)
        return 1
    print(
        f"SUCCESS: {len(rules)} rules found in {folder}"
        if not errors
        else f"{len(rules)} good, {len(errors)} refused"
    )
    return 1 if errors else 0


def _simulate(args: argparse.Namespace) -> int:
    start = date.fromisoformat(args.start)
    lines = simulate_lines(args.customers, args.days, args.seed, start)
    with _open_out(args.out) as out:
        assert out is not None
        for line in lines:
            out.write(line + b"\n")
    print(
        f"wrote {len(lines)} events for {args.customers} customers over "
        f"{args.days} days to {args.out}",
        file=sys.stderr,
    )
    return 0


def _backtest(args: argparse.Namespace) -> int:
    settings = _settings(args)
    rules = load_rules(Path(args.rules or settings.rules_dir))
    scores = backtest(
        read_lines(args.events), rules, settings.engine, args.horizon_days
    )
    if args.json:
        print(json.dumps([s.as_dict() for s in scores], indent=2))
        return 0
    columns = (
        "recall",
        "precision",
        "median_lead_days",
        "false_per_1000_customers_month",
    )
    print(
        f"{'rule':<38}{'warn':>6}{'caught':>9}{'recall':>8}{'prec':>7}"
        f"{'lead_d':>8}{'false/1k/mo':>13}"
    )
    for s in scores:
        d = s.as_dict()
        cells = [_cell(d[k]) for k in columns]
        caught = f"{s.caught}/{s.churners}"
        print(
            f"{s.rule:<38}{s.warnings:>6}{caught:>9}{cells[0]:>8}{cells[1]:>7}"
            f"{cells[2]:>8}{cells[3]:>13}"
        )
    return 0


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _run(args: argparse.Namespace) -> int:
    from monitor.app import Monitor
    from monitor.outputs.metrics import MetricsExporter
    from monitor.scheduler import Scheduler

    settings = _settings(args)
    if args.bootstrap:
        kafka = settings.kafka.model_copy(update={"bootstrap_servers": args.bootstrap})
        settings = settings.model_copy(update={"kafka": kafka})
    rules = load_rules(Path(args.rules or settings.rules_dir))
    holder: list[Monitor] = []
    exporter = MetricsExporter(
        settings.metrics,
        engines=lambda: [task.engine for task in list(holder[0].tasks.values())],
    )
    monitor = Monitor(settings, rules, observer=exporter)
    holder.append(monitor)
    exporter.set_rule_state(len(rules.rules), 0, [r.name for r in rules.rules])
    scheduler = Scheduler(registry=exporter.registry, hand_over=monitor.request)
    scheduler.add(
        "checkpoint", settings.kafka.commit_interval_s, monitor.request_checkpoint
    )
    scheduler.add_on_main_loop("idle-clock", 30.0, monitor.advance_idle_clocks)
    scheduler.add("broker-watch", 1.0, monitor.watch_broker)

    def _stop(signum: int, frame: object) -> None:
        logger.info("shutdown requested: signal=%s", signal.Signals(signum).name)
        monitor.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    exporter.start()
    scheduler.start()
    try:
        monitor.run()
    finally:
        scheduler.stop(wait=False)
        exporter.stop()
    return 0


def _produce(args: argparse.Namespace) -> int:
    from monitor.ingest.producer import produce_file

    settings = _settings(args)
    kafka = settings.kafka
    if args.bootstrap:
        kafka = kafka.model_copy(update={"bootstrap_servers": args.bootstrap})
    counts = produce_file(read_lines(args.events), kafka, rate=args.rate)
    print(json.dumps(counts), file=sys.stderr)
    return 0


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(event_json_schema(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="churn-monitor", description=__doc__)
    parser.add_argument(
        "-v", "--verbose", action="count", default=1, help="more logging (-vv debug)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    replay = sub.add_parser("replay", help="replay a JSONL history and write warnings")
    replay.add_argument("events", help="JSONL file of events, or - for stdin")
    replay.add_argument("--rules", help="folder of rule files (default: rules/)")
    replay.add_argument("--config", help="settings YAML file")
    replay.add_argument(
        "--warnings", default="-", help="warning lifecycle JSONL (default stdout)"
    )
    replay.add_argument(
        "--rejects",
        default="rejects.jsonl",
        help="rejected inputs with reasons and original bytes "
        "(default rejects.jsonl, created only when needed)",
    )
    replay.add_argument(
        "--scores", help="write customer_id,health_score,open_warnings CSV"
    )
    replay.add_argument("--churn", help="write churn per period and plan as CSV")
    replay.add_argument(
        "--metrics", help="write the Prometheus metrics at the end to this file"
    )
    replay.add_argument(
        "--until", help="RFC 3339 time: judge absence up to it after the last event"
    )
    replay.set_defaults(func=_replay)

    rules = sub.add_parser("rules", help="rule file tools")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    check = rules_sub.add_parser("check", help="validate a folder of rule files")
    check.add_argument("dir", nargs="?", default="rules")
    check.set_defaults(func=_rules_check)

    sim = sub.add_parser("simulate", help="write a synthetic customer history")
    sim.add_argument("--customers", type=int, default=500)
    sim.add_argument("--days", type=int, default=180)
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--start", default="2026-01-05", help="first day (YYYY-MM-DD)")
    sim.add_argument("--out", default="-", help="output JSONL (default stdout)")
    sim.set_defaults(func=_simulate)

    bt = sub.add_parser(
        "backtest", help="score the rules against a history's cancellations"
    )
    bt.add_argument("events")
    bt.add_argument("--rules")
    bt.add_argument("--config")
    bt.add_argument("--horizon-days", type=int, default=60)
    bt.add_argument("--json", action="store_true", help="print scores as JSON")
    bt.set_defaults(func=_backtest)

    run = sub.add_parser("run", help="consume events live from Kafka")
    run.add_argument("--config", help="settings YAML file")
    run.add_argument("--rules", help="folder of rule files (default: rules/)")
    run.add_argument("--bootstrap", help="Kafka bootstrap servers (overrides settings)")
    run.set_defaults(func=_run)

    produce = sub.add_parser(
        "produce", help="send a JSONL history to Kafka (keyed by customer)"
    )
    produce.add_argument("events", help="JSONL file of events, or - for stdin")
    produce.add_argument("--config", help="settings YAML file")
    produce.add_argument("--bootstrap", help="Kafka bootstrap servers")
    produce.add_argument(
        "--rate", type=float, help="events per second (default: as fast as possible)"
    )
    produce.set_defaults(func=_produce)

    schema = sub.add_parser("schema", help="print the event JSON Schema")
    schema.set_defaults(func=_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    tune_gc()
    try:
        return int(args.func(args))
    except MonitorError as exc:
        print(f"churn-monitor: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
