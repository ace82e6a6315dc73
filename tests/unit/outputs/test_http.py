"""The exporter's HTTP endpoints on 127.0.0.1: probes, scrape formats, TLS, auth."""

from __future__ import annotations

import base64
import gzip
import os
import re
import shutil
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from monitor.errors import SettingsError
from monitor.outputs.http import parse_address
from monitor.outputs.metrics import MetricsExporter

ExporterFactory = Callable[..., MetricsExporter]
Response = tuple[int, dict[str, str], bytes]


def get(
    url: str,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> Response:
    """GET a URL; return status, headers and body, error statuses included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made with openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        reason = "openssl not found: install the Debian package openssl"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=churn-monitor test",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture
def serve(make_exporter: ExporterFactory) -> Callable[..., MetricsExporter]:
    """Start an exporter (no engines) with these settings; stopped after the test."""

    def start(**settings: Any) -> MetricsExporter:
        exporter = make_exporter(**settings)
        exporter.start()
        return exporter

    return start


def test_healthz_answers_ok(serve: Callable[..., MetricsExporter]) -> None:
    exporter = serve()

    status, _, body = get(f"{exporter.url}/healthz")

    assert status == 200
    assert body == b"ok\n"


def test_readyz_says_why_until_ready(serve: Callable[..., MetricsExporter]) -> None:
    exporter = serve()
    exporter.set_ready(False, "broker unreachable: 127.0.0.1:9092")
    before = get(f"{exporter.url}/readyz")

    exporter.set_ready(True)

    assert before[0] == 503
    assert before[2] == b"not ready: broker unreachable: 127.0.0.1:9092\n"
    assert get(f"{exporter.url}/readyz")[:3:2] == (200, b"ready\n")


def test_metrics_in_text_format(serve: Callable[..., MetricsExporter]) -> None:
    exporter = serve()
    exporter.record_consumed("usage", 3)

    status, headers, body = get(f"{exporter.url}/metrics")

    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b'churn_events_consumed_total{type="usage"} 3.0' in body


def test_metrics_gzipped_text_when_prometheus_asks(
    serve: Callable[..., MetricsExporter],
) -> None:
    """Prometheus prefers OpenMetrics but reads the text format it is given."""
    exporter = serve()
    accept = {
        "Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        "Accept-Encoding": "gzip",
    }

    status, headers, body = get(f"{exporter.url}/metrics", accept)

    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert headers["Content-Encoding"] == "gzip"
    text = gzip.decompress(body).decode()
    assert "# TYPE churn_events_consumed_total counter" in text


def test_unknown_path_not_found(serve: Callable[..., MetricsExporter]) -> None:
    exporter = serve()

    assert get(f"{exporter.url}/nope")[0] == 404


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        (basic("prometheus", "wrong"), 401),
        (basic("someone", "s3cret-pass"), 401),
        ({"Authorization": "Basic !!not-base64!!"}, 401),
        ({"Authorization": "Bearer s3cret-pass"}, 401),
        (basic("prometheus", "s3cret-pass"), 200),
    ],
)
def test_basic_auth_guards_metrics(
    serve: Callable[..., MetricsExporter], headers: dict[str, str], status: int
) -> None:
    exporter = serve(
        basic_auth_username="prometheus", basic_auth_password="s3cret-pass"
    )

    answer = get(f"{exporter.url}/metrics", headers)

    assert answer[0] == status
    if status == 401:
        assert answer[1]["WWW-Authenticate"].startswith('Basic realm="churn-monitor"')


def test_basic_auth_leaves_probes_open(serve: Callable[..., MetricsExporter]) -> None:
    exporter = serve(basic_auth_username="prometheus", basic_auth_password="pw")

    assert get(f"{exporter.url}/healthz")[0] == 200
    assert get(f"{exporter.url}/readyz")[0] == 503


def test_tls_serves_metrics_to_a_verifying_client(
    serve: Callable[..., MetricsExporter], certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    exporter = serve(
        tls_certfile=str(cert),
        tls_keyfile=str(key),
        basic_auth_username="prometheus",
        basic_auth_password="pw",
    )
    client = ssl.create_default_context(cafile=str(cert))

    status, _, body = get(
        f"{exporter.url}/metrics", basic("prometheus", "pw"), context=client
    )

    assert exporter.url is not None
    assert exporter.url.startswith("https://127.0.0.1:")
    assert status == 200
    assert b"churn_ready 0.0" in body


def test_tls_refuses_plain_http(
    serve: Callable[..., MetricsExporter], certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    exporter = serve(tls_certfile=str(cert), tls_keyfile=str(key))
    assert exporter.url is not None
    plain = exporter.url.replace("https://", "http://")

    with pytest.raises((urllib.error.URLError, ConnectionError)):
        get(f"{plain}/healthz")
    # The endpoint keeps serving TLS clients after a bad one.
    client = ssl.create_default_context(cafile=str(cert))
    assert get(f"{exporter.url}/healthz", context=client)[0] == 200


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"tls_certfile": "cert.pem"}, "metrics.tls_keyfile"),
        ({"tls_keyfile": "key.pem"}, "metrics.tls_certfile"),
        (
            {"tls_certfile": "/nonexistent.pem", "tls_keyfile": "/nonexistent.key"},
            "metrics.tls_certfile",
        ),
        ({"basic_auth_username": "prometheus"}, "metrics.basic_auth_password"),
        ({"basic_auth_password": "pw"}, "metrics.basic_auth_username"),
        ({"address": "localhost"}, "metrics.address"),
        ({"address": "127.0.0.1:99999"}, "metrics.address"),
    ],
)
def test_bad_endpoint_settings_refused(
    serve: Callable[..., MetricsExporter], settings: dict[str, str], field: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(f"setting '{field}'")):
        serve(**settings)


def test_address_in_use_refused(serve: Callable[..., MetricsExporter]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(SettingsError, match=r"cannot listen on 127\.0\.0\.1"):
            serve(address=f"127.0.0.1:{port}")


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:9108", ("127.0.0.1", 9108)),
        (":9108", ("0.0.0.0", 9108)),
        ("[::1]:9108", ("::1", 9108)),
    ],
)
def test_parse_address(address: str, expected: tuple[str, int]) -> None:
    assert parse_address(address) == expected


def test_disabled_endpoint_not_started(serve: Callable[..., MetricsExporter]) -> None:
    exporter = serve(enabled=False)

    assert exporter.url is None


def test_stop_closes_the_port(serve: Callable[..., MetricsExporter]) -> None:
    exporter = serve()
    url = exporter.url
    assert get(f"{url}/healthz")[0] == 200

    exporter.stop()

    with pytest.raises(urllib.error.URLError):
        get(f"{url}/healthz")
