"""The command line, as a user runs it: replay, simulate, backtest, schema."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import orjson
import pytest
from helpers import REPO, daily_usage, event, in_time_order

from monitor.cli import _KafkaThrottle, main


@pytest.fixture
def history(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    lines = in_time_order(
        daily_usage("quiet", range(10), lambda day: 2)
        + daily_usage("busy", range(40), lambda day: 2)
    )
    lines.insert(5, b"{broken json")
    lines.insert(9, event("usage", 1, customer_id=None))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_replay_writes_warnings_rejects_scores(
    history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, rejects, scores = (
        tmp_path / "w.jsonl",
        tmp_path / "r.jsonl",
        tmp_path / "s.csv",
    )

    code = main(
        [
            "replay",
            str(history),
            "--rules",
            str(REPO / "rules"),
            "--warnings",
            str(out),
            "--rejects",
            str(rejects),
            "--scores",
            str(scores),
            "--until",
            "2026-05-01T00:00:00Z",
        ]
    )

    summary = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(r["customer_id"], r["rule"], r["status"]) for r in records} >= {
        ("quiet", "inactivity", "opened"),
        ("busy", "inactivity", "opened"),
    }
    assert set(records[0]) >= {
        "customer_id",
        "rule",
        "status",
        "at",
        "severity",
        "evidence",
        "action",
        "id",
    }
    kept = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert sorted(k["reason"] for k in kept) == ["malformed_json", "missing_field"]
    assert any(k["raw"] == "{broken json" for k in kept)
    assert summary["rejected"] == {"malformed_json": 1, "missing_field": 1}
    assert summary["events_read"] == summary["events_applied"] + 2
    rows = list(csv.DictReader(scores.read_text().splitlines()))
    assert rows[0]["customer_id"] in ("busy", "quiet")
    assert int(rows[0]["health_score"]) < 100


def test_replay_stdin_to_stdout_is_deterministic(
    history: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    outputs = []
    for _ in range(2):
        with history.open("rb") as stdin:
            monkeypatch.setattr("sys.stdin", type("S", (), {"buffer": stdin})())
            main(
                [
                    "replay",
                    "-",
                    "--rules",
                    str(REPO / "rules"),
                    "--rejects",
                    "/dev/null",
                    "--until",
                    "2026-04-20T00:00:00Z",
                ]
            )
        outputs.append(capsysbinary.readouterr().out)

    assert outputs[0]
    assert outputs[0] == outputs[1]


def test_replay_writes_prometheus_metrics(history: Path, tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.prom"

    main(
        [
            "replay",
            str(history),
            "--warnings",
            str(tmp_path / "w.jsonl"),
            "--rejects",
            str(tmp_path / "r.jsonl"),
            "--metrics",
            str(metrics),
            "--until",
            "2026-05-01T00:00:00Z",
        ]
    )

    text = metrics.read_text()
    assert "churn_customers_tracked 2.0" in text
    assert 'churn_events_rejected_total{reason="malformed_json"} 1.0' in text
    assert 'churn_customer_warning{customer="quiet",rule="inactivity"' in text


def test_replay_missing_file_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["replay", "/nonexistent/events.jsonl"])

    assert code == 2
    assert "cannot open events file" in capsys.readouterr().err


def test_simulate_then_churn_table(tmp_path: Path) -> None:
    events, churn = tmp_path / "sim.jsonl", tmp_path / "churn.csv"

    main(
        [
            "simulate",
            "--customers",
            "40",
            "--days",
            "70",
            "--seed",
            "5",
            "--out",
            str(events),
        ]
    )
    main(
        [
            "replay",
            str(events),
            "--warnings",
            str(tmp_path / "w.jsonl"),
            "--churn",
            str(churn),
            "--rejects",
            str(tmp_path / "r.jsonl"),
        ]
    )

    lines = events.read_bytes().splitlines()
    assert len(lines) > 1000
    assert all(orjson.loads(line)["type"] for line in lines[:50])
    rows = list(csv.DictReader(churn.read_text().splitlines()))
    assert {
        "period",
        "plan",
        "customers_at_start",
        "customers_lost",
        "churn_rate_pct",
    } <= set(rows[0])


def test_schema_prints_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0

    schema = json.loads(capsys.readouterr().out)
    assert "usage" in schema["discriminator"]["mapping"]


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (
        ["replay"],
        ["simulate"],
        ["backtest"],
        ["schema"],
        ["rules", "check"],
    ):
        with pytest.raises(SystemExit) as done:
            main([*command, "--help"])
        assert done.value.code == 0
    assert "usage: churn-monitor" in capsys.readouterr().out


def test_kafka_log_storm_is_throttled_per_message() -> None:
    throttle = _KafkaThrottle(interval_s=60)

    def record(name: str, msg: str, at: float) -> logging.LogRecord:
        item = logging.LogRecord(name, logging.ERROR, "x", 1, msg, ("a",), None)
        item.created = at
        return item

    assert throttle.filter(record("kafka.net", "lost: %s", 0.0))
    assert not throttle.filter(record("kafka.net", "lost: %s", 5.0))
    assert throttle.filter(record("kafka.net", "refused: %s", 5.0))
    assert throttle.filter(record("kafka.net", "lost: %s", 61.0))
    assert throttle.filter(record("monitor.app", "lost: %s", 5.0))
    assert throttle.filter(record("monitor.app", "lost: %s", 6.0))
