"""Check deploy/ with the real tools: promtool, amtool, Prometheus and Alertmanager."""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promstack
import pytest
import yaml
from prometheus_client import CollectorRegistry, Gauge, start_http_server

pytestmark = pytest.mark.integration

DEPLOY_DIR = promstack.DEPLOY_DIR
PROMETHEUS_DIR = DEPLOY_DIR / "prometheus"
ALERTS_FILE = PROMETHEUS_DIR / "rules" / "alerts.yml"
RECORDING_FILE = PROMETHEUS_DIR / "rules" / "recording.yml"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
DASHBOARD = DEPLOY_DIR / "grafana" / "dashboards" / "churn-monitor.json"
OBSERVABILITY_SCRIPT = DEPLOY_DIR / "observability.sh"

CONTRACT_METRICS = promstack.CONTRACT_METRICS
ABSENCE_KINDS = ("inactivity", "vanishing_feedback", "declining_usage")


def run_tool(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run a tool from the repo root; fail the test with its output if it fails."""
    binary = promstack.require_binary(argv[0])
    result = subprocess.run(
        [binary, *argv[1:]],
        cwd=promstack.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}")

    return result


def load_rules(path: Path) -> list[dict[str, Any]]:
    document = yaml.safe_load(path.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from dashboard_panels(panel.get("panels", []))


def dashboard_expressions() -> list[str]:
    """Every PromQL expression of the dashboard, Grafana variables filled in."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [
        target["expr"]
        for panel in dashboard_panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        query = query["query"] if isinstance(query, dict) else query
        # label_values(expr, label) is Grafana's; the expression inside is PromQL.
        found = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
        exprs.append(found.group(1) if found else query)

    return [fill_grafana_variables(expr) for expr in exprs]


def fill_grafana_variables(expr: str) -> str:
    builtins = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
    return re.sub(
        r"\$\{?(\w+)\}?", lambda found: builtins.get(found.group(1), ".*"), expr
    )


def metric_names(expr: str) -> tuple[set[str], set[str]]:
    """Return the recorded (level:metric:ops) and raw churn_* names in an expression."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    recorded = set(re.findall(r"[a-z_]*:[a-z0-9_]+:[a-z0-9_]+", expr))
    for name in recorded:
        expr = expr.replace(name, "")

    return recorded, set(re.findall(r"\bchurn_[a-z0-9_]+", expr))


def recorded_names() -> set[str]:
    return {rule["record"] for rule in load_rules(RECORDING_FILE) if "record" in rule}


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    workdir = tmp_path_factory.mktemp("prometheus")
    with promstack.start_prometheus(workdir) as process:
        yield process


def test_prometheus_config_passes_promtool_check() -> None:
    result = run_tool("promtool", "check", "config", "deploy/prometheus/prometheus.yml")

    assert "SUCCESS: 2 rule files found" in result.stdout


def test_rule_files_pass_promtool_check() -> None:
    result = run_tool(
        "promtool", "check", "rules", str(RECORDING_FILE), str(ALERTS_FILE)
    )

    assert result.stdout.count("SUCCESS") == 2


def test_rule_unit_tests_pass() -> None:
    result = run_tool("promtool", "test", "rules", *map(str, RULE_TESTS))

    assert result.stdout.count("SUCCESS") == len(RULE_TESTS)


def test_every_alert_has_firing_and_quiet_unit_tests() -> None:
    """Each alert name appears in promtool tests both with and without alerts."""
    alert_names = {rule["alert"] for rule in load_rules(ALERTS_FILE) if "alert" in rule}
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])

    assert alert_names - firing == set()
    assert alert_names - quiet == set()


def test_rules_use_only_contract_metrics_and_defined_records() -> None:
    records = recorded_names()
    rules = load_rules(RECORDING_FILE) + load_rules(ALERTS_FILE)
    used_records: set[str] = set()
    used_metrics: set[str] = set()
    for rule in rules:
        found_records, found_metrics = metric_names(rule["expr"])
        used_records |= found_records
        used_metrics |= found_metrics

    assert used_records - records == set()
    assert used_metrics - CONTRACT_METRICS == set()


def test_alertmanager_config_passes_amtool_check() -> None:
    result = run_tool("amtool", "check-config", "deploy/alertmanager/alertmanager.yml")

    assert "1 inhibit rules" in result.stdout
    assert "1 templates" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (
            "alertname=ChurnWarning team=customer-success customer=c-1 "
            "rule=usage-drop kind=declining_usage severity=warning",
            "customer-success",
        ),
        (
            "alertname=ChurnRateHigh team=customer-success audience=leadership "
            "period=current severity=warning",
            "customer-success-leadership",
        ),
        ("alertname=ConsumerLagHigh team=ops topic=usage severity=warning", "ops"),
        ("alertname=ChurnMonitorDown team=ops severity=critical", "ops"),
        ("alertname=SomethingElse severity=warning", "ops"),
    ],
)
def test_alert_routes_to_receiver(labels: str, receiver: str) -> None:
    result = run_tool(
        "amtool",
        "config",
        "routes",
        "test",
        "--config.file=deploy/alertmanager/alertmanager.yml",
        f"--verify.receivers={receiver}",
        *labels.split(),
    )

    assert result.stdout.split() == [receiver]


def test_every_alert_rule_routes_to_its_team() -> None:
    """The static labels each alerting rule sets pick the receiver its team reads."""
    expected = {"customer-success": "customer-success", "ops": "ops"}
    for rule in load_rules(ALERTS_FILE):
        if "alert" not in rule:
            continue
        labels = {"alertname": rule["alert"], **rule["labels"]}
        receiver = expected[labels["team"]]
        if labels.get("audience") == "leadership":
            receiver = "customer-success-leadership"

        run_tool(
            "amtool",
            "config",
            "routes",
            "test",
            "--config.file=deploy/alertmanager/alertmanager.yml",
            f"--verify.receivers={receiver}",
            *(f"{name}={value}" for name, value in labels.items()),
        )


def test_dashboard_expressions_parse_in_prometheus(prometheus: Any) -> None:
    exprs = dashboard_expressions()

    answers = {expr: prometheus.query_raw(expr) for expr in exprs}

    assert len(exprs) >= 30
    failed = {e: a for e, a in answers.items() if a.get("status") != "success"}
    assert failed == {}


def test_dashboard_uses_only_contract_metrics_and_defined_records() -> None:
    used_records: set[str] = set()
    used_metrics: set[str] = set()
    for expr in dashboard_expressions():
        found_records, found_metrics = metric_names(expr)
        used_records |= found_records
        used_metrics |= found_metrics

    assert used_records - recorded_names() == set()
    assert used_metrics - CONTRACT_METRICS == set()


def test_dashboard_layout_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = list(dashboard_panels(dashboard["panels"]))

    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    assert all(
        panel["datasource"]["uid"] == "${datasource}"
        for panel in panels
        if panel["type"] != "row"
    )
    assert {"At-risk customers", "Customer churn rate by plan", "MRR churn"} <= {
        panel["title"] for panel in panels
    }


def warning_alert(customer: str, kind: str) -> dict[str, Any]:
    return {
        "labels": {
            "alertname": "ChurnWarning",
            "team": "customer-success",
            "customer": customer,
            "rule": f"{kind}-rule",
            "kind": kind,
            "severity": "warning",
        },
        "annotations": {
            "summary": f"Customer {customer} at risk of churn",
            "evidence": f"evidence for {customer}",
            "action": f"call {customer}",
        },
    }


def test_ingestion_silent_inhibits_only_absence_warnings(tmp_path: Path) -> None:
    silent = {
        "labels": {
            "alertname": "IngestionSilent",
            "team": "ops",
            "signal": "no_events",
        },
        "annotations": {"summary": "no events"},
    }
    warnings = [warning_alert(f"c-{kind}", kind) for kind in ABSENCE_KINDS]
    warnings.append(warning_alert("c-negative", "negative_feedback"))

    with (
        promstack.WebhookReceiver() as hook,
        promstack.start_alertmanager(tmp_path, hook.url) as alertmanager,
    ):
        alertmanager.post_alerts([silent, *warnings])
        ops = hook.wait_for(lambda post: post.path == "/ops")
        notified = hook.wait_for(lambda post: post.path == "/hook")
        states = promstack.wait_for(
            lambda: _suppressed_customers(alertmanager),
            what="absence warnings to be inhibited",
        )

    assert ops.body["commonLabels"]["alertname"] == "IngestionSilent"
    assert notified.body["groupLabels"] == {"customer": "c-negative"}
    assert states == {f"c-{kind}" for kind in ABSENCE_KINDS}


def _suppressed_customers(alertmanager: Any) -> set[str] | None:
    alerts = alertmanager.alerts(alertname="ChurnWarning")
    suppressed = {
        alert["labels"]["customer"]
        for alert in alerts
        if alert["status"]["inhibitedBy"]
    }
    return suppressed if len(suppressed) == len(ABSENCE_KINDS) else None


def test_customer_warning_reaches_webhook_slack_and_email(tmp_path: Path) -> None:
    """One ChurnWarning renders the templates into each customer-success channel."""
    alert = warning_alert("c-42", "negative_feedback")
    alert["annotations"]["evidence"] = "NPS 2 on 2024-05-03, CSAT unsatisfied twice"

    with (
        promstack.WebhookReceiver() as hook,
        promstack.SmtpSink() as smtp,
        promstack.start_alertmanager(
            tmp_path, hook.url, smtp_smarthost=smtp.smarthost
        ) as alertmanager,
    ):
        alertmanager.post_alerts([alert])
        webhook = hook.wait_for(lambda post: post.path == "/hook")
        slack = hook.wait_for(lambda post: post.path == "/slack")
        mail = smtp.wait_for(lambda message: "c-42" in message["Subject"])

    assert webhook.body["groupLabels"] == {"customer": "c-42"}
    assert webhook.body["alerts"][0]["annotations"]["action"] == "call c-42"
    attachment = slack.body["attachments"][0]
    assert slack.body["channel"] == "#customer-success"
    assert attachment["title"] == "[FIRING:1] Churn risk: customer c-42"
    assert "Evidence: NPS 2 on 2024-05-03, CSAT unsatisfied twice" in attachment["text"]
    assert "Suggested action: call c-42" in attachment["text"]
    assert mail["To"] == "customer-success@example.com"
    assert "call c-42" in mail.get_body(("plain",)).get_content()


@pytest.fixture
def fake_exporter() -> Iterator[tuple[str, CollectorRegistry]]:
    """Serve a registry with some of the monitor's metrics on a free local port."""
    registry = CollectorRegistry()
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    yield f"127.0.0.1:{server.server_port}", registry
    server.shutdown()
    server.server_close()
    thread.join()


def test_exported_warning_becomes_notification(
    tmp_path: Path, fake_exporter: tuple[str, CollectorRegistry]
) -> None:
    """Scrape, record, alert with evidence, notify: the chain minus the monitor."""
    address, registry = fake_exporter
    at_start = Gauge(
        "churn_period_customers_at_start", "", ["period", "plan"], registry=registry
    )
    lost = Gauge(
        "churn_period_customers_lost", "", ["period", "plan"], registry=registry
    )
    labels = ["customer", "rule", "kind", "severity", "action", "evidence"]
    warning = Gauge("churn_customer_warning", "", labels, registry=registry)
    at_start.labels("current", "pro").set(200)
    lost.labels("current", "pro").set(14)
    evidence = "usage 12.0/day over last 7d vs 41.3/day baseline (-71%)"
    warning.labels(
        "c-7", "usage-drop", "declining_usage", "warning", "Book a call", evidence
    ).set(31)

    with (
        promstack.WebhookReceiver() as hook,
        promstack.start_alertmanager(tmp_path, hook.url) as alertmanager,
        promstack.start_prometheus(
            tmp_path,
            scrape_targets=[address],
            alertmanager=alertmanager.address,
            interval_s=1,
            for_override={"ChurnWarning": "2s"},
        ) as prometheus,
    ):
        rate = promstack.wait_for(
            lambda: prometheus.query(
                "period:churn_period_customers_lost_per_customers_at_start:percent"
            ),
            what="the churn rate to be recorded",
        )
        posted = hook.wait_for(lambda post: post.path == "/hook")

    assert float(rate[0]["value"][1]) == 7.0
    fired = posted.body["alerts"][0]
    assert fired["labels"]["customer"] == "c-7"
    assert "evidence" not in fired["labels"]
    assert fired["annotations"]["evidence"] == evidence
    assert fired["annotations"]["action"] == "Book a call"


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready") as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_observability_script_starts_and_stops_the_stack(tmp_path: Path) -> None:
    promstack.require_binary("prometheus")
    promstack.require_binary("prometheus-alertmanager")
    prom_port, am_port, monitor_port = (promstack.free_port() for _ in range(3))
    env = {
        **os.environ,
        "PROM_PORT": str(prom_port),
        "AM_PORT": str(am_port),
        "CHURN_MONITOR_TARGET": f"127.0.0.1:{monitor_port}",
        "CHURN_CACHE_DIR": str(tmp_path),
    }

    def script(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(OBSERVABILITY_SCRIPT), command],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )

    try:
        started = script("start")
        both_ready = _ready(prom_port) and _ready(am_port)
        config = (tmp_path / "observability" / "prometheus.yml").read_text()
    finally:
        stopped = script("stop")

    assert started.returncode == 0, started.stderr
    assert both_ready
    assert f"127.0.0.1:{monitor_port}" in config
    assert f"127.0.0.1:{am_port}" in config
    assert stopped.returncode == 0, stopped.stderr
    assert not _ready(prom_port)
    assert not _ready(am_port)
    assert not list((tmp_path / "observability").glob("*.pid"))


def test_observability_install_skips_when_installed() -> None:
    for name in ("prometheus", "promtool", "prometheus-alertmanager", "amtool"):
        promstack.require_binary(name)

    result = subprocess.run(
        ["bash", str(OBSERVABILITY_SCRIPT), "install"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0
    assert "already installed" in result.stderr
