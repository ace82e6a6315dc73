"""Run real Prometheus and Alertmanager processes, with local receivers, for tests.

Each tool runs as a child process on a free 127.0.0.1 port with a config derived from
deploy/, is waited on until ready and is stopped on exit; nothing here mocks either
tool. Past 500 lines: the two processes, their config rewriting and the webhook and
SMTP receivers they deliver to are one toolkit that end-to-end tests import whole;
split the receivers out if it grows further.

    with WebhookReceiver() as hook, start_alertmanager(tmp, hook.url) as am,
         start_prometheus(tmp, scrape_targets=[addr], alertmanager=am.address,
                          interval_s=1, for_override="1s") as prom:
        hook.wait_for(lambda post: post.path == "/hook")
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Generic, Self, TypeVar, cast

import pytest
import yaml

__all__ = [
    "ALERTMANAGER_CONFIG",
    "CONTRACT_METRICS",
    "DEPLOY_DIR",
    "PROMETHEUS_CONFIG",
    "RULE_FILES",
    "AlertmanagerProcess",
    "PrometheusProcess",
    "ReceivedPost",
    "SmtpSink",
    "WebhookReceiver",
    "free_port",
    "render_alertmanager_config",
    "render_prometheus_config",
    "require_binary",
    "rewrite_rule_files",
    "start_alertmanager",
    "start_prometheus",
    "wait_for",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"
PROMETHEUS_CONFIG = DEPLOY_DIR / "prometheus" / "prometheus.yml"
RULE_FILES = tuple(sorted((DEPLOY_DIR / "prometheus" / "rules").glob("*.yml")))
ALERTMANAGER_CONFIG = DEPLOY_DIR / "alertmanager" / "alertmanager.yml"
MONITOR_JOB = "churn-monitor"

# The exporter's metric names that deploy/ (rules, alerts, dashboard) relies on;
# tests/unit/outputs checks that the exporter serves every one of them.
CONTRACT_METRICS = frozenset(
    {
        "churn_period_customers_at_start",
        "churn_period_customers_lost",
        "churn_period_mrr_at_start",
        "churn_period_mrr_lost",
        "churn_period_mrr_contraction",
        "churn_feedback_responses",
        "churn_customers_tracked",
        "churn_customers_at_risk",
        "churn_customers_warned",
        "churn_customer_health_score_bucket",
        "churn_customer_health_score_sum",
        "churn_customer_health_score_count",
        "churn_customer_warning",
        "churn_absence_guard_active",
        "churn_events_consumed_total",
        "churn_events_rejected_total",
        "churn_warnings_opened_total",
        "churn_warnings_resolved_total",
        "churn_consumer_lag_messages",
        "churn_event_time_lag_seconds",
        "churn_processing_latency_seconds_bucket",
        "churn_processing_latency_seconds_sum",
        "churn_processing_latency_seconds_count",
        "churn_checkpoint_age_seconds",
        "churn_rules_loaded",
        "churn_rule_file_errors",
        "churn_ready",
    }
)

_READY_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0
_T = TypeVar("_T")


def require_binary(name: str) -> str:
    """Return the path of a tool; fail under CI=true, else skip, when it is missing."""
    path = shutil.which(name) or shutil.which(name, path="/usr/bin")
    if path is not None:
        return path

    reason = (
        f"{name} not found: run 'deploy/observability.sh install' (Debian packages "
        "prometheus and prometheus-alertmanager)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    probe: Callable[[], _T | None],
    *,
    what: str,
    timeout_s: float = 30.0,
    interval_s: float = 0.2,
) -> _T:
    """Call probe until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)


def _request_json(
    url: str, payload: Any = None, timeout_s: float = 5.0
) -> tuple[int, Any]:
    """Send GET (or POST with a JSON payload); return status and decoded JSON body."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            status, body = exc.code, exc.read()

    return status, json.loads(body) if body.strip() else None


def _is_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError as exc:
        exc.close()
        return False
    except OSError:
        return False


def _duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


class _ChildProcess:
    """A tool running as a child process, logging to a file in its work directory."""

    name = "process"

    def __init__(self, argv: Sequence[str], workdir: Path, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self.url = f"http://{self.address}"
        self.log_path = workdir / f"{self.name}.log"
        self._log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            list(argv), stdout=self._log, stderr=subprocess.STDOUT, cwd=workdir
        )

    def wait_ready(self) -> None:
        """Block until /-/ready answers 200; raise with the log tail if it died."""
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while not _is_ready(self.url):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.name} on {self.address} not ready:\n{tail}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Terminate the process (kill after a grace period) and close its log."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class PrometheusProcess(_ChildProcess):
    """A running Prometheus with query helpers over its HTTP API."""

    name = "prometheus"

    def query_raw(self, expr: str) -> dict[str, Any]:
        """Run an instant query; return the API answer, error or not."""
        query = urllib.parse.urlencode({"query": expr})
        _, body = _request_json(f"{self.url}/api/v1/query?{query}")
        return cast(dict[str, Any], body)

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Run an instant query; return its result vector, raising on an API error."""
        answer = self.query_raw(expr)
        if answer.get("status") != "success":
            raise AssertionError(f"query {expr!r} failed: {answer}")
        return cast(list[dict[str, Any]], answer["data"]["result"])

    def alerts(self, state: str | None = None) -> list[dict[str, Any]]:
        """Return the alerts Prometheus holds, optionally only 'pending' or 'firing'."""
        _, body = _request_json(f"{self.url}/api/v1/alerts")
        alerts: list[dict[str, Any]] = body["data"]["alerts"]
        return [alert for alert in alerts if state in (None, alert["state"])]


