"""Find a real Kafka broker for integration tests, or say how to get one.

``resolve_kafka_bootstrap`` tries, in order:

1. ``KAFKA_BOOTSTRAP_SERVERS``: the broker there must answer, or tests fail.
2. A Docker engine that answers: testcontainers runs a KRaft broker for the
   session and removes it afterwards.
3. Nothing: under ``CI=true`` the tests fail, never skip; elsewhere they skip
   with the commands that start the local broker of ``deploy/kafka/broker.sh``.

``broker_control`` stops and starts that local broker for outage tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

# kafka-python 3.0.12 loads its protocol schemas with importlib.resources'
# read_text and open_text, deprecated since Python 3.11, while its modules
# import; with filterwarnings=error that import would fail. The warnings only
# come at import time, so later imports of kafka are quiet.
with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message="(read|open)_text is deprecated", category=DeprecationWarning
    )
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

__all__ = [
    "BROKER_SCRIPT",
    "BrokerControl",
    "broker_control",
    "resolve_kafka_bootstrap",
]

BROKER_SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "broker.sh"

# testcontainers' KafkaContainer drives Confluent's image; 7.9 carries Kafka 3.9.
_CONTAINER_IMAGE = os.environ.get(
    "KAFKA_CONTAINER_IMAGE", "confluentinc/cp-kafka:7.9.0"
)
_PROBE_TIMEOUT_S = 10.0
_BROKER_SCRIPT_TIMEOUT_S = 180.0
_HOW_TO_START = (
    "start the local broker with `bash deploy/kafka/broker.sh start`, "
    "then `export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092`"
)


def _is_ci() -> bool:
    return os.environ.get("CI") == "true"


def _first_address(bootstrap: str) -> tuple[str, int]:
    """Split the first ``host:port`` of a bootstrap list."""
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        pytest.fail(
            f"KAFKA_BOOTSTRAP_SERVERS: expected host:port[,host:port...], "
            f"got {bootstrap!r}",
            pytrace=False,
        )

    return host.strip("[]"), int(port)


def _why_silent(bootstrap: str) -> str | None:
    """Return why the cluster at ``bootstrap`` does not answer, None if it does."""
    host, port = _first_address(bootstrap)
    try:
        with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc}"

    timeout_ms = int(_PROBE_TIMEOUT_S * 1000)
    admin = None
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="churn-monitor-tests-probe",
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=timeout_ms,
        )
        cluster = admin.describe_cluster()
    except KafkaError as exc:
        return f"no cluster description within {_PROBE_TIMEOUT_S:.0f}s: {exc!r}"
    finally:
        if admin is not None:
            admin.close()

    if not cluster.get("brokers"):
        return "the cluster lists no live broker"
    return None


def _docker_answers() -> bool:
    """Tell whether a Docker engine answers a ping (docker is imported lazily)."""
    if "DOCKER_HOST" not in os.environ and not Path("/var/run/docker.sock").exists():
        return False
    try:
        # Imported here: only users with a Docker engine need docker-py.
        import docker
    except ImportError:
        return False

    try:
        client = docker.from_env(timeout=5)
    except (docker.errors.DockerException, OSError):
        return False
    try:
        return bool(client.ping())
    except (docker.errors.DockerException, OSError):
        return False
    finally:
        client.close()


@contextmanager
def _container_bootstrap() -> Iterator[str]:
    """Run a throwaway KRaft broker in Docker and yield its bootstrap servers."""
    from testcontainers.community.kafka import KafkaContainer

    with KafkaContainer(_CONTAINER_IMAGE).with_kraft() as container:
        yield container.get_bootstrap_server()


@contextmanager
def resolve_kafka_bootstrap() -> Iterator[str]:
    """Yield the bootstrap servers of a Kafka broker that answers.

    Raises:
        pytest.fail.Exception: the configured broker does not answer, or no
            broker can be had and ``CI=true``.
        pytest.skip.Exception: no broker can be had outside CI.
    """
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if configured:
        reason = _why_silent(configured)
        if reason is not None:
            pytest.fail(
                f"KAFKA_BOOTSTRAP_SERVERS={configured} does not answer: {reason}; "
                f"{_HOW_TO_START}",
                pytrace=False,
            )
        yield configured
        return

    if _docker_answers():
        with _container_bootstrap() as bootstrap:
            yield bootstrap
        return

    message = (
        "no Kafka broker: KAFKA_BOOTSTRAP_SERVERS is not set and no Docker "
        f"engine answers; {_HOW_TO_START}"
    )
    if _is_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@dataclass(frozen=True, slots=True)
class BrokerControl:
    """Stop and start the local broker of ``deploy/kafka/broker.sh``.

    Stopping and starting keeps the data dir, so topics and committed offsets
    survive, as they would across a real broker outage.
    """

    port: int

    def stop(self) -> None:
        """Stop the broker gracefully; returns once the process has exited."""
        self._run("stop")

    def start(self) -> None:
        """Start the broker again; returns once it answers requests."""
        self._run("start")

    def _run(self, command: str) -> None:
        result = _run_broker_script(command, self.port)
        if result.returncode != 0:
            pytest.fail(
                f"broker.sh {command} (port {self.port}) exited "
                f"{result.returncode}:\n{result.stdout}{result.stderr}",
                pytrace=False,
            )


def _run_broker_script(command: str, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(BROKER_SCRIPT), command],
        env={**os.environ, "KAFKA_PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=_BROKER_SCRIPT_TIMEOUT_S,
        check=False,
    )


def broker_control(bootstrap: str) -> BrokerControl:
    """Return a control for the broker at ``bootstrap`` if broker.sh runs it.

    Raises:
        pytest.fail.Exception: under ``CI=true``, when that broker is not one
            that broker.sh started on this machine.
        pytest.skip.Exception: the same, outside CI.
    """
    host, port = _first_address(bootstrap)
    is_loopback = host in {"127.0.0.1", "localhost", "::1"}
    if is_loopback and _run_broker_script("pid", port).returncode == 0:
        return BrokerControl(port=port)

    message = (
        f"the broker at {bootstrap} was not started by deploy/kafka/broker.sh "
        "on this machine, so this test cannot stop and start it; "
        f"{_HOW_TO_START}"
    )
    if _is_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
