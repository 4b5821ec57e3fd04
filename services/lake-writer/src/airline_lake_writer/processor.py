"""The lake writer's processor: consume every lake topic, cut rolls, land them, then commit.

Single-threaded on purpose: rebalance callbacks run inside ``consume()``, so while a roll is
being written this instance still owns its partition and no other instance can be writing it.
On assignment each partition is positioned at the lake's resume offset (the manifests are the
truth, not the committed offsets); on revocation its buffer is dropped and its next owner
rereads those records from the lake's resume offset. Offsets are committed only after a roll
is durable (:class:`~airline_core.runtime.checkpoint.ExternalCommitCheckpoint`).
"""

from __future__ import annotations

import contextlib
import operator
import time
from collections import deque
from typing import Any

from airline_core import kafka as kafka_util
from airline_core.contract import Rejection
from airline_core.crash import crash_point
from airline_core.dead_letter import dead_letter_for
from airline_core.events import encode
from airline_core.logging import get_logger
from airline_core.runtime.broker import BrokerWatch
from airline_core.runtime.checkpoint import ExternalCommitCheckpoint
from airline_core.runtime.consumer import consumer_config
from airline_core.runtime.stats import partition_lags
from airline_core.topics import LAKE_TOPICS, Topic, logical_topic, physical_name
from confluent_kafka import OFFSET_BEGINNING, KafkaError, Message, TopicPartition

from airline_lake_writer.errors import LakeStorageError, LakeWriterError
from airline_lake_writer.metrics import (
    BUFFERED,
    DROPPED,
    EXPIRED,
    LAG,
    RESUMES,
    STORAGE_BLOCKED,
    STORAGE_ERRORS,
)
from airline_lake_writer.rolls import PartitionBuffer, Roll, RollLimits, classify_all
from airline_lake_writer.settings import Settings
from airline_lake_writer.store import LakeStore

log = get_logger(__name__)
COMPONENT = "lake-writer"
_UNSTORABLE = operator.attrgetter("unstorable")
Key = tuple[str, int]  # (logical topic, partition)


