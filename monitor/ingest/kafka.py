"""Kafka plumbing: client settings, topic set-up, changelog reading, error mapping.

The only module (with ``consumer``) that talks kafka-python; its errors leave as
``MonitorError`` subclasses, always chained.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka import errors as kafka_errors

from monitor.errors import BrokerUnavailableError, MonitorError, SourceError
from monitor.settings import KafkaSettings
from monitor.state.changelog import ChangelogReader, Checkpoint

__all__ = [
    "KAFKA_ERRORS",
    "client_config",
    "delete_changelog_before",
    "discard_producer",
    "end_transaction",
    "ensure_topics",
    "read_changelog",
    "send_offsets",
    "translate",
]

logger = logging.getLogger(__name__)

# Every kafka-python error class the monitor catches, and what it becomes.
KAFKA_ERRORS: dict[type[Exception], type[MonitorError]] = {
    kafka_errors.KafkaTimeoutError: BrokerUnavailableError,
    kafka_errors.KafkaConnectionError: BrokerUnavailableError,
    kafka_errors.NodeNotReadyError: BrokerUnavailableError,
    kafka_errors.RequestTimedOutError: BrokerUnavailableError,
    kafka_errors.CommitFailedError: SourceError,
    kafka_errors.ProducerFencedError: SourceError,
    kafka_errors.InvalidProducerEpochError: SourceError,
    kafka_errors.IllegalStateError: SourceError,
    kafka_errors.KafkaConfigurationError: SourceError,
    kafka_errors.KafkaError: SourceError,
}


def translate(exc: Exception, bootstrap: str) -> MonitorError:
    """Return the monitor's error for a kafka-python error (most specific class)."""
    for cls in type(exc).__mro__:
        target = KAFKA_ERRORS.get(cls)
        if target is BrokerUnavailableError:
            return BrokerUnavailableError(bootstrap, f"{type(exc).__name__}: {exc}")
        if target is not None:
            return target(f"kafka: {type(exc).__name__}: {exc}")
    return SourceError(f"kafka: unexpected {type(exc).__name__}: {exc}")


