"""The engine's processor in the core stream runtime: records in, merged by event time per
partition, applied to the core, outputs and state committed in one transaction.

One consumer in group ``KAFKA_GROUP_ID`` (classic protocol, range assignor, static membership
with ``group.instance.id`` = the instance id) reads the four co-partitioned inputs, so
partition p of every input lands on the same instance, in one :class:`~.tasks.PartitionTask`.
A transaction per commit interval holds the outputs, the changelog records of the flights that
changed and the input offsets; ``send_offsets_to_transaction`` with the consumer's group
metadata fences a zombie that lost its partitions in a rebalance, and the stable transactional
id fences a crashed predecessor the moment its replacement starts.
"""

from __future__ import annotations

import contextlib
import functools
import time
from datetime import UTC, datetime
from typing import Any, Final

from airline_core.contract import Reason, Rejection, read_record
from airline_core.crash import crash_point
from airline_core.dead_letter import dead_letter_for
from airline_core.events import encode
from airline_core.kafka import make_consumer
from airline_core.runtime.broker import BrokerWatch
from airline_core.runtime.checkpoint import TXN_TIMEOUT_S, Outcome, TransactionalCheckpoint
from airline_core.runtime.consumer import consumer_config
from airline_core.runtime.stats import partition_lags
from airline_core.topics import ENGINE_INPUTS, Topic, physical_name
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Message, TopicPartition

from airline_engine import metrics
from airline_engine._log import logger
from airline_engine.core import COMPONENT, Output
from airline_engine.errors import RewindError
from airline_engine.merge import NEVER, Pending
from airline_engine.offers import LiveOffers, offer_of
from airline_engine.response import RESPONSE_KEY, encode_stats
from airline_engine.settings import Settings
from airline_engine.state import encode_record
from airline_engine.tasks import PartitionTask, Tasks

log = logger(__name__)
LOGICAL: Final = [str(t) for t in ENGINE_INPUTS]