class LakeWriter:
    """The lake writer's processor in the core stream runtime's consume loop."""

    def __init__(self, settings: Settings, store: LakeStore,
                 broker: BrokerWatch | None = None) -> None:
        self.settings = settings
        self.store = store
        self.broker = broker or BrokerWatch()
        self.prefix = settings.kafka.topic_prefix
        self.limits = RollLimits(settings.roll_max_records, settings.roll_max_bytes)
        self.buffers: dict[Key, PartitionBuffer] = {}
        self.dead_letter_ids: dict[Key, dict[int, str]] = {}
        self.pending: deque[Roll] = deque()
        self.retry_at = 0.0
        self.backoff = 0.5
        self.blocked_reason = ""
        self.assigned_once = False
        self._last_caught_up_check = 0.0
        self._caught_up = False
        self._delivery_error: str | None = None
        self.at_end: set[Key] = set()
        self.resumed_at: dict[Key, int] = {}  # checked against retention on the first record
        self._logical_names: dict[str, str] = {}
        self._landed_rolls = 0
        self._landed_records = 0
        self.consumer = kafka_util.make_consumer(
            settings.kafka, "airline-lake-writer", settings.group_id, extra=self._extra())
        self._offsets = ExternalCommitCheckpoint(self.consumer)
        self._producer: Any = None
        self.consumer.subscribe([physical_name(t, self.prefix) for t in LAKE_TOPICS],
                                on_assign=self.on_assign, on_revoke=self.on_revoke,
                                on_lost=self.on_revoke)

    def _extra(self) -> dict[str, Any]:
        # Partition EOF events tell when the fetcher has passed the end of a partition, even
        # when the end is a transaction marker that never reaches the application.
        consumer = self.settings.consumer
        return {"max.poll.interval.ms": 600_000,
                **consumer_config(consumer, consumer.group_instance_id,
                                  error_cb=self.broker.on_error, stats_cb=self._on_stats)}

    # ------------------------------------------------------------------ readiness and metrics
    def readiness(self) -> tuple[bool, str]:
        """Ready once partitions are assigned, the broker answers and storage accepts writes."""
        if self.broker.down:
            return False, "kafka unreachable"
        if self.blocked_reason:
            return False, f"storage blocked: {self.blocked_reason}"
        if not self.assigned_once:
            return False, "waiting for partition assignment"
        return True, "ok"

    def _on_stats(self, payload: str) -> None:
        for name, partition, lag in partition_lags(payload):
            with contextlib.suppress(ValueError):
                LAG.labels(self._logical(name), str(partition)).set(lag)

    def _update_buffered(self) -> None:
        totals = {str(t): 0 for t in LAKE_TOPICS}
        for (topic, _), buffer in self.buffers.items():
            totals[topic] += len(buffer.records)
        for roll in self.pending:
            totals[roll.id.topic] += roll.records + len(roll.diverted)
        for topic, count in totals.items():
            BUFFERED.labels(topic).set(count)

    # ------------------------------------------------------------------ rebalancing
    def _logical(self, physical: str) -> str:
        """Logical topic name of a broker topic name (memoised: called once per record)."""
        name = self._logical_names.get(physical)
        if name is None:
            name = self._logical_names[physical] = str(logical_topic(physical, self.prefix))
        return name

    def _key(self, tp: TopicPartition) -> Key:
        return self._logical(tp.topic), tp.partition

    def on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Position each partition at the lake's resume offset (deleting orphans first)."""
        by_topic: dict[str, list[int]] = {}
        for tp in partitions:
            topic, partition = self._key(tp)
            by_topic.setdefault(topic, []).append(partition)
        resume: dict[Key, int | None] = {}
        for topic, parts in by_topic.items():
            for partition, offset in self.store.resume(topic, parts).items():
                resume[(topic, partition)] = offset
        for tp in partitions:
            key = self._key(tp)
            offset = resume[key]
            tp.offset = OFFSET_BEGINNING if offset is None else offset
            self.buffers[key] = PartitionBuffer(key[0], key[1], self.store.generation,
                                                self.limits)
            self.dead_letter_ids[key] = {}
            self.at_end.discard(key)
            if offset is not None:
                self.resumed_at[key] = offset
            RESUMES.labels(key[0]).inc()
        consumer.assign(partitions)
        if self.blocked_reason:  # storage still failing: take no more records into memory
            consumer.pause(partitions)
        self.assigned_once = True
        self._caught_up = False
        log.info("partitions assigned", count=len(partitions),
                 resume={f"{t}/{p}": o for (t, p), o in sorted(resume.items())})

    def on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Drop the buffers (and unlanded rolls) of revoked partitions: never land what we no
        longer own; the next owner resumes from the lake."""
        keys = {self._key(tp) for tp in partitions}
        for key in keys:
            buffer = self.buffers.pop(key, None)
            self.dead_letter_ids.pop(key, None)
            self.resumed_at.pop(key, None)
            if buffer is not None and buffer.records:
                DROPPED.labels(key[0]).inc(buffer.clear())
        kept = deque(r for r in self.pending if (r.id.topic, r.id.partition) not in keys)
        for roll in self.pending:
            if (roll.id.topic, roll.id.partition) in keys:
                DROPPED.labels(roll.id.topic).inc(roll.records + len(roll.diverted))
        self.pending = kept
        if not self.pending:
            self._unblock()
        self._caught_up = False
        log.info("partitions revoked", count=len(partitions))

    # ------------------------------------------------------------------ records
    def _on_run(self, messages: list[Message], now: float) -> None:
        """Buffer consecutive records of one partition, classified and cut as one batch."""
        first = messages[0]
        key = (self._logical(first.topic() or ""), int(first.partition() or 0))
        buffer = self.buffers.get(key)
        if buffer is None:  # records fetched just before a revocation
            return
        self.at_end.discard(key)
        offsets = [int(m.offset() or 0) for m in messages]
        resumed_at = self.resumed_at.pop(key, None)
        if resumed_at is not None and offsets[0] > resumed_at:
            self._check_retention(first, key, resumed_at)
        records = classify_all(offsets, [m.value() for m in messages],
                               lambda i: messages[i].timestamp()[1])
        if key[0] != Topic.DEAD_LETTER and any(map(_UNSTORABLE, records)):
            for message, record in zip(messages, records, strict=True):
                if record.unstorable:
                    self.dead_letter_ids[key][record.offset] = self._divert(
                        message, key[0], record.unstorable)
        crash_point("lake.mid_buffer", passes=len(records))
        for roll in buffer.extend(records, now):
            self._enqueue(roll)

    def _check_retention(self, message: Message, key: Key, resumed_at: int) -> None:
        """Records between the lake's resume offset and the partition's log start offset were
        deleted by retention before they landed (the writer was down too long): say so loudly.
        A gap alone proves nothing (transaction markers occupy offsets), the log start does."""
        tp = TopicPartition(message.topic() or "", key[1])
        low, _ = self.consumer.get_watermark_offsets(tp, cached=True)
        if low > resumed_at:
            EXPIRED.labels(key[0]).inc(low - resumed_at)
            log.error("records expired from Kafka before they landed", topic=key[0],
                      partition=key[1], lake_resume_offset=resumed_at, log_start_offset=low)

    def _divert(self, message: Message, topic: str, reason: Rejection) -> str:
        """Send a record that cannot be a line to dead_letter, whole (flushed before the
        manifest that lists it); returns the envelope's deterministic id."""
        envelope = dead_letter_for(message, topic, reason, COMPONENT)
        if self._producer is None:
            self._producer = kafka_util.make_producer(self.settings.kafka,
                                                      "airline-lake-writer-dlq")
        kafka_util.produce(self._producer, physical_name(Topic.DEAD_LETTER, self.prefix),
                           encode(envelope), envelope.key, on_delivery=self._on_delivery)
        log.warning("record diverted to dead_letter", topic=topic,
                    partition=message.partition(), offset=message.offset(), reason=reason.text)
        return envelope.event_id

    def _on_delivery(self, error: Any, _message: Any) -> None:
        if error is not None:
            self._delivery_error = str(error)

    # ------------------------------------------------------------------ landing
    def _enqueue(self, roll: Roll) -> None:
        self.pending.append(roll)
        self._drain()

    def _drain(self) -> None:
        """Land pending rolls in order; stop at the first storage error (retried later)."""
        while self.pending and time.monotonic() >= self.retry_at:
            roll = self.pending[0]
            key = (roll.id.topic, roll.id.partition)
            try:
                ids = self._dead_letters_for(roll, key)
                manifest = self.store.land(roll, ids)
            except LakeStorageError as e:
                self._storage_failed(e.reason, str(e))
                return
            except LakeWriterError as e:
                self._storage_failed("DEAD_LETTER", str(e))
                return
            self.pending.popleft()
            for d in roll.diverted:
                self.dead_letter_ids.get(key, {}).pop(d.offset, None)
            crash_point("lake.before_commit")
            self._offsets.commit(physical_name(roll.id.topic, self.prefix), roll.id.partition,
                                 roll.id.last + 1)
            crash_point("lake.after_commit")
            self._landed_rolls += 1
            self._landed_records += manifest.records
            log.info("roll landed", topic=roll.id.topic, partition=roll.id.partition,
                     first=roll.id.first, last=roll.id.last, records=manifest.records,
                     files=len(manifest.files), reason=roll.reason)
        if not self.pending:
            self._unblock()

    def _dead_letters_for(self, roll: Roll, key: Key) -> dict[int, str]:
        if not roll.diverted:
            return {}
        if self._producer is not None:
            self._delivery_error = None
            remaining = self._producer.flush(30)
            if remaining or self._delivery_error:
                raise LakeWriterError(f"dead_letter delivery failed: "
                                      f"{self._delivery_error or f'{remaining} undelivered'}")
        ids = self.dead_letter_ids.get(key, {})
        return {d.offset: ids[d.offset] for d in roll.diverted if d.offset in ids}

    def _storage_failed(self, reason: str, message: str) -> None:
        STORAGE_ERRORS.labels(reason).inc()
        self.retry_at = time.monotonic() + self.backoff
        log.error("cannot land roll; will retry (offsets stay behind the lake)",
                  reason=reason, error=message, retry_in_seconds=round(self.backoff, 1),
                  pending_rolls=len(self.pending))
        self.backoff = min(self.backoff * 2, self.settings.retry_max_seconds)
        if not self.blocked_reason:
            self.blocked_reason = reason
            STORAGE_BLOCKED.set(1)
            self.consumer.pause(self.consumer.assignment())

    def _unblock(self) -> None:
        self.backoff = 0.5
        self.retry_at = 0.0
        if self.blocked_reason:
            log.info("storage recovered; consuming again", was=self.blocked_reason)
            self.blocked_reason = ""
            STORAGE_BLOCKED.set(0)
            self.consumer.resume(self.consumer.assignment())

    def _flush_idle(self, now: float) -> None:
        for buffer in list(self.buffers.values()):
            if buffer.idle(now, self.settings.idle_flush_seconds):
                roll = buffer.flush("idle")
                if roll is not None:
                    self.pending.append(roll)
        self._drain()

    def _flush_all(self) -> None:
        for buffer in self.buffers.values():
            roll = buffer.flush("stop")
            if roll is not None:
                self.pending.append(roll)
        self._drain()

    # ------------------------------------------------------------------ stop-when-idle
    def read_to_end(self) -> bool:
        """Every assigned partition read to its end: the fetcher reported partition EOF since
        its last record (this also covers a trailing transaction marker, which the position
        never passes), or the position is at or past the high watermark."""
        assignment = self.consumer.assignment()
        if not assignment or self.pending:
            return False
        for tp in self.consumer.position(assignment):
            if self._key(tp) in self.at_end:
                continue
            # Cached: updated by every fetch response, so free; ask the broker (slow, about
            # half a second per partition) only before the first fetch answered.
            low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            if high < 0:
                low, high = self.consumer.get_watermark_offsets(tp, timeout=5, cached=False)
            if tp.offset < 0:
                if high > low:
                    return False
            elif tp.offset < high:
                return False
        return True

    # ------------------------------------------------------------------ the consume loop's hooks
    def on_records(self, records: list[Message], now: float) -> None:
        """Buffer the records, each run of one partition's as a batch; full buffers become
        rolls and land at once."""
        self._caught_up = False
        start = 0
        while start < len(records):
            topic, partition = records[start].topic(), records[start].partition()
            end = start + 1
            while (end < len(records) and records[end].partition() == partition
                   and records[end].topic() == topic):
                end += 1
            self._on_run(records[start:end], now)
            start = end

    def on_end(self, topic: str, partition: int, offset: int) -> None:
        """librdkafka passed the end of a partition (also past a trailing transaction marker)."""
        self.at_end.add((self._logical(topic), partition))

    def on_fatal(self, error: KafkaError) -> None:
        """The consumer is unusable for good: stop (exit 1) and let the pod be restarted; the
        lake, not the group, says where to resume."""
        raise LakeWriterError(f"fatal consumer error: {error}")

    def after_batch(self, now: float, drained: bool = True) -> None:
        """Land idle buffers and pending rolls (retrying storage after a backoff)."""
        self._flush_idle(now)
        self._update_buffered()

    def caught_up(self) -> bool:
        """:meth:`read_to_end`, asked at most twice a second (it asks for positions)."""
        now = time.monotonic()
        if not self._caught_up and now - self._last_caught_up_check >= 0.5:
            self._last_caught_up_check = now
            self._caught_up = self.read_to_end()
        return self._caught_up

    def progress(self) -> dict[str, Any]:
        """Rolls and records landed since the last progress line, and what is waiting."""
        numbers = {"rolls_landed": self._landed_rolls, "records_landed": self._landed_records,
                   "pending_rolls": len(self.pending), "storage_blocked": self.blocked_reason,
                   "partitions": len(self.buffers)}
        self._landed_rolls = self._landed_records = 0
        return numbers

    def finish(self) -> int:
        """On the way out: land what is buffered; 0, or 1 when rolls could not land."""
        self._flush_all()
        self._update_buffered()
        if self.pending:
            log.error("stopping with rolls not landed (they will be reread on restart)",
                      pending=len(self.pending), reason=self.blocked_reason)
            return 1
        return 0

    def close(self) -> None:
        """Close the consumer; deliver any dead letters still queued."""
        self.consumer.close()
        if self._producer is not None:
            self._producer.flush(10)
