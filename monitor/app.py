"""Run the monitor live: Kafka in, one engine per input partition, outputs out.

Each input partition is a task with its own engine. Every commit interval one Kafka
transaction carries the warnings and dead letters produced since the last one, the
changed customers' state (a compacted changelog, co-partitioned with the input)
and the input offsets, so a crash, a restart or a partition moving to another
instance never loses an event or applies one twice. A local SQLite store caches
the last committed state to restart fast. Over 300 lines: the loop, commits and
recovery share their state and read best together.
"""

from __future__ import annotations

import logging
import queue
import socket
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kafka import (
    ConsumerRebalanceListener,
    KafkaAdminClient,
    KafkaConsumer,
    KafkaProducer,
    TopicPartition,
)
from kafka import errors as kafka_errors
from kafka.structs import OffsetAndMetadata

from monitor.decode.decoder import decode
from monitor.decode.events import Rejected, RejectReason, ReleaseEvent
from monitor.engine.core import Engine
from monitor.engine.loader import RuleSet
from monitor.engine.snapshot import dump_customers, dump_engine, restore
from monitor.errors import MonitorError, SourceError
from monitor.ingest.deadletter import dead_letter
from monitor.ingest.kafka import (
    client_config,
    delete_changelog_before,
    discard_producer,
    end_transaction,
    ensure_topics,
    read_changelog,
    send_offsets,
    translate,
)
from monitor.outputs.publisher import warning_message
from monitor.runtime import engine_build
from monitor.settings import Settings
from monitor.state.changelog import (
    DELTA_KEY,
    ENGINE_KEY,
    FIRST_PART_HEADER,
    OFFSET_HEADER,
    SNAPSHOT_KEY,
    pack,
)
from monitor.state.customer import SECONDS_PER_DAY
from monitor.state.store import Checkpoint, StateStore

__all__ = ["Monitor", "PipelineObserver"]

logger = logging.getLogger(__name__)

# Half of kafka-python's default max_request_size, so a full batch always fits.
_BATCH_BYTES = 512 * 1024

_BACKOFF_MAX_S = 30.0
# Wall-clock time moves a quiet stream's clock only when the stream is live:
# a history replayed through Kafka must never be judged against today.
_LIVE_WITHIN_S = 2 * SECONDS_PER_DAY


class PipelineObserver(Protocol):
    """What the pipeline reports as it runs; the metrics exporter implements it."""

    def record_consumed(self, event_type: str, n: int = 1) -> None: ...
    def record_rejected(self, reason: str, n: int = 1) -> None: ...
    def record_warning(self, rule: str, status: str) -> None: ...
    def observe_latency(self, seconds: float, n: int = 1) -> None: ...
    def set_consumer_lag(self, topic: str, partition: int, lag: int) -> None: ...
    def remove_partition(self, topic: str, partition: int) -> None: ...
    def mark_checkpoint(self, epoch_s: float) -> None: ...
    def set_ready(self, ready: bool, reason: str = "") -> None: ...


@dataclass(slots=True)
class _Task:
    """One input partition: its engine and how far it has read."""

    tp: TopicPartition
    engine: Engine
    next_offset: int | None
    committed_offset: int | None
    record: Any = None
    warnings: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = field(
        default_factory=list
    )
    # Changelog bytes written since the last snapshot, and that snapshot's size.
    delta_bytes: int = 0
    snapshot_bytes: int = 0
    # The first record of a snapshot sent in the open transaction.
    snapshot_start: Any = None

    @property
    def key(self) -> str:
        return f"{self.tp.topic}:{self.tp.partition}"


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, monitor: Monitor) -> None:
        self._monitor = monitor

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self._monitor.release_partitions(revoked)

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        # Runs on kafka-python's IO thread, where consumer calls cannot block:
        # the loop restores these partitions right after the poll returns.
        self._monitor.assigned.extend(assigned)


