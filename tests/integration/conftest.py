"""Fixtures shared by the integration tests: a real Kafka broker."""

from collections.abc import Iterator

import pytest
from kafka_fixture import resolve_kafka_bootstrap


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a Kafka broker that answers (fails under CI=true)."""
    with resolve_kafka_bootstrap() as bootstrap:
        yield bootstrap
