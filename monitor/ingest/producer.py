"""Send a history to Kafka as producers should: keyed by customer, launches apart.

Usage events of one customer share a key, so they share a partition and keep their
order; launches go to the releases topic every instance reads. Lines that are not
valid events are sent as they are (the monitor dead-letters them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import orjson
from kafka import KafkaProducer
from kafka import errors as kafka_errors

from monitor.ingest.kafka import client_config, ensure_topics, translate
from monitor.settings import KafkaSettings

__all__ = ["produce_file", "route"]

logger = logging.getLogger(__name__)


def route(line: bytes, settings: KafkaSettings) -> tuple[str, bytes | None]:
    """Return the topic and key for one event line."""
    try:
        body = orjson.loads(line)
    except orjson.JSONDecodeError:
        return settings.topics[0], None
    if not isinstance(body, dict):
        return settings.topics[0], None
    if body.get("type") == "release":
        return settings.releases_topic, None
    customer = body.get("customer_id")
    key = customer.encode() if isinstance(customer, str) else None
    return settings.topics[0], key


def produce_file(
    lines: Iterable[bytes], settings: KafkaSettings, rate: float | None = None
) -> dict[str, int]:
    """Send every line; return how many went to each topic."""
    ensure_topics(settings)
    counts: dict[str, int] = {}
    try:
        producer = KafkaProducer(**client_config(settings), acks="all", linger_ms=20)
        start = time.monotonic()
        for n, line in enumerate(lines):
            topic, key = route(line, settings)
            producer.send(topic, value=line, key=key)
            counts[topic] = counts.get(topic, 0) + 1
            if rate:
                ahead = start + n / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        producer.flush()
        producer.close()
    except kafka_errors.KafkaError as exc:
        raise translate(exc, settings.bootstrap_servers) from exc
    return counts