class Monitor:
    """The live pipeline; ``run`` until ``stop`` (also from a signal handler)."""

    def __init__(
        self,
        settings: Settings,
        rules: RuleSet,
        observer: PipelineObserver | None = None,
    ) -> None:
        self.settings = settings
        self.kafka = settings.kafka
        self.rules = rules
        self.observer = observer
        self.store = StateStore(settings.store.path)
        self.tasks: dict[TopicPartition, _Task] = {}
        self.assigned: list[TopicPartition] = []
        self.releases: list[ReleaseEvent] = []
        self.ready = False
        self._running = True
        self._requests: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._in_transaction = False
        self._checkpoint_due = False
        self._last_commit = time.monotonic()
        self._last_input = time.monotonic()
        self._broker_lost = False
        # A broker request the loop is blocked in (what, since when), for the
        # broker watch: kafka-python retries these quietly while the broker is away.
        self._blocked: tuple[str, float] | None = None
        self._last_probe = time.monotonic()
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        self._releases_consumer: KafkaConsumer | None = None
        self._admin: KafkaAdminClient | None = None
        self.instance_id = self.kafka.instance_id or _default_instance_id(settings)

    # 1. Lifecycle

    def stop(self) -> None:
        """Ask the loop to finish its batch, commit, leave the group and return."""
        self._running = False

    def request(self, work: Callable[[], None]) -> None:
        """Run ``work`` on the loop's thread between polls (for scheduler jobs)."""
        self._requests.put(work)

    def run(self) -> None:
        """Consume until stopped; survive broker outages by retrying with backoff."""
        logger.info(
            "monitor starting: instance=%s group=%s topics=%s engine=%s",
            self.instance_id,
            self.kafka.group_id,
            self.kafka.topics,
            engine_build(),
        )
        self._retrying(self._connect)
        try:
            while self._running:
                try:
                    self._step()
                except (MonitorError, kafka_errors.KafkaError) as exc:
                    self._recover(exc)
        finally:
            self._shutdown()

    def _connect(self) -> None:
        ensure_topics(self.kafka)
        common = client_config(self.kafka)
        self._producer = self._new_producer()
        self._releases_consumer = KafkaConsumer(
            **common, group_id=None, enable_auto_commit=False
        )
        releases = TopicPartition(self.kafka.releases_topic, 0)
        self._releases_consumer.assign([releases])
        self._releases_consumer.seek_to_beginning(releases)
        # Every launch known so far must reach the engines before any event does,
        # or a launch's deadline could pass unjudged.
        end = self._releases_consumer.end_offsets([releases])[releases]
        deadline = time.monotonic() + self.kafka.restore_timeout_s
        while self._releases_consumer.position(releases) < end:
            if time.monotonic() > deadline:
                raise SourceError(
                    f"releases topic not read within {self.kafka.restore_timeout_s}s"
                )
            self._poll_releases(timeout_ms=500)
        self._consumer = KafkaConsumer(
            **common,
            group_id=self.kafka.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=self.kafka.max_poll_records,
            session_timeout_ms=int(self.kafka.session_timeout_s * 1000),
            heartbeat_interval_ms=int(self.kafka.session_timeout_s * 1000 / 3),
        )
        self._consumer.subscribe(self.kafka.topics, listener=_Rebalance(self))
        self._set_ready(True, "")

    def _shutdown(self) -> None:
        try:
            if self._consumer is not None and not self._broker_lost:
                self._commit()
        except (MonitorError, kafka_errors.KafkaError):
            logger.exception(
                "final commit failed; the next owner resumes from the last one"
            )
        clients = (self._consumer, self._releases_consumer, self._producer, self._admin)
        for client in clients:
            if client is not None:
                try:
                    client.close()
                except kafka_errors.KafkaError:
                    logger.exception("closing a Kafka client failed")
        self.store.close()
        self._set_ready(False, "stopped")
        logger.info("monitor stopped: instance=%s", self.instance_id)

    # 2. The loop

    def _step(self) -> None:
        assert self._consumer is not None
        batch = self._consumer.poll(
            timeout_ms=int(self.kafka.poll_timeout_s * 1000),
            max_records=self.kafka.max_poll_records,
        )
        self._poll_releases()
        if self.assigned:
            fresh, self.assigned = self.assigned, []
            self.take_partitions(fresh)
        if batch:
            self._last_input = self._last_probe = time.monotonic()
            self._begin()
            for tp, records in batch.items():
                task = self.tasks.get(tp)
                if task is not None:
                    self._process(task, records)
        while not self._requests.empty():
            self._requests.get_nowait()()
        interval_over = (
            time.monotonic() - self._last_commit >= self.kafka.commit_interval_s
        )
        if self._checkpoint_due or interval_over:
            self._checkpoint_due = False
            self._commit()
        self._probe_when_idle()
        self._report_lag()

    def _probe_when_idle(self) -> None:
        """Ask the broker for end offsets now and then while no input arrives.

        kafka-python's poll retries a lost connection without a word, so a quiet
        stream would hide an outage; a request that fails raises into recovery.
        """
        now = time.monotonic()
        if now - self._last_probe < self.kafka.broker_lost_after_s:
            return
        self._last_probe = now
        if self._consumer is not None and self.tasks:
            self._blocked = ("end-offsets probe", now)
            try:
                self._consumer.end_offsets(list(self.tasks))
            finally:
                self._blocked = None
            self._broker_back()

    def _broker_back(self) -> None:
        if self._broker_lost:
            logger.info("broker back: requests succeed again")
            self._broker_lost = False
            self._set_ready(True, "")

    def _begin(self) -> None:
        if not self._in_transaction:
            self._reconnect_producer()  # dropped by a failed abort
            assert self._producer is not None
            self._producer.begin_transaction()
            self._in_transaction = True

    def _process(self, task: _Task, records: list[Any]) -> None:
        engine, observer = task.engine, self.observer
        for record in records:
            if task.next_offset is not None and record.offset < task.next_offset:
                continue  # redelivered after a seek; already in the state
            task.record = record
            value = record.value if record.value is not None else b""
            item = engine.process(value)
            task.next_offset = record.offset + 1
            if observer is not None:
                kind = type(item).__name__.removesuffix("Event").lower()
                observer.record_consumed("invalid" if kind == "rejected" else kind)
        if observer is not None and records:
            # Time from the broker's append to processed, once per batch: cheap.
            waited = max(0.0, time.time() - records[0].timestamp / 1000)
            observer.observe_latency(waited, n=len(records))
        self._flush_outputs(task)

    def _flush_outputs(self, task: _Task) -> None:
        assert self._producer is not None
        for key, value, headers in task.warnings:
            self._producer.send(
                self.kafka.warnings_topic,
                value=value,
                key=key,
                headers=headers,
                partition=task.tp.partition,
            )
        task.warnings.clear()

    def _on_record(self, task: _Task, record: dict[str, Any]) -> None:
        task.warnings.append(warning_message(record))
        if self.observer is not None:
            self.observer.record_warning(str(record["rule"]), str(record["status"]))

    def _on_reject(self, task: _Task, rejected: Rejected) -> None:
        record = task.record
        if self.observer is not None:
            self.observer.record_rejected(rejected.reason.value)
        if record is None or rejected.reason is RejectReason.DUPLICATE:
            return  # duplicates are expected resends, counted but not dead-lettered
        self._begin()
        key, value, headers = dead_letter(
            rejected, record.key, record.topic, record.partition, record.offset
        )
        assert self._producer is not None
        self._producer.send(
            self.kafka.dead_letter_topic,
            value=value,
            key=key,
            headers=headers,
            partition=task.tp.partition,
        )

    def _poll_releases(self, timeout_ms: int = 0) -> None:
        assert self._releases_consumer is not None
        for records in self._releases_consumer.poll(timeout_ms=timeout_ms).values():
            for record in records:
                event = decode(record.value or b"")
                if not isinstance(event, ReleaseEvent):
                    logger.warning(
                        "not a release on the releases topic: offset=%d", record.offset
                    )
                    continue
                self.releases.append(event)
                for task in self.tasks.values():
                    self._begin()
                    task.engine.add_release(event)

    def request_checkpoint(self) -> None:
        """Ask for a commit at the next turn of the loop (safe from any thread)."""
        self._checkpoint_due = True

    def advance_idle_clocks(self) -> None:
        """Judge absence on a quiet live stream by moving clocks to wall time.

        Runs on the loop's thread (a scheduler job hands it over with ``request``).
        """
        idle_s = self.kafka.idle_advance_s
        if not idle_s or time.monotonic() - self._last_input < idle_s:
            return
        now = time.time()
        target = now - self.settings.engine.allowed_lateness_s
        for task in self.tasks.values():
            watermark = task.engine.clock.watermark
            if (
                watermark is not None
                and watermark < target
                and now - watermark < _LIVE_WITHIN_S
            ):
                self._begin()
                task.engine.advance_to(target)
                self._flush_outputs(task)

    # 3. Commit and recovery

    def _commit(self) -> None:
        """Commit outputs, changed state and offsets in one transaction."""
        self._last_commit = time.monotonic()
        changed = [
            t
            for t in self.tasks.values()
            if t.engine.has_changes()
            or (t.next_offset is not None and t.next_offset != t.committed_offset)
        ]
        if not changed and not self._in_transaction:
            return
        self._blocked = ("commit", time.monotonic())
        try:
            saves = self._commit_transaction(changed)
        finally:
            self._blocked = None
        for task, parts, engine_blob in saves:
            snapshot = task.snapshot_start is not None
            offset = task.next_offset or 0
            self.store.save(task.key, offset, engine_blob, parts, snapshot)
            task.engine.clear_changes()
            task.committed_offset = task.next_offset
        self._broker_back()
        for task, _, _ in saves:
            if task.snapshot_start is not None:
                self._forget_before_snapshot(task)
        if self.observer is not None:
            self.observer.mark_checkpoint(time.time())

    def _commit_transaction(
        self, changed: list[_Task]
    ) -> list[tuple[_Task, list[bytes], bytes]]:
        """Send the changelog and offsets and commit; blocks while Kafka retries."""
        assert self._producer is not None
        assert self._consumer is not None
        self._begin()
        saves, offsets = [], {}
        for task in changed:
            parts, engine_blob = self._send_changelog(task)
            saves.append((task, parts, engine_blob))
            if task.next_offset is not None:
                offsets[task.tp] = OffsetAndMetadata(task.next_offset, "", -1)
        if offsets:
            send_offsets(
                self._producer,
                offsets,
                self._consumer.group_metadata(),
                self._transaction_wait_s,
            )
        end_transaction(self._producer, True, self._transaction_wait_s)
        self._in_transaction = False
        return saves

    def watch_broker(self) -> None:
        """Report the broker lost while a request has hung too long (any thread).

        kafka-python retries a transaction commit or an offsets request until the
        broker is back or its timeout runs out, without a word; meanwhile the
        monitor must say it is not ready.
        """
        blocked = self._blocked
        if blocked is None or self._broker_lost:
            return
        what, started = blocked
        blocked_s = time.monotonic() - started
        if blocked_s < self.kafka.broker_lost_after_s:
            return
        self._broker_lost = True
        logger.warning(
            "broker lost: %s blocked for %.1fs, kafka-python retrying", what, blocked_s
        )
        self._set_ready(False, f"broker lost: {what} blocked for {blocked_s:.0f}s")

    def _send_changelog(self, task: _Task) -> tuple[list[bytes], bytes]:
        """Send the changed customers (or a snapshot of all) and the engine blob.

        Returns the records sent, for the local store, and the engine blob.
        """
        engine = task.engine
        blobs = dump_customers(engine, engine.changed_ids())
        task.delta_bytes += sum(len(b) for b in blobs.values() if b is not None)
        # Once the deltas outweigh the last snapshot, a restore would read more
        # deltas than state: write a new snapshot (at most about twice the state).
        minimum = self.kafka.changelog_snapshot_min_bytes
        if task.delta_bytes >= max(minimum, task.snapshot_bytes):
            everyone = dump_customers(engine, sorted(engine.customers))
            parts = list(pack(everyone, at_least_one=True))
            for i, value in enumerate(parts):
                future = self._send_state(task, SNAPSHOT_KEY, value, first=i == 0)
                if i == 0:
                    task.snapshot_start = future
            task.snapshot_bytes = sum(len(v) for v in parts)
            task.delta_bytes = 0
        else:
            parts = list(pack(blobs))
            for value in parts:
                self._send_state(task, DELTA_KEY, value)
        engine_blob = dump_engine(engine)
        assert self._producer is not None
        self._producer.send(
            self.kafka.changelog_topic,
            value=engine_blob,
            key=ENGINE_KEY,
            partition=task.tp.partition,
            headers=[(OFFSET_HEADER, str(task.next_offset or 0).encode())],
        )
        return parts, engine_blob

    def _send_state(
        self, task: _Task, key: bytes, value: bytes, first: bool = False
    ) -> Any:
        assert self._producer is not None
        return self._producer.send(
            self.kafka.changelog_topic,
            value=value,
            key=key,
            partition=task.tp.partition,
            headers=[(FIRST_PART_HEADER, b"1")] if first else [],
        )

    def _forget_before_snapshot(self, task: _Task) -> None:
        """Delete the changelog records a committed snapshot has replaced.

        Best effort: records left behind only make a restore read more, and the
        next snapshot deletes them.
        """
        future, task.snapshot_start = task.snapshot_start, None
        try:
            offset = future.get(timeout=self.kafka.request_timeout_s).offset
            if self._admin is None:
                self._admin = KafkaAdminClient(**client_config(self.kafka))
            delete_changelog_before(self._admin, self.kafka, task.tp.partition, offset)
        except (MonitorError, kafka_errors.KafkaError) as exc:
            logger.warning(
                "changelog records before a snapshot not deleted: partition=%s: %s",
                task.key,
                exc,
            )
            return
        logger.info(
            "changelog snapshot written: partition=%s offset=%d bytes=%d",
            task.key,
            offset,
            task.snapshot_bytes,
        )

    def _recover(self, exc: Exception) -> None:
        """Roll every task back to its last commit and retry until Kafka answers."""
        error = (
            exc
            if isinstance(exc, MonitorError)
            else translate(exc, self.kafka.bootstrap_servers)
        )
        if not self._broker_lost:
            logger.warning("broker lost, rolling back to the last commit: %s", error)
        self._broker_lost = True
        self._set_ready(False, f"broker lost: {error}")
        self._drop_producer()
        self._retrying(self._reconnect_producer)
        self._retrying(lambda: self.take_partitions(list(self.tasks), rebuild=True))

    def _abort(self) -> None:
        if self._producer is not None and self._in_transaction:
            try:
                end_transaction(self._producer, False, self._transaction_wait_s)
            except kafka_errors.KafkaError as exc:
                logger.warning("abort failed, closing the producer instead: %s", exc)
                self._drop_producer()
        self._in_transaction = False

    def _drop_producer(self) -> None:
        """Throw the producer away after a failure; a new one settles its transaction.

        A producer whose transaction failed half-way can be left waiting for
        answers that never come; the next producer's ``init_transactions`` with
        the same id aborts whatever that transaction left open.
        """
        if self._producer is not None:
            discard_producer(self._producer)
            self._producer = None
        self._in_transaction = False

    @property
    def _transaction_wait_s(self) -> float:
        # Past the transaction timeout the coordinator aborts it anyway.
        return max(self.kafka.transaction_timeout_s, self.kafka.request_timeout_s)

    def _reconnect_producer(self) -> None:
        if self._producer is None:
            self._producer = self._new_producer()

    def _new_producer(self) -> KafkaProducer:
        """A transactional producer; its id fences any older one of this instance."""
        producer = KafkaProducer(
            **client_config(self.kafka),
            transactional_id=f"{self.kafka.group_id}-{self.instance_id}",
            enable_idempotence=True,
            acks="all",
            transaction_timeout_ms=int(self.kafka.transaction_timeout_s * 1000),
            max_block_ms=int(self.kafka.request_timeout_s * 1000),
            # Records are seen only once their transaction commits, and a commit
            # sends what is waiting at once; until then large batches save the
            # sender a wake-up (a syscall and a GIL hand-over) every few records.
            linger_ms=int(self.kafka.commit_interval_s * 1000),
            batch_size=_BATCH_BYTES,
        )
        try:
            producer.init_transactions()
        except kafka_errors.KafkaError:
            discard_producer(producer)
            raise
        return producer

    def _retrying(self, action: Callable[[], None]) -> None:
        delay = 0.5
        while self._running:
            try:
                action()
                return
            except (MonitorError, kafka_errors.KafkaError) as exc:
                logger.warning("kafka not ready, retrying in %.1fs: %s", delay, exc)
                self._set_ready(False, f"kafka not ready: {exc}")
                time.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX_S)

    # 4. Partitions

    def take_partitions(
        self, assigned: list[TopicPartition], rebuild: bool = False
    ) -> None:
        """Restore the state of newly assigned partitions (or all, after a failure)."""
        assert self._consumer is not None
        for tp in sorted(assigned):
            if tp in self.tasks and not rebuild:
                continue
            task = self._restore(tp)
            self.tasks[tp] = task
            if task.next_offset is not None:
                self._consumer.seek(tp, task.next_offset)
            else:
                # Nothing committed yet: after a rollback the position has moved
                # past events whose effects were just thrown away.
                self._consumer.seek_to_beginning(tp)
        logger.info(
            "partitions assigned: partitions=%s",
            sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned),
        )

    def release_partitions(self, revoked: list[TopicPartition]) -> None:
        """Commit what was done for revoked partitions, then forget them.

        Without a producer (dropped after a failed abort) there is nothing to
        commit with: the next owner resumes from the last commit.
        """
        try:
            if self._producer is not None:
                self._commit()
        except (MonitorError, kafka_errors.KafkaError) as exc:
            logger.warning("commit before revocation failed: %s", exc)
            self._abort()
        for tp in revoked:
            self.tasks.pop(tp, None)
            if self.observer is not None:
                self.observer.remove_partition(tp.topic, tp.partition)
        logger.info(
            "partitions revoked: partitions=%s",
            sorted(f"{tp.topic}[{tp.partition}]" for tp in revoked),
        )

    def _restore(self, tp: TopicPartition) -> _Task:
        assert self._consumer is not None
        key = f"{tp.topic}:{tp.partition}"
        committed = self._consumer.committed(tp)
        checkpoint, source = self._checkpoint_for(tp, key, committed)
        holder: list[_Task] = []
        engine = Engine(
            self.rules,
            self.settings.engine,
            sink=lambda record: self._on_record(holder[0], record),
            on_reject=lambda rejected: self._on_reject(holder[0], rejected),
        )
        task = _Task(tp, engine, None, committed)
        holder.append(task)
        if checkpoint is not None:
            restore(engine, checkpoint.engine, checkpoint.customers)
            task.next_offset = task.committed_offset = checkpoint.next_offset
        for release in self.releases:
            engine.add_release(release)
        logger.info(
            "state restored: partition=%s source=%s offset=%s customers=%d",
            key,
            source,
            task.next_offset,
            len(engine.customers),
        )
        return task

    def _checkpoint_for(
        self, tp: TopicPartition, key: str, committed: int | None
    ) -> tuple[Checkpoint | None, str]:
        local = self.store.load(key)
        if local is not None and (committed is None or local.next_offset == committed):
            return local, "local"
        if committed is None:
            return None, "empty"
        remote = self._read_changelog_up_to(tp, key, committed)
        if remote is not None and remote.next_offset == committed:
            self.store.replace(key, remote)
            return remote, "changelog"
        logger.error(
            "no state matches the committed offset; starting empty there: "
            "partition=%s committed=%s changelog=%s",
            key,
            committed,
            None if remote is None else remote.next_offset,
        )
        return None, "missing"

    def _read_changelog_up_to(
        self, tp: TopicPartition, key: str, committed: int
    ) -> Checkpoint | None:
        """Read a task's changelog until it reaches the committed offset.

        A read_committed reader stops before any transaction still open on the
        partition, such as one a dead or discarded producer left behind, and
        so can see the changelog behind the offsets of a later commit. The
        coordinator aborts such a transaction after ``transaction_timeout_s``;
        until twice that has passed the read is repeated, not given up.
        """
        deadline = time.monotonic() + 2 * self.kafka.transaction_timeout_s + 5
        waited = False
        while True:
            remote = read_changelog(
                self.kafka, tp.partition, self.kafka.restore_timeout_s
            )
            caught_up = remote is not None and remote.next_offset == committed
            if caught_up or time.monotonic() >= deadline or not self._running:
                return remote
            if not waited:
                logger.warning(
                    "changelog behind the committed offset, waiting for open "
                    "transactions to end: partition=%s committed=%s changelog=%s",
                    key,
                    committed,
                    None if remote is None else remote.next_offset,
                )
                waited = True
            time.sleep(1)

    def _report_lag(self) -> None:
        if self.observer is None or self._consumer is None:
            return
        for tp, task in self.tasks.items():
            end = self._consumer.highwater(tp)
            if end is not None and task.next_offset is not None:
                self.observer.set_consumer_lag(
                    tp.topic, tp.partition, max(0, end - task.next_offset)
                )

    def _set_ready(self, ready: bool, reason: str) -> None:
        self.ready = ready
        if self.observer is not None:
            self.observer.set_ready(ready, reason)


def _default_instance_id(settings: Settings) -> str:
    # Stable across restarts of the same instance (same host, same store), so a
    # restart fences its own unfinished transaction at once.
    where = str(settings.store.path.resolve()).encode()
    return f"{socket.gethostname()}-{zlib.crc32(where):08x}"
