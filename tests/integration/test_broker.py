"""The broker the integration tests get stores, serves and keeps records."""

import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka_fixture import broker_control

pytestmark = pytest.mark.integration

_RECORD_COUNT = 100
_PARTITIONS = 2
_CONSUME_TIMEOUT_MS = 20_000

T = TypeVar("T")


@pytest.fixture
def topic(kafka_bootstrap: str) -> Iterator[str]:
    """A topic of its own for one test, deleted afterwards."""
    name = f"churn-test-{uuid.uuid4().hex[:12]}"
    new_topic = NewTopic(name, num_partitions=_PARTITIONS, replication_factor=1)
    _admin_call(kafka_bootstrap, lambda admin: admin.create_topics([new_topic]))

    yield name

    # A fresh client: the test may have restarted the broker under the old one.
    _admin_call(kafka_bootstrap, lambda admin: admin.delete_topics([name]))


def _admin_call(bootstrap: str, call: Callable[[KafkaAdminClient], T]) -> T:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return call(admin)
    finally:
        admin.close()


def _produce(bootstrap: str, topic: str, count: int, batch: str = "a") -> list[bytes]:
    values = [f"{batch}-{index:03d}".encode() for index in range(count)]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for index, value in enumerate(values):
            producer.send(topic, key=f"customer-{index % 7}".encode(), value=value)
        producer.flush(timeout=10)
    finally:
        producer.close()

    return values


def _consume(bootstrap: str, topic: str, group: str, count: int) -> list[bytes]:
    """Read ``count`` records as ``group`` from the committed offsets on."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=_CONSUME_TIMEOUT_MS,
    )
    received: list[bytes] = []
    try:
        for record in consumer:
            received.append(record.value)
            if len(received) == count:
                break
        consumer.commit()
    finally:
        consumer.close()

    return received


def _committed_total(bootstrap: str, topic: str, group: str) -> int:
    offsets = _admin_call(bootstrap, lambda admin: admin.list_group_offsets(group))
    return sum(
        meta.offset
        for partition, meta in offsets[group].items()
        if isinstance(partition, TopicPartition) and partition.topic == topic
    )


def test_broker_hundred_records_consumed_back(kafka_bootstrap: str, topic: str) -> None:
    sent = _produce(kafka_bootstrap, topic, _RECORD_COUNT)
    received = _consume(kafka_bootstrap, topic, f"{topic}-group", _RECORD_COUNT)

    assert sorted(received) == sent
    assert _committed_total(kafka_bootstrap, topic, f"{topic}-group") == _RECORD_COUNT


def test_broker_restart_keeps_topic_and_offsets(
    kafka_bootstrap: str, topic: str
) -> None:
    """A local broker stopped and started again still has records and offsets."""
    control = broker_control(kafka_bootstrap)
    group = f"{topic}-group"
    _produce(kafka_bootstrap, topic, 10, batch="before")
    _consume(kafka_bootstrap, topic, group, 10)

    control.stop()
    control.start()
    later = _produce(kafka_bootstrap, topic, 5, batch="after")
    resumed = _consume(kafka_bootstrap, topic, group, 5)

    assert sorted(resumed) == later
    assert _committed_total(kafka_bootstrap, topic, group) == 15
