"""HTTP endpoints of the monitor: /metrics, /healthz and /readyz, optional TLS and auth.

Serves from daemon threads; reads the registry and a readiness callback, changes
nothing. Basic auth guards /metrics only: the probes carry no customer data and
orchestrators call them without credentials.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import logging
import socket
import socketserver
import ssl
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import gzip_accepted

from monitor.errors import SettingsError
from monitor.outputs.exposition import CONTENT_TYPE, encode_text
from monitor.settings import MetricsSettings

__all__ = ["MetricsServer", "parse_address"]

logger = logging.getLogger(__name__)

Readiness = Callable[[], tuple[bool, str]]

# An idle keep-alive connection or a stalled TLS handshake frees its thread after
# this long; Prometheus scrapes far more often than that on a kept connection.
_CONNECTION_TIMEOUT_S = 30.0
# Level 1 shrinks exposition text about 8x at a fraction of level 9's time.
_GZIP_LEVEL = 1
_STOP_TIMEOUT_S = 5.0
# How often the serving loop checks for shutdown: stop() waits up to this long.
_POLL_INTERVAL_S = 0.1


def parse_address(address: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port``; an empty host means every interface)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65_535:
        raise SettingsError(
            "settings", "metrics.address", f"expected host:port, got {address!r}"
        )
    host = host.removeprefix("[").removesuffix("]")

    return host or "0.0.0.0", int(port)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        registry: CollectorRegistry,
        readiness: Readiness,
        credentials: bytes | None,
    ) -> None:
        self.registry = registry
        self.readiness = readiness
        self.credentials = credentials
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can stall on a
        # machine with slow DNS; the name is never used here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that drops the connection or fails the TLS handshake is not
        # the monitor's fault; keep it out of stderr.
        logger.debug(
            "request failed: client=%s error=%r", client_address, sys.exc_info()[1]
        )


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = _CONNECTION_TIMEOUT_S
    server: _Server
    server_version = "churn-monitor"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        # The handshake runs here, in the connection's own thread, so a slow
        # client never holds up the accepting thread.
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/metrics":
            self._metrics()
        elif path == "/healthz":
            self._reply(200, b"ok\n")
        elif path == "/readyz":
            ready, reason = self.server.readiness()
            if ready:
                self._reply(200, b"ready\n")
            else:
                self._reply(503, f"not ready: {reason}\n".encode())
        elif path == "/":
            self._reply(200, b"churn-monitor: /metrics /healthz /readyz\n")
        else:
            self._reply(404, b"not found\n")

    def _metrics(self) -> None:
        if not self._authorised():
            self._reply(
                401,
                b"unauthorised\n",
                {"WWW-Authenticate": 'Basic realm="churn-monitor", charset="UTF-8"'},
            )
            return
        # Always the text format: Prometheus reads it whatever it asks first, and
        # the monitor uses nothing that only OpenMetrics can carry.
        body = encode_text(self.server.registry)
        headers = {}
        if gzip_accepted(self.headers.get("Accept-Encoding", "")):
            body = gzip.compress(body, compresslevel=_GZIP_LEVEL)
            headers["Content-Encoding"] = "gzip"

        self._reply(200, body, headers, CONTENT_TYPE)

    def _authorised(self) -> bool:
        expected = self.server.credentials
        if expected is None:
            return True
        scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except ValueError:
            return False

        return hmac.compare_digest(hashlib.sha256(given).digest(), expected)

    def _reply(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "text/plain; charset=utf-8",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            line = format % args
            logger.debug("http request: client=%s %s", self.client_address[0], line)


class MetricsServer:
    """Serve the registry and the probes on the configured address, in a thread.

    Raises:
        SettingsError: a bad address, a half-given TLS or auth pair, unreadable
            certificate files, or an address that cannot be listened on.
    """

    def __init__(
        self,
        settings: MetricsSettings,
        registry: CollectorRegistry,
        readiness: Readiness,
    ) -> None:
        self._host, self._port = parse_address(settings.address)
        self._tls = _tls_context(settings)
        self._credentials = _credentials(settings)
        self._registry = registry
        self._readiness = readiness
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        """host:port listened on; the bound port once started."""
        port = self._port if self._server is None else self._server.server_port
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self.address}"

    @property
    def is_running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        """Listen and serve from a daemon thread."""
        server_class = _Server6 if ":" in self._host else _Server
        try:
            server = server_class(
                (self._host, self._port),
                self._registry,
                self._readiness,
                self._credentials,
            )
        except OSError as exc:
            raise SettingsError(
                "settings",
                "metrics.address",
                f"cannot listen on {self.address}: {exc.strerror or exc}",
            ) from exc
        if self._tls is not None:
            server.socket = self._tls.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server

        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL_S},
            name="churn-metrics-http",
            daemon=True,
        )
        self._thread.start()
        logger.info(
            "metrics endpoint listening: url=%s tls=%s basic_auth=%s",
            self.url,
            self._tls is not None,
            self._credentials is not None,
        )

    def stop(self) -> None:
        """Stop accepting, close the socket and wait for the serving thread."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT_S)
        logger.info("metrics endpoint stopped: url=%s", self.url)
        self._server = None
        self._thread = None


def _tls_context(settings: MetricsSettings) -> ssl.SSLContext | None:
    certfile, keyfile = settings.tls_certfile, settings.tls_keyfile
    if certfile is None and keyfile is None:
        return None
    if certfile is None or keyfile is None:
        missing = "tls_certfile" if certfile is None else "tls_keyfile"
        raise SettingsError(
            "settings",
            f"metrics.{missing}",
            "TLS needs both a certificate and a key file",
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(
            "settings",
            "metrics.tls_certfile",
            f"cannot load certificate {certfile} with key {keyfile}: {exc}",
        ) from exc

    return context


def _credentials(settings: MetricsSettings) -> bytes | None:
    """Return the digest of ``user:password`` that requests must match."""
    username, password = settings.basic_auth_username, settings.basic_auth_password
    if username is None and password is None:
        return None
    if not username or not password:
        missing = "basic_auth_password" if username else "basic_auth_username"
        raise SettingsError(
            "settings",
            f"metrics.{missing}",
            "basic auth needs both a username and a password",
        )
    # Comparing digests keeps the comparison constant-time whatever the lengths.
    return hashlib.sha256(f"{username}:{password}".encode()).digest()