class AlertmanagerProcess(_ChildProcess):
    """A running Alertmanager with helpers over its v2 API."""

    name = "alertmanager"

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """Post alerts as Prometheus would (labels, annotations, startsAt...)."""
        status, body = _request_json(f"{self.url}/api/v2/alerts", list(alerts))
        if status != 200:
            raise AssertionError(f"alertmanager refused alerts: {status} {body}")

    def alerts(self, **labels: str) -> list[dict[str, Any]]:
        """Return the alerts held, active or not, whose labels include these."""
        _, body = _request_json(f"{self.url}/api/v2/alerts")
        return [alert for alert in body if labels.items() <= alert["labels"].items()]


def rewrite_rule_files(
    rule_files: Sequence[Path],
    dest_dir: Path,
    for_override: str | Mapping[str, str] | None = None,
) -> list[Path]:
    """Copy rule files, replacing the `for:` of alerting rules.

    Args:
        for_override: a duration for every alert ("0s" removes the wait), or a
            mapping from alert name to duration for some alerts only.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for index, source in enumerate(rule_files):
        document = yaml.safe_load(source.read_text())
        for group in document.get("groups", []):
            for rule in group.get("rules", []):
                _override_for(rule, for_override)

        target = dest_dir / f"{index:02d}-{source.name}"
        target.write_text(yaml.safe_dump(document, sort_keys=False))
        written.append(target)

    return written


def _override_for(
    rule: dict[str, Any], for_override: str | Mapping[str, str] | None
) -> None:
    if "alert" not in rule or for_override is None:
        return
    if isinstance(for_override, str):
        rule["for"] = for_override
    elif rule["alert"] in for_override:
        rule["for"] = for_override[rule["alert"]]


def render_prometheus_config(
    *,
    scrape_targets: Sequence[str],
    rule_files: Sequence[Path],
    alertmanager: str | None,
    interval_s: float | None = None,
) -> dict[str, Any]:
    """Return the repo's Prometheus config pointed at the given addresses.

    Args:
        scrape_targets: host:port of monitor exporters for the churn-monitor job.
        rule_files: absolute paths of rule files to load.
        alertmanager: host:port of an Alertmanager, or None to send alerts nowhere.
        interval_s: scrape and evaluation interval for fast tests; None keeps 15s.
    """
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["rule_files"] = [str(path) for path in rule_files]
    if alertmanager is None:
        config.pop("alerting", None)
    else:
        targets = [{"targets": [alertmanager]}]
        config["alerting"] = {"alertmanagers": [{"static_configs": targets}]}

    job = next(c for c in config["scrape_configs"] if c["job_name"] == MONITOR_JOB)
    job["static_configs"] = [{"targets": list(scrape_targets)}]
    if interval_s is not None:
        interval = _duration(interval_s)
        config["global"].update(
            scrape_interval=interval,
            scrape_timeout=interval,
            evaluation_interval=interval,
        )
        for scrape in config["scrape_configs"]:
            scrape["scrape_interval"] = interval

    return config


def start_prometheus(
    workdir: Path,
    *,
    scrape_targets: Sequence[str] = (),
    rule_files: Sequence[Path] = RULE_FILES,
    alertmanager: str | None = None,
    interval_s: float | None = None,
    for_override: str | Mapping[str, str] | None = None,
) -> PrometheusProcess:
    """Start Prometheus on a free port with the repo's config and rules; wait ready.

    With interval_s set, alerts are also re-sent to Alertmanager at that interval
    rather than every minute. The caller stops it (or uses it as a context manager).
    """
    binary = require_binary("prometheus")
    workdir = Path(tempfile.mkdtemp(prefix="prometheus-", dir=workdir))
    rules = rewrite_rule_files(rule_files, workdir / "rules", for_override)
    config = render_prometheus_config(
        scrape_targets=scrape_targets,
        rule_files=rules,
        alertmanager=alertmanager,
        interval_s=interval_s,
    )
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    port = free_port()
    argv = [
        binary,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    if interval_s is not None:
        argv.append(f"--rules.alert.resend-delay={_duration(interval_s)}")
    process = PrometheusProcess(argv, workdir, port)
    process.wait_ready()

    return process


def render_alertmanager_config(
    *, receiver_url: str | None, smtp_smarthost: str | None = None, fast: bool = True
) -> dict[str, Any]:
    """Return the repo's Alertmanager config pointed at test receivers.

    Args:
        receiver_url: base URL (http://127.0.0.1:PORT) that replaces the host of every
            webhook and Slack URL, keeping its path (/hook, /ops, /slack...).
        smtp_smarthost: host:port of an SMTP sink; None drops the email configs,
            which could only fail and retry here.
        fast: group_wait and group_interval of 1s on every route.
    """
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    templates = config.get("templates", [])
    config["templates"] = [str(ALERTMANAGER_CONFIG.parent / t) for t in templates]
    for receiver in config["receivers"]:
        _point_receiver(receiver, receiver_url, smtp_smarthost)
    if smtp_smarthost is not None:
        config["global"]["smtp_smarthost"] = smtp_smarthost
    if fast:
        _speed_up(config["route"])

    return config


def _point_receiver(
    receiver: dict[str, Any], receiver_url: str | None, smtp_smarthost: str | None
) -> None:
    # The path stays, so a test can tell /hook, /leadership, /ops and /slack apart.
    if receiver_url is not None:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = receiver_url + urllib.parse.urlsplit(webhook["url"]).path
        for slack in receiver.get("slack_configs", []):
            slack["api_url"] = (
                receiver_url + urllib.parse.urlsplit(slack["api_url"]).path
            )
    if smtp_smarthost is None:
        receiver.pop("email_configs", None)


def _speed_up(route: dict[str, Any]) -> None:
    route["group_wait"] = "1s"
    route["group_interval"] = "1s"
    for child in route.get("routes", []):
        _speed_up(child)


def start_alertmanager(
    workdir: Path,
    receiver_url: str | None,
    *,
    smtp_smarthost: str | None = None,
    fast: bool = True,
    config: Mapping[str, Any] | None = None,
) -> AlertmanagerProcess:
    """Start Alertmanager on a free port, gossip off, with the repo config; wait ready.

    Args:
        receiver_url: see render_alertmanager_config.
        config: a whole config to use instead of rendering the repo's.
    """
    binary = require_binary("prometheus-alertmanager")
    workdir = Path(tempfile.mkdtemp(prefix="alertmanager-", dir=workdir))
    if config is None:
        config = render_alertmanager_config(
            receiver_url=receiver_url, smtp_smarthost=smtp_smarthost, fast=fast
        )
    config_path = workdir / "alertmanager.yml"
    config_path.write_text(yaml.safe_dump(dict(config), sort_keys=False))

    port = free_port()
    argv = [
        binary,
        f"--config.file={config_path}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--web.external-url=http://127.0.0.1:{port}/",
        "--cluster.listen-address=",
    ]
    process = AlertmanagerProcess(argv, workdir, port)
    process.wait_ready()

    return process


@dataclass(frozen=True, slots=True)
class ReceivedPost:
    """One request body a receiver got: JSON decoded, else the raw text."""

    path: str
    body: Any


class _RecordingServer(Generic[_T]):
    """A threaded server on 127.0.0.1 whose handlers record what they receive."""

    def __init__(self, server: socketserver.TCPServer) -> None:
        self._items: list[_T] = []
        self._lock = threading.Lock()
        self._server = server
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self.port: int = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)

    def record(self, item: _T) -> None:
        with self._lock:
            self._items.append(item)

    @property
    def received(self) -> list[_T]:
        """Everything received so far, oldest first."""
        with self._lock:
            return list(self._items)

    def wait_for(self, match: Callable[[_T], bool], timeout_s: float = 30.0) -> _T:
        """Return the first item that matches, waiting for it if need be."""
        return wait_for(
            lambda: next((item for item in self.received if match(item)), None),
            what=f"a matching item on 127.0.0.1:{self.port}",
            timeout_s=timeout_s,
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class WebhookReceiver(_RecordingServer[ReceivedPost]):
    """An HTTP server that records every POST and answers 200; `url` is its base."""

    def __init__(self) -> None:
        receiver = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length).decode(errors="replace")
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw
                receiver.record(ReceivedPost(self.path, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Keep request lines out of the test output."""

        super().__init__(ThreadingHTTPServer(("127.0.0.1", 0), _Handler))
        self.url = f"http://127.0.0.1:{self.port}"


class SmtpSink(_RecordingServer[EmailMessage]):
    """A minimal SMTP server keeping every message; `smarthost` is its host:port."""

    def __init__(self) -> None:
        sink = self

        class _Session(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self._reply("220 churn-monitor test sink")
                while line := self.rfile.readline():
                    verb = line[:4].upper()
                    if verb == b"DATA":
                        self._reply("354 end with <CRLF>.<CRLF>")
                        sink.record(self._read_message())
                        self._reply("250 queued")
                    elif verb == b"QUIT":
                        self._reply("221 bye")
                        return
                    else:
                        self._reply("250 ok")

            def _read_message(self) -> EmailMessage:
                lines = []
                while (line := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                    lines.append(line[1:] if line.startswith(b"..") else line)
                message = email.message_from_bytes(
                    b"".join(lines), policy=email.policy.default
                )
                return cast(EmailMessage, message)

            def _reply(self, text: str) -> None:
                self.wfile.write(text.encode() + b"\r\n")

        super().__init__(socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Session))
        self.smarthost = f"127.0.0.1:{self.port}"
