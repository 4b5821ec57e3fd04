"""The Kafka shell around the core: consume, merge by event time, apply, produce, commit.

One consumer in group ``KAFKA_GROUP_ID`` (classic protocol, range assignor, static membership
with ``group.instance.id = ENGINE_INSTANCE_ID``) reads the four co-partitioned inputs, so
partition p of every input lands on the same instance. Each assigned partition has its own
merge, core and state. One transactional producer (``transactional.id =
<group>-<instance>``) writes the outputs, the changelog records of changed flights and the input
offsets in one transaction per commit interval; ``send_offsets_to_transaction`` with the
consumer's group metadata fences a zombie that lost its partitions in a rebalance, and the
stable transactional id fences a crashed predecessor the moment its replacement starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from airline_core import events as ev
from airline_core.contract import Reason, Rejection, read_record
from airline_core.crash import ENV as CRASH_ENV
from airline_core.crash import crash_point
from airline_core.dead_letter import dead_letter_for
from airline_core.health import HealthServer
from airline_core.kafka import is_fatal, make_consumer, make_producer, require_topics
from airline_core.lifecycle import IdleTracker, StopSignal
from airline_core.topics import ENGINE_INPUTS, Topic, physical_name
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from airline_engine import metrics
from airline_engine._log import logger
from airline_engine.core import COMPONENT, EngineCore, Output, core_config
from airline_engine.errors import RewindError, TransactionStuckError
from airline_engine.merge import PartitionMerger, Pending
from airline_engine.offers import LiveOffers, offer_of
from airline_engine.restore import ChangelogReader
from airline_engine.settings import Settings
from airline_engine.state import encode_record

log = logger(__name__)
EOF_CODE: Final = KafkaError._PARTITION_EOF
TXN_TIMEOUT_S: Final = 30.0
#: How long past its own timeout a transactional call may block before it is abandoned.
TXN_GRACE_S: Final = 5.0


@dataclass(eq=False)
class PartitionTask:
    """Everything the engine holds for one input partition."""

    partition: int
    core: EngineCore
    merger: PartitionMerger
    #: rank -> offset below which inputs are already reflected in the restored state.
    skip_below: dict[int, int]
    #: Logical topic -> offset the last committed changelog records carry.
    offsets: dict[str, int]
    #: Logical topic -> event-time watermark the last committed changelog records carry.
    watermarks: dict[str, float] = field(default_factory=dict)
    committed: dict[int, int] = field(default_factory=dict)
    first_read: dict[str, int] = field(default_factory=dict)
    start_offsets: dict[str, int] = field(default_factory=dict)
    restored_records: int = 0


class EngineApp:
    """The running engine (one per process)."""

    def __init__(self, settings: Settings, stop: StopSignal) -> None:
        self.settings = settings
        self.stop = stop
        prefix = settings.kafka.topic_prefix
        self._inputs = [physical_name(t, prefix) for t in ENGINE_INPUTS]
        self._rank = {name: rank for rank, name in enumerate(self._inputs)}
        self._logical = [str(t) for t in ENGINE_INPUTS]
        self._out_topic = {t: physical_name(t, prefix) for t in Topic}
        self._changelog = self._out_topic[Topic.ENGINE_STATE_CHANGELOG]
        self._core_config = core_config(settings)
        self._max_lead_s = settings.max_lead_minutes * 60.0
        self._tasks: dict[int, PartitionTask] = {}
        self._restoring = True
        self._broker_down = False
        self._failed = False
        self._next_probe = 0.0
        self._txn_open = False
        self._last_commit = 0.0
        self._uncommitted = 0
        self._crash_tests = bool(os.environ.get(CRASH_ENV))
        self._txn_latency: list[float] = []
        self._txn_promotions: list[tuple[str, str, str]] = []
        self._offers = LiveOffers(settings.redis_url, settings.redis_retry_seconds,
                                  background=True) if settings.redis_url else None
        self._processed = 0
        self._restores = 0
        self._restored_records = 0
        self._history: dict[int, dict[str, Any]] = {}
        self.health: HealthServer | None = None
        self._producer: Any = None
        self._abandoned: list[Any] = []  # producers whose blocked calls were given up on
        self._consumer: Any = None
        self._reader: ChangelogReader | None = None

    # ------------------------------------------------------------------ readiness
    def readiness(self) -> tuple[bool, str]:
        """503 while restoring state or while the broker is unreachable."""
        if self._broker_down:
            return False, "kafka unreachable"
        if self._restoring:
            return False, "restoring state"
        return True, f"ready: partitions {sorted(self._tasks)}"

    def _on_error(self, err: KafkaError) -> None:
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self._broker_down = True
        log.warning("kafka client error", error=str(err))

    def _on_stats(self, payload: str) -> None:
        """Consumer lag per input partition from librdkafka statistics.

        librdkafka's own ``consumer_lag`` needs offsets committed by the consumer; ours are
        committed by the producer's transaction, so lag = last stable offset - next offset
        handed to the application.
        """
        stats = json.loads(payload)
        for name, topic in stats.get("topics", {}).items():
            if name not in self._rank:
                continue
            for part, info in topic.get("partitions", {}).items():
                end, position = info.get("ls_offset", -1), info.get("app_offset", -1)
                if int(part) >= 0 and end >= 0 and position >= 0:
                    metrics.CONSUMER_LAG.labels(self._logical[self._rank[name]], part).set(
                        max(end - position, 0))

    # ------------------------------------------------------------------ start / stop
    def run(self) -> int:
        """Run until stopped (SIGTERM or ``--stop-when-idle``); returns the exit status."""
        s = self.settings
        self.health = HealthServer(s.metrics_port, self.readiness).start()
        require_topics(s.kafka, (*ENGINE_INPUTS, Topic.ENGINE_STATE_CHANGELOG),
                       co_partitioned=True)
        require_topics(s.kafka, (Topic.INVENTORY_METRICS, Topic.PROMO_DECISIONS,
                                 Topic.DEAD_LETTER))
        client_id = f"{s.group_id}-{s.instance_id}"
        self._producer = self._transactional_producer()
        self._reader = ChangelogReader(s.kafka, self._changelog, client_id)
        self._consumer = self._subscribed_consumer()
        log.info("engine started", transactional_id=s.transactional_id, policy=s.policy,
                 group_id=s.group_id, instance_id=s.instance_id,
                 metrics_port=self.health.port)
        try:
            self._loop()
            if self._txn_open:
                self._commit()  # a clean stop leaves nothing uncommitted
        except BaseException:
            self._failed = True  # no commit on the way out: the successor restores instead
            raise
        finally:
            self._shutdown()
        return 0

    def _transactional_producer(self) -> Any:
        """The output producer, registered (``init_transactions`` fences any older incarnation
        of the transactional id, in this process or a crashed one, and aborts its open
        transaction)."""
        s = self.settings
        producer = make_producer(s.kafka, f"{s.group_id}-{s.instance_id}",
                                 transactional_id=s.transactional_id,
                                 extra={"transaction.timeout.ms": transaction_timeout_ms(s),
                                        "error_cb": self._on_error})
        producer.init_transactions(TXN_TIMEOUT_S)
        return producer

    def _subscribed_consumer(self) -> Any:
        """The input consumer, subscribed: classic protocol, range assignor, static member."""
        s = self.settings
        consumer = make_consumer(s.kafka, f"{s.group_id}-{s.instance_id}", s.group_id, extra={
            "group.protocol": "classic",
            "partition.assignment.strategy": "range",
            "group.instance.id": s.instance_id,
            "session.timeout.ms": s.session_timeout_ms,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 50,
            "statistics.interval.ms": 5000,
            "stats_cb": self._on_stats,
            "error_cb": self._on_error,
        })
        consumer.subscribe(self._inputs, on_assign=self._on_assign,
                           on_revoke=self._on_revoke, on_lost=self._on_lost)
        return consumer

    def _replace_consumer(self, error: KafkaError) -> None:
        """A fatal consumer error (for example, after a broker restart outlived the session, the
        coordinator fences the static member's old incarnation) leaves the consumer unusable
        for good. Like Kafka Streams replacing a dead stream thread: abort what is open, drop
        the partitions (their state is restored from the changelog on the next assignment,
        never re-read from input), close the consumer and join again with a new one."""
        log.error("kafka consumer failed fatally; replacing it, partitions are restored from "
                  "the changelog", error=str(error))
        metrics.CONSUMER_REPLACEMENTS.inc()
        self._broker_down = True  # not ready until the new consumer has its partitions
        if self._txn_open:
            with contextlib.suppress(KafkaException):
                self._abort()
        for task in self._tasks.values():
            self._remember(task)
        self._tasks.clear()
        with contextlib.suppress(KafkaException, RuntimeError):
            self._consumer.close()
        self._consumer = self._subscribed_consumer()

    def _shutdown(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
        if self._reader is not None:
            self._reader.close()
        if self._offers is not None:
            self._offers.close()
        for task in self._tasks.values():
            self._remember(task)
        log.info("engine stopped", reason=self.stop.reason, processed=self._processed,
                 restores=self._restores, restored_records=self._restored_records,
                 partitions={str(p): h for p, h in sorted(self._history.items())})
        if self.health is not None:
            self.health.stop()

    def _remember(self, task: PartitionTask) -> None:
        self._history[task.partition] = {
            "start_offsets": task.start_offsets, "first_read": task.first_read,
            "restored_records": task.restored_records}

    # ------------------------------------------------------------------ rebalance
    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        wanted = sorted({tp.partition for tp in partitions})
        self._restoring = True
        try:
            self._restore(wanted)
            committed = consumer.committed(partitions, timeout=30)
            for tp in committed:
                task = self._tasks[tp.partition]
                if tp.offset >= 0:
                    task.start_offsets[self._logical[self._rank[tp.topic]]] = tp.offset
        finally:
            self._restoring = False
        log.info("partitions assigned", partitions=wanted,
                 flights=sum(len(t.core.flights) for t in self._tasks.values()))

    def _restore(self, partitions: list[int]) -> None:
        assert self._reader is not None
        beat = self.health.beat if self.health else None
        restored = self._reader.restore(partitions, progress=beat)
        self._restores += 1
        for p in partitions:
            r = restored[p]
            core = EngineCore(self._core_config)
            for flight in r.flights.values():
                core.restore(flight)
            skip = {self._logical.index(t): o for t, o in r.offsets.items()
                    if t in self._logical}
            marks = {self._logical.index(t): w for t, w in r.watermarks.items()
                     if t in self._logical}
            merger = PartitionMerger(len(self._inputs), self.settings.idle_input_ms / 1000.0,
                                     watermarks=marks)
            self._tasks[p] = PartitionTask(p, core, merger, skip, dict(r.offsets),
                                           dict(r.watermarks), restored_records=r.records)
            self._restored_records += r.records
            if self._offers is not None:
                self._offers.publish([offer_of(f) for f in r.flights.values() if f.scheduled])
        metrics.FLIGHTS.set(sum(len(t.core.flights) for t in self._tasks.values()))

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        if self._txn_open and not self._failed:
            try:
                self._commit()
            except KafkaException as e:
                log.warning("commit on revoke failed; aborting", error=str(e))
                with contextlib.suppress(KafkaException):
                    self._abort()
        self._drop(partitions)

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        if self._txn_open:
            with contextlib.suppress(KafkaException):
                self._abort()
        self._drop(partitions)

    def _drop(self, partitions: list[TopicPartition]) -> None:
        for p in sorted({tp.partition for tp in partitions}):
            task = self._tasks.pop(p, None)
            if task is not None:
                self._remember(task)
        log.info("partitions revoked", partitions=sorted({tp.partition for tp in partitions}))

    # ------------------------------------------------------------------ main loop
    def _loop(self) -> None:
        s = self.settings
        idle = IdleTracker(s.stop_when_idle)
        interval = s.commit_interval_ms / 1000.0
        max_records = s.commit_max_records
        while not self.stop.requested:
            assert self.health is not None
            self.health.beat()
            try:
                messages = self._consumer.consume(num_messages=s.batch_size, timeout=0.1)
            except KafkaException as e:
                if is_fatal(e.args[0]):
                    self._replace_consumer(e.args[0])
                else:
                    log.warning("consume failed", error=str(e))
                continue
            fatal = next((m.error() for m in messages if is_fatal(m.error())), None)
            if fatal is not None:
                self._replace_consumer(fatal)
                continue
            if messages and self._ingest(messages):
                idle.activity()
            self._release()
            due = time.monotonic() - self._last_commit >= interval or (
                0 < max_records <= self._uncommitted)
            # No commit while the broker is known to be unreachable: librdkafka's
            # send_offsets_to_transaction can block past its timeout while the group
            # coordinator is down (librdkafka issues 5456, 5511). The commit waits for the
            # broker; a call that blocks anyway is abandoned by _bounded (_replace_producer).
            if due and not self._broker_down and (self._txn_open or self._positions_moved()):
                self._commit()
            if self._offers is not None:
                self._offers.tick()
            if self._broker_down:
                self._probe_broker()
            if idle.should_stop(self._caught_up()):
                self.stop.request("idle")

    def _probe_broker(self) -> None:
        """While marked unreachable, ask for metadata now and then: idle inputs bring no
        records that would clear the mark."""
        now = time.monotonic()
        if now < self._next_probe:
            return
        self._next_probe = now + 2.0
        try:
            self._consumer.list_topics(timeout=1.0)
        except KafkaException:
            return
        self._broker_down = False

    def _caught_up(self) -> bool:
        return (bool(self._tasks) and not self._restoring and not self._txn_open
                and all(t.merger.caught_up() for t in self._tasks.values())
                and not self._positions_moved())

    def _ingest(self, messages: list[Any]) -> bool:
        """Queue a batch in the partitions' merges; True if it held any record."""
        now = time.monotonic()
        activity = False
        for msg in messages:
            err = msg.error()
            if err is not None and err.code() != EOF_CODE:
                log.warning("consumer error", error=str(err))
                continue
            task = self._tasks.get(msg.partition())
            if task is None:
                continue
            rank = self._rank[msg.topic()]
            if err is not None:  # end of partition: caught up with the broker
                self._broker_down = False
                task.merger.mark_end(rank, msg.offset())
                continue
            activity = True
            self._broker_down = False
            offset = msg.offset()
            logical = self._logical[rank]
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
        return activity

    def _release(self) -> None:
        """Process whatever the merges can release now, partition by partition."""
        buffered = 0
        for p in sorted(self._tasks):
            task = self._tasks[p]
            if task.merger.waiting():
                for pending in task.merger.release():
                    self._process(task, pending)
                buffered += task.merger.buffered()
        metrics.BUFFERED.set(buffered)

    def _process(self, task: PartitionTask, pending: Pending) -> None:
        event, msg, rejection, read_at = pending.item
        logical = self._logical[pending.rank]
        if event is None:
            position = (datetime.fromtimestamp(pending.key_s, tz=UTC)
                        if pending.key_s > float("-inf") else None)
            outputs = [Output(Topic.DEAD_LETTER,
                              dead_letter_for(msg, logical, rejection, COMPONENT, position))]
        else:
            outputs = task.core.apply(logical, event, source=msg)
        metrics.EVENTS.labels(logical).inc()
        self._processed += 1
        self._uncommitted += 1
        if outputs:
            self._begin()
            for out in outputs:
                self._emit(task, out, read_at)
        crash_point("engine.mid_batch")

    def _begin(self) -> None:
        if not self._txn_open:
            self._producer.begin_transaction()
            self._txn_open = True

    def _emit(self, task: PartitionTask, out: Output, read_at: float) -> None:
        event = out.event
        topic = self._out_topic[out.topic]
        value = ev.encode(event)
        if out.topic is Topic.DEAD_LETTER:
            metrics.DEAD_LETTERS.labels(getattr(event, "source_topic", "")).inc()
            self._produce(topic, value, event.key, None)
            return
        if out.topic is Topic.PROMO_DECISIONS:
            self._txn_latency.append(read_at)
            kind = type(event).__name__
            self._txn_promotions.append((kind, str(getattr(event, "tier", "")),
                                         getattr(event, "reason", "")))
        self._produce(topic, value, event.key, task.partition)

    def _produce(self, topic: str, value: bytes | None, key: bytes, partition: int | None
                 ) -> None:
        producer = self._producer
        while True:
            try:
                if partition is None:
                    producer.produce(topic, value=value, key=key)
                else:
                    producer.produce(topic, value=value, key=key, partition=partition)
                return
            except BufferError:
                producer.poll(0.05)

    # ------------------------------------------------------------------ transactions
    def _positions_moved(self) -> bool:
        return any(t.merger.positions() != t.committed for t in self._tasks.values())

    def _commit(self) -> None:
        """Changelog records of changed flights + input offsets + commit, then live offers."""
        self._begin()
        offsets: list[TopicPartition] = []
        changed: list[tuple[PartitionTask, list[str]]] = []
        for task in self._tasks.values():
            positions = task.merger.positions()
            for rank, offset in positions.items():
                task.offsets[self._logical[rank]] = offset
                offsets.append(TopicPartition(self._inputs[rank], task.partition, offset))
            for rank, mark in task.merger.watermarks().items():
                task.watermarks[self._logical[rank]] = mark
            dirty = sorted(task.core.take_dirty())
            for flight_id in dirty:
                flight = task.core.flights.get(flight_id)
                value = (None if flight is None
                         else encode_record(flight, task.offsets, task.watermarks))
                self._produce(self._changelog, value, flight_id.encode(), task.partition)
            changed.append((task, dirty))
        if self._crash_tests:
            self._producer.flush(TXN_TIMEOUT_S)  # make the open transaction real on the broker
        crash_point("engine.after_produce")
        try:
            if offsets:
                group = self._consumer.consumer_group_metadata()
                _bounded("send_offsets_to_transaction",
                         lambda: self._producer.send_offsets_to_transaction(
                             offsets, group, TXN_TIMEOUT_S))
            _bounded("commit_transaction",
                     lambda: self._producer.commit_transaction(TXN_TIMEOUT_S))
        except TransactionStuckError as e:
            self._replace_producer(e)
            return
        except KafkaException as e:
            error = e.args[0]
            if error.fatal():
                raise
            log.warning("transaction failed; aborting and rewinding", error=str(e))
            self._abort()
            self._rewind()
            return
        self._txn_open = False
        self._last_commit = time.monotonic()
        self._uncommitted = 0
        crash_point("engine.after_commit")
        metrics.TRANSACTIONS.labels("committed").inc()
        now = time.monotonic()
        for read_at in self._txn_latency:
            metrics.DECISION_LATENCY.observe(now - read_at)
        for kind, tier, reason in self._txn_promotions:
            metrics.PROMOTIONS.labels(kind, tier, reason).inc()
        self._txn_latency.clear()
        self._txn_promotions.clear()
        for task in self._tasks.values():
            task.committed = task.merger.positions()
        metrics.FLIGHTS.set(sum(len(t.core.flights) for t in self._tasks.values()))
        if self._offers is not None:
            self._offers.publish([offer_of(task.core.flights[f]) for task, dirty in changed
                                  for f in dirty if f in task.core.flights
                                  and task.core.flights[f].scheduled])

    def _replace_producer(self, error: TransactionStuckError) -> None:
        """A transactional call blocked past its deadline (librdkafka can wait forever for a
        group coordinator that a broker restart lost: librdkafka issues 5456 and 5511). The
        blocked call is abandoned with its producer; a new producer with the same
        transactional id fences it and aborts its transaction, and state and inputs go back
        to the last commit, exactly as after an abort."""
        log.error("transaction stuck; replacing the producer and rewinding", error=str(error))
        metrics.TRANSACTIONS.labels("abandoned").inc()
        self._abandoned.append(self._producer)  # never freed under the thread that uses it
        self._txn_open = False
        self._txn_latency.clear()
        self._txn_promotions.clear()
        self._producer = self._transactional_producer()
        self._rewind()

    def _abort(self) -> None:
        try:
            self._producer.abort_transaction(TXN_TIMEOUT_S)
        finally:
            self._txn_open = False
            self._txn_latency.clear()
            self._txn_promotions.clear()
            metrics.TRANSACTIONS.labels("aborted").inc()

    def _rewind(self) -> None:
        """After an abort: state back to the changelog, inputs back to the committed offsets.

        Every input partition is sought: to its committed offset, or to the beginning where
        none was ever committed (``auto.offset.reset=earliest``, as on a first assignment).
        A partition left where it was would skip the records of the aborted transaction."""
        partitions = sorted(self._tasks)
        self._restoring = True
        try:
            self._restore(partitions)
            tps = [TopicPartition(name, p) for name in self._inputs for p in partitions]
            for tp in self._committed(tps):
                self._consumer.seek(TopicPartition(tp.topic, tp.partition,
                                                   tp.offset if tp.offset >= 0
                                                   else OFFSET_BEGINNING))
        finally:
            self._restoring = False

    def _committed(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        """The group's committed offsets of ``tps``, every one of them read without error.

        Right after a broker restart the group coordinator may still be loading and answer
        some partitions with an error; those are asked again until ``TXN_TIMEOUT_S``. Failing
        then stops the engine (its successor restores from the changelog), which is safe,
        where guessing a position is not."""
        deadline = time.monotonic() + TXN_TIMEOUT_S
        while True:
            try:
                result = self._consumer.committed(tps, timeout=10)
                failed = [f"{tp.topic}[{tp.partition}]: {tp.error}" for tp in result
                          if tp.error is not None]
            except KafkaException as e:
                failed = [str(e)]
            if not failed:
                return list(result)
            if time.monotonic() > deadline:
                raise RewindError(f"cannot read the committed input offsets: {failed[:3]}")
            log.warning("committed offsets not readable yet; asking again", errors=failed[:3])
            if self.health is not None:
                self.health.beat()
            time.sleep(0.5)


def transaction_timeout_ms(settings: Settings) -> int:
    """How long the broker lets a transaction of ours stay open: Kafka Streams' exactly-once
    default of 10 s, or three commit intervals if that is longer. Short, because an open
    transaction that nobody finishes (an abandoned producer, a stalled process) holds back
    every ``read_committed`` reader of our outputs and of the changelog until it times out."""
    return max(10_000, 3 * settings.commit_interval_ms)


def _bounded(what: str, call: Callable[[], None], limit: float = TXN_TIMEOUT_S + TXN_GRACE_S
             ) -> None:
    """Run a blocking librdkafka transactional call with a deadline it cannot overrun.

    The call runs on a daemon thread; its exception is re-raised here. If it has not returned
    after ``limit`` seconds, :class:`TransactionStuckError` is raised and the thread is left
    blocked (the caller replaces the producer, which fences it)."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as e:
            failure.append(e)

    worker = threading.Thread(target=target, name=f"txn-{what}", daemon=True)
    worker.start()
    worker.join(limit)
    if worker.is_alive():
        raise TransactionStuckError(f"{what} did not return within {limit:g}s")
    if failure:
        raise failure[0]