def client_config(settings: KafkaSettings) -> dict[str, Any]:
    """Return the connection and security options every client shares."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
    }
    if settings.sasl_mechanism:
        config["sasl_mechanism"] = settings.sasl_mechanism
        config["sasl_plain_username"] = settings.sasl_username
        config["sasl_plain_password"] = settings.sasl_password
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        config["ssl_cafile"] = settings.ssl_cafile
        config["ssl_certfile"] = settings.ssl_certfile
        config["ssl_keyfile"] = settings.ssl_keyfile
        config["ssl_check_hostname"] = settings.ssl_check_hostname
    return config


def end_transaction(producer: KafkaProducer, commit: bool, timeout_s: float) -> None:
    """Commit or abort the open transaction, waiting at most ``timeout_s``.

    kafka-python's own ``commit_transaction`` and ``abort_transaction`` wait
    without a limit, and a transaction the coordinator aborted during a long
    broker outage never completes; this does their two steps with a bounded wait.

    Raises:
        KafkaTimeoutError: not done in time; the producer must then be closed and
            a new one made, whose ``init_transactions`` settles the old transaction.
    """
    manager = _transactions(producer)
    result = manager.begin_commit() if commit else manager.begin_abort()
    _wait(producer, result, "commit" if commit else "abort", timeout_s)


def send_offsets(
    producer: KafkaProducer, offsets: dict[Any, Any], group: Any, timeout_s: float
) -> None:
    """Add consumed offsets to the open transaction, waiting at most ``timeout_s``.

    The bounded twin of kafka-python's ``send_offsets_to_transaction``, which
    waits for the group coordinator without a limit.
    """
    result = _transactions(producer).send_offsets_to_transaction(offsets, group)
    _wait(producer, result, "offsets", timeout_s)


def _transactions(producer: KafkaProducer) -> Any:
    manager = producer._transaction_manager
    if manager is None:
        raise kafka_errors.IllegalStateError("the producer has no transactions")
    return manager


def _wait(producer: KafkaProducer, result: Any, step: str, timeout_s: float) -> None:
    producer._sender.wakeup()
    if not result.wait(timeout_ms=timeout_s * 1000):
        raise kafka_errors.KafkaTimeoutError(
            f"transaction {step} not done within {timeout_s:.0f}s"
        )


def discard_producer(producer: KafkaProducer, timeout_s: float = 1.0) -> None:
    """Close a producer whose transaction cannot end, dropping what it still holds.

    ``close`` flushes first, and a flush that cannot finish (the broker away, the
    transaction stuck committing) raises before anything is closed; the sender
    thread is then stopped without sending, so no thread or socket is left behind.
    Nothing of that transaction is lost: it never committed, and the next
    producer's ``init_transactions`` with the same id aborts it.
    """
    try:
        producer.close(timeout=timeout_s)
    except kafka_errors.KafkaError:
        sender = producer._sender
        if sender is not None:
            sender.force_close()
            sender.join(timeout_s)


def ensure_topics(settings: KafkaSettings) -> None:
    """Create the monitor's topics that do not exist yet.

    Warnings, dead letters and the changelog are co-partitioned with the input:
    partition p of each belongs to the task of input partition p.
    """
    wanted: dict[str, dict[str, Any]] = {
        topic: {"num_partitions": settings.partitions} for topic in settings.topics
    }
    wanted[settings.warnings_topic] = {"num_partitions": settings.partitions}
    wanted[settings.dead_letter_topic] = {"num_partitions": settings.partitions}
    # Kept until the monitor deletes what a newer snapshot replaces.
    wanted[settings.changelog_topic] = {
        "num_partitions": settings.partitions,
        "configs": {
            "cleanup.policy": "delete",
            "retention.ms": "-1",
            "retention.bytes": "-1",
        },
    }
    wanted[settings.releases_topic] = {"num_partitions": 1}
    try:
        admin = KafkaAdminClient(**client_config(settings))
        try:
            missing = {
                t: o for t, o in wanted.items() if t not in set(admin.list_topics())
            }
            for options in missing.values():
                options["replication_factor"] = settings.replication_factor
            if missing:
                admin.create_topics(missing, raise_errors=False, wait_for_metadata=True)
                logger.info("topics created: topics=%s", sorted(missing))
        finally:
            admin.close()
    except kafka_errors.KafkaError as exc:
        raise translate(exc, settings.bootstrap_servers) from exc


def read_changelog(
    settings: KafkaSettings, partition: int, timeout_s: float = 60.0
) -> Checkpoint | None:
    """Rebuild a task's checkpoint from its changelog partition (committed only)."""
    tp = TopicPartition(settings.changelog_topic, partition)
    try:
        # A snapshot may delete the records being read; from the earliest left,
        # the snapshot resets what was read before it.
        consumer = KafkaConsumer(
            **client_config(settings),
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        try:
            return _read_to_end(consumer, tp, timeout_s)
        finally:
            consumer.close()
    except kafka_errors.KafkaError as exc:
        raise translate(exc, settings.bootstrap_servers) from exc


def _read_to_end(
    consumer: KafkaConsumer, tp: TopicPartition, timeout_s: float
) -> Checkpoint | None:
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    end = consumer.end_offsets([tp])[tp]
    reader = ChangelogReader()
    deadline = time.monotonic() + timeout_s
    # With read_committed, the position stops at the last stable offset: an open
    # transaction of a dead producer holds it until the broker aborts it.
    while consumer.position(tp) < end:
        if time.monotonic() > deadline:
            raise SourceError(
                f"changelog {tp.topic}[{tp.partition}] not read within {timeout_s}s"
            )
        for record in consumer.poll(timeout_ms=500).get(tp, ()):
            reader.add(record.key, record.value, record.headers)
    return reader.checkpoint()


def delete_changelog_before(
    admin: KafkaAdminClient, settings: KafkaSettings, partition: int, offset: int
) -> None:
    """Delete a changelog partition's records older than ``offset`` (a snapshot's)."""
    try:
        admin.delete_records(
            {TopicPartition(settings.changelog_topic, partition): offset}
        )
    except kafka_errors.KafkaError as exc:
        raise translate(exc, settings.bootstrap_servers) from exc