class EngineProcessor:
    """Consumes the inputs, drives the per-partition tasks, commits transactions."""

    def __init__(self, settings: Settings, checkpoint: TransactionalCheckpoint, tasks: Tasks,
                 broker: BrokerWatch, offers: LiveOffers | None,
                 beat: Any = None) -> None:
        self.settings = settings
        self._checkpoint = checkpoint
        self.tasks = tasks
        self._broker = broker
        self._offers = offers
        self._beat = beat
        prefix = settings.kafka.topic_prefix
        self._inputs = [physical_name(t, prefix) for t in ENGINE_INPUTS]
        self._rank = {name: rank for rank, name in enumerate(self._inputs)}
        self._out_topic = {t: physical_name(t, prefix) for t in Topic}
        # Bound once: a labels() lookup per record is a measurable share of the engine's CPU.
        self._events_counter = {name: metrics.EVENTS.labels(name) for name in LOGICAL}
        self._max_lead_s = settings.max_lead_minutes * 60.0
        self._interval_s = settings.commit_interval_ms / 1000.0
        self._last_commit = 0.0
        self._uncommitted = 0
        self._failed = False
        self._latency: list[float] = []
        self._promotions: list[tuple[str, str, str]] = []
        self.processed = 0
        self._decisions = 0
        self._dead_letters = 0
        self.consumer = self._subscribed_consumer()

    # ------------------------------------------------------------------ consumer
    def _subscribed_consumer(self) -> Any:
        """The input consumer, subscribed: classic protocol, range assignor, static member."""
        s = self.settings
        consumer = make_consumer(s.kafka, f"{s.group_id}-{s.instance_id}", s.group_id, extra={
            "group.protocol": "classic",
            "partition.assignment.strategy": "range",
            "fetch.wait.max.ms": 50,
            **consumer_config(s.consumer, s.instance_id, error_cb=self._broker.on_error,
                              stats_cb=self._on_stats),
        })
        consumer.subscribe(self._inputs, on_assign=self._on_assign,
                           on_revoke=self._on_revoke, on_lost=self._on_lost)
        return consumer

    def _on_stats(self, payload: str) -> None:
        for name, partition, lag in partition_lags(payload):
            if name in self._rank:
                metrics.CONSUMER_LAG.labels(LOGICAL[self._rank[name]], str(partition)).set(lag)

    def on_fatal(self, error: KafkaError) -> None:
        """A fatal consumer error (for example a static member fenced after its session
        expired in a broker restart) leaves the consumer unusable for good. Like Kafka Streams
        replacing a dead stream thread: abort what is open, drop the partitions (their state is
        restored from the changelog on the next assignment, never re-read from input), close
        the consumer and join again with a new one."""
        log.error("kafka consumer failed fatally; replacing it, partitions are restored from "
                  "the changelog", error=str(error))
        metrics.CONSUMER_REPLACEMENTS.inc()
        self._broker.down = True  # not ready until the new consumer has its partitions
        if self._checkpoint.open:
            with contextlib.suppress(KafkaException):
                self._abort()
        self.tasks.drop_all()
        with contextlib.suppress(KafkaException, RuntimeError):
            self.consumer.close()
        self.consumer = self._subscribed_consumer()

    # ------------------------------------------------------------------ rebalance
    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        wanted = sorted({tp.partition for tp in partitions})
        self.tasks.restoring = True
        try:
            self.tasks.restore(wanted, progress=self._beat)
            for tp in consumer.committed(partitions, timeout=30):
                if tp.offset >= 0:
                    task = self.tasks.by_partition[tp.partition]
                    task.start_offsets[LOGICAL[self._rank[tp.topic]]] = tp.offset
        finally:
            self.tasks.restoring = False
        log.info("partitions assigned", partitions=wanted, flights=self.tasks.flights())

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        if self._checkpoint.open and not self._failed:
            try:
                self.commit()
            except KafkaException as e:
                log.warning("commit on revoke failed; aborting", error=str(e))
                with contextlib.suppress(KafkaException):
                    self._abort()
        self._drop(partitions)

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        if self._checkpoint.open:
            with contextlib.suppress(KafkaException):
                self._abort()
        self._drop(partitions)

    def _drop(self, partitions: list[TopicPartition]) -> None:
        gone = sorted({tp.partition for tp in partitions})
        self.tasks.drop(gone)
        log.info("partitions revoked", partitions=gone)

    # ------------------------------------------------------------------ records
    def on_records(self, records: list[Message], now: float) -> None:
        """Validate each record and queue it in its partition's merge; a rejected record is
        queued with its predecessor's key (it never moves the order of the others)."""
        for msg in records:
            task = self.tasks.by_partition.get(msg.partition() or 0)
            if task is None:
                continue
            rank = self._rank[msg.topic() or ""]
            offset = msg.offset() or 0
            logical = LOGICAL[rank]
            task.first_read.setdefault(logical, offset)
            if offset < task.skip_below.get(rank, -1):
                metrics.SKIPPED.labels(logical).inc()
                task.merger.skipped(rank, offset)
                continue
            result = read_record(ENGINE_INPUTS[rank], msg.key(), msg.value())
            if isinstance(result, Rejection):
                task.merger.push(rank, offset, None, (None, msg, result, now))
                continue
            event_s = result.event_time.timestamp()
            lead = event_s - task.merger.watermark(rank)  # inf before the input's first record
            if self._max_lead_s < lead < float("inf"):
                ahead = Rejection(Reason.AHEAD_OF_WATERMARK,
                                  f"event_time is {lead / 86400:.1f} days ahead of the {logical} "
                                  f"watermark (ENGINE_MAX_LEAD_MINUTES "
                                  f"{self.settings.max_lead_minutes})")
                task.merger.push(rank, offset, None, (None, msg, ahead, now))
                continue
            task.merger.push(rank, offset, event_s, (result, msg, None, now))

    def on_end(self, topic: str, partition: int, offset: int) -> None:
        """An input partition is read to its end: its merge may stop waiting for it."""
        task = self.tasks.by_partition.get(partition)
        if task is not None and topic in self._rank:
            task.merger.mark_end(self._rank[topic], offset)

    def after_batch(self, now: float, drained: bool = True) -> None:
        """Release what the merges can, commit when due (never into an outage), offers.
        While the client's local queue is not drained, a quiet input's records may be among
        those still waiting there, so the merges do not yet pass it by (see
        :meth:`PartitionMerger.release`)."""
        self._release(drained)
        due = now - self._last_commit >= self._interval_s or self._record_bound_reached()
        # No commit while the broker is known to be unreachable: librdkafka's
        # send_offsets_to_transaction can block past its timeout while the group
        # coordinator is down (librdkafka issues 5456, 5511). The commit waits for the broker;
        # a call that blocks anyway is abandoned by the checkpoint.
        if due and not self._broker.down and (self._checkpoint.open
                                                or self.tasks.positions_moved()):
            self.commit()
        if self._offers is not None:
            self._offers.tick()

    def caught_up(self) -> bool:
        """Every merge drained at the end of its inputs, and nothing left to commit."""
        return not self._checkpoint.open and self.tasks.caught_up()

    def progress(self) -> dict[str, Any]:
        """Since the last progress line: decisions and dead letters; and flights tracked."""
        numbers = {"processed": self.processed, "decisions": self._decisions,
                   "dead_letters": self._dead_letters, "flights": self.tasks.flights(),
                   "partitions": sorted(self.tasks.by_partition)}
        self._decisions = self._dead_letters = 0
        return numbers

    def _release(self, drained: bool = True) -> None:
        """Process what the merges release; a release can free a whole backlog at once (the
        merge held it for a quiet input), so the ``ENGINE_COMMIT_MAX_RECORDS`` bound on a
        transaction is checked per record, not per batch."""
        buffered = 0
        for p in sorted(self.tasks.by_partition):
            task = self.tasks.by_partition[p]
            if task.merger.waiting():
                watermark = functools.partial(self._high_watermark, p)
                for pending in task.merger.release(drained, watermark):
                    self._process(task, pending)
                    if self._record_bound_reached() and not self._broker.down \
                            and not self.commit():
                        return  # rewound to the last commit: the inputs are read again
                buffered += task.merger.buffered()
        metrics.BUFFERED.set(buffered)

    def _high_watermark(self, partition: int, rank: int) -> int:
        """Input ``rank``'s partition high watermark from the client's last fetch (-1 when
        not known): past the caught-up offset, records are written that ``read_committed``
        does not show yet."""
        try:
            marks = self.consumer.get_watermark_offsets(
                TopicPartition(self._inputs[rank], partition), cached=True)
        except KafkaException:
            return -1
        return -1 if marks is None else int(marks[1])

    def _record_bound_reached(self) -> bool:
        """The open transaction covers ``ENGINE_COMMIT_MAX_RECORDS`` inputs (0: no bound)."""
        return 0 < self.settings.commit_max_records <= self._uncommitted

    def _process(self, task: PartitionTask, pending: Pending) -> None:
        event, msg, rejection, read_at = pending.item
        logical = LOGICAL[pending.rank]
        if event is None:
            position = (datetime.fromtimestamp(pending.key_s, tz=UTC)
                        if pending.key_s > NEVER else None)
            outputs = [Output(Topic.DEAD_LETTER,
                              dead_letter_for(msg, logical, rejection, COMPONENT, position))]
        else:
            outputs = task.core.apply(logical, event, source=msg)
        self._events_counter[logical].inc()
        self.processed += 1
        self._uncommitted += 1
        for out in outputs:
            self._emit(task, out, read_at)
        crash_point("engine.mid_batch")

    def _emit(self, task: PartitionTask, out: Output, read_at: float) -> None:
        event: Any = out.event
        topic = self._out_topic[out.topic]
        if out.topic is Topic.DEAD_LETTER:
            self._dead_letters += 1
            metrics.DEAD_LETTERS.labels(getattr(event, "source_topic", "")).inc()
            log.debug("dead letter", topic=event.source_topic, partition=event.source_partition,
                      offset=event.source_offset, reason=event.reason[:300])
            self._checkpoint.produce(topic, encode(event), event.key)
            return
        if out.topic is Topic.PROMO_DECISIONS:
            self._decisions += 1
            self._latency.append(read_at)
            self._promotions.append((type(event).__name__, str(getattr(event, "tier", "")),
                                     getattr(event, "reason", "")))
            log.info("promotion decision", decision=type(event).__name__,
                     flight_id=event.flight_id, discount=event.discount_percentage,
                     tier=getattr(event, "tier", None), reason=event.reason,
                     minutes_to_departure=event.minutes_to_departure,
                     load_factor=event.current_load_factor)
        self._checkpoint.produce(topic, encode(event), event.key, task.partition)

    # ------------------------------------------------------------------ transactions
    def commit(self) -> bool:
        """Changelog records of changed flights + input offsets + commit, then live offers.

        False when the transaction did not commit and everything was rewound."""
        self._checkpoint.begin()
        offsets: list[TopicPartition] = []
        changed: list[tuple[PartitionTask, list[str]]] = []
        for task in self.tasks.by_partition.values():
            for rank, offset in task.merger.positions().items():
                task.offsets[LOGICAL[rank]] = offset
                offsets.append(TopicPartition(self._inputs[rank], task.partition, offset))
            for rank, mark in task.merger.watermarks().items():
                task.watermarks[LOGICAL[rank]] = mark
            dirty = sorted(task.core.take_dirty())
            for flight_id in dirty:
                flight = task.core.flights.get(flight_id)
                value = (None if flight is None
                         else encode_record(flight, task.offsets, task.watermarks))
                self._checkpoint.produce(self._out_topic[Topic.ENGINE_STATE_CHANGELOG], value,
                                         flight_id.encode(), task.partition)
            learned = task.core.take_response()
            if learned is not None:
                self._checkpoint.produce(self._out_topic[Topic.ENGINE_STATE_CHANGELOG],
                                         encode_stats(learned), RESPONSE_KEY.encode(),
                                         task.partition)
            changed.append((task, dirty))
        group = self.consumer.consumer_group_metadata() if offsets else None
        outcome = self._checkpoint.commit(offsets, group)
        if outcome is not Outcome.COMMITTED:
            self._forget_open()
            self._rewind()
            return False
        self._last_commit = time.monotonic()
        self._uncommitted = 0
        for read_at in self._latency:
            metrics.DECISION_LATENCY.observe(self._last_commit - read_at)
        for kind, tier, reason in self._promotions:
            metrics.PROMOTIONS.labels(kind, tier, reason).inc()
        self._forget_open()
        for task in self.tasks.by_partition.values():
            task.committed = task.merger.positions()
        metrics.FLIGHTS.set(self.tasks.flights())
        if self._offers is not None:
            self._offers.publish([offer_of(task.core.flights[f]) for task, dirty in changed
                                  for f in dirty if f in task.core.flights
                                  and task.core.flights[f].scheduled])
        return True

    def fail(self) -> None:
        """The process is stopping on an error: no more commits (the successor restores)."""
        self._failed = True

    def _abort(self) -> None:
        try:
            self._checkpoint.abort()
        finally:
            self._forget_open()

    def _forget_open(self) -> None:
        self._latency.clear()
        self._promotions.clear()

    def _rewind(self) -> None:
        """After an abort: state back to the changelog, inputs back to the committed offsets.

        Every input partition is sought: to its committed offset, or to the beginning where
        none was ever committed (``auto.offset.reset=earliest``, as on a first assignment).
        A partition left where it was would skip the records of the aborted transaction."""
        partitions = sorted(self.tasks.by_partition)
        self.tasks.restoring = True
        try:
            self.tasks.restore(partitions, progress=self._beat)
            tps = [TopicPartition(name, p) for name in self._inputs for p in partitions]
            for tp in self._committed(tps):
                self.consumer.seek(TopicPartition(tp.topic, tp.partition,
                                                  tp.offset if tp.offset >= 0
                                                  else OFFSET_BEGINNING))
        finally:
            self.tasks.restoring = False

    def _committed(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        """The group's committed offsets of ``tps``, every one of them read without error.

        Right after a broker restart the group coordinator may still be loading and answer
        some partitions with an error; those are asked again until ``TXN_TIMEOUT_S``. Failing
        then stops the engine (its successor restores from the changelog), which is safe,
        where guessing a position is not."""
        deadline = time.monotonic() + TXN_TIMEOUT_S
        while True:
            try:
                result = self.consumer.committed(tps, timeout=10)
                failed = [f"{tp.topic}[{tp.partition}]: {tp.error}" for tp in result
                          if tp.error is not None]
            except KafkaException as e:
                failed = [str(e)]
            if not failed:
                return list(result)
            if time.monotonic() > deadline:
                raise RewindError(f"cannot read the committed input offsets: {failed[:3]}")
            log.warning("committed offsets not readable yet; asking again", errors=failed[:3])
            if self._beat is not None:
                self._beat()
            time.sleep(0.5)
