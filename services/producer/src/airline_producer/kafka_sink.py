"""The Kafka side: transactions of whole ticks, and finding the last committed tick on restart.

Restart marker: every record carries a ``tick`` header (the simulated tick index, decimal) and a
``run`` header (the run's identity, :attr:`Settings.run_id`). A transaction holds one or more
whole ticks, in order, so once a record of tick T is committed every tick up to T is committed
whole. On start the producer first calls ``init_transactions`` with its stable
``transactional.id`` (which fences a previous incarnation and aborts its open transaction), then
reads the tail of every partition of its topics with a ``read_committed`` consumer and resumes
after the largest ``tick`` header of its own run (another run's records, e.g. an earlier seed on
the same topics, never count). No separate marker topic, and nothing to keep in sync.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from airline_core.config import KafkaSettings
from airline_core.crash import crash_point
from airline_core.events import encode
from airline_core.kafka import make_consumer, make_producer, produce
from airline_core.logging import get_logger
from airline_core.topics import Topic, physical_name
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from airline_producer import metrics
from airline_producer.errors import DeliveryError
from airline_producer.simulation import Tick

#: Topics the producer writes, in a fixed order.
PRODUCED_TOPICS: Final = (Topic.FLIGHT_LIFECYCLE, Topic.BOOKINGS, Topic.SEAT_INVENTORY,
                          Topic.SEAT_MAP)
TICK_HEADER: Final = "tick"
RUN_HEADER: Final = "run"
#: librdkafka's RD_KAFKA_OFFSET_TAIL_BASE: offset ``-2000 - n`` means "n before the end".
OFFSET_TAIL_BASE: Final = -2000
#: Errors seen while a just-created topic's partitions get their leaders: wait and retry.
_TRANSIENT: Final = frozenset({
    KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT,
    KafkaError._TRANSPORT})
CLIENT_ID: Final = "airline-producer"

log = get_logger(__name__)


def tick_of(headers: Sequence[tuple[str, bytes | None]] | None, run_id: str | None = None
            ) -> int | None:
    """The ``tick`` header of a record, if it has one (and, given ``run_id``, is of that run)."""
    found = dict(headers or ())
    tick = found.get(TICK_HEADER)
    if tick is None or (run_id is not None and found.get(RUN_HEADER) != run_id.encode()):
        return None
    return int(tick)


class KafkaSink:
    """A transactional producer writing whole ticks."""

    def __init__(self, kafka: KafkaSettings, transactional_id: str, run_id: str,
                 timeout: float = 30.0) -> None:
        self._kafka = kafka
        self._run_id = run_id
        self._timeout = timeout
        self._names = {t: physical_name(t, kafka.topic_prefix) for t in PRODUCED_TOPICS}
        self._producer = make_producer(kafka, CLIENT_ID, transactional_id=transactional_id, extra={
            "linger.ms": 5,
            "queue.buffering.max.messages": 1_000_000,
            "transaction.timeout.ms": 120_000,
        })

    def init(self) -> None:
        """Register the transactional id (fencing and aborting any previous incarnation)."""
        try:
            self._producer.init_transactions(self._timeout)
        except KafkaException as e:
            raise DeliveryError(f"cannot initialise Kafka transactions: {e}") from e

    def write(self, ticks: Iterable[Tick]) -> int:
        """Write ticks in one transaction; returns the number of records committed.

        Raises :class:`DeliveryError` (after aborting) if any record fails. No per-record
        delivery callback: in a transaction librdkafka fails ``commit_transaction`` when any
        record was not delivered, and a Python callback run from ``flush`` after a fatal error
        (a fenced producer) is entered with an exception pending, which CPython turns into a
        ``SystemError`` or a hang.
        """
        producer = self._producer
        names = self._names
        counts: dict[tuple[str, str], int] = {}
        written = 0
        try:
            producer.begin_transaction()
            for tick in ticks:
                headers = [(TICK_HEADER, str(tick.index).encode()),
                           (RUN_HEADER, self._run_id.encode())]
                half = len(tick.events) // 2
                for n, (topic, event) in enumerate(tick.events):
                    if n == half:
                        crash_point("producer.mid_tick")
                    produce(producer, names[topic], encode(event), event.key,
                            headers=headers)
                    kind = (topic.value, type(event).__name__)
                    counts[kind] = counts.get(kind, 0) + 1
                written += len(tick.events)
                producer.poll(0)
            if producer.flush(self._timeout):
                raise DeliveryError(f"records still undelivered after {self._timeout:g}s")
            crash_point("producer.before_commit")
            producer.commit_transaction(self._timeout)
        except (KafkaException, DeliveryError) as e:
            metrics.DELIVERY_ERRORS.inc()
            self._abort()
            raise e if isinstance(e, DeliveryError) else DeliveryError(
                f"transaction failed: {e}") from e
        crash_point("producer.after_commit")
        metrics.TRANSACTIONS.inc()
        for (topic_name, event_type), count in counts.items():
            metrics.EVENTS.labels(topic_name, event_type).inc(count)
        return written

    def _abort(self) -> None:
        # A fenced or broken producer cannot abort; the caller exits and a restart recovers.
        with contextlib.suppress(KafkaException):
            self._producer.abort_transaction(self._timeout)

    def flush(self) -> None:
        """Deliver anything still queued (outside transactions there is nothing)."""
        self._producer.flush(self._timeout)

    def last_committed_tick(self, partitions: dict[Topic, int],
                            beat: Callable[[], None] | None = None) -> int:
        """The largest ``tick`` header of this run committed on any partition of the producer's
        topics (-1 when there is none). Call after :meth:`init` so no transaction is left open.

        A partition whose tail holds no record of this run (aborted records, or other runs'
        records written after this run's last tick) is read further back, the window growing
        x8 until it finds one or reaches the start of the partition: only this run's own
        records prove its progress, so nothing short of that is correct. That can be a long
        read on topics shared by many runs, so it is bounded by progress, not by total time:
        it fails only when no record arrives for ``timeout`` seconds, and it calls ``beat``
        while it reads, so ``/healthz`` does not take a long recovery for a stalled loop.
        """
        group = f"airline-producer-recovery-{uuid.uuid4()}"  # reads only, never commits
        consumer = make_consumer(self._kafka, CLIENT_ID, group,
                                 extra={"enable.partition.eof": True})
        parts = [(self._names[t], p) for t in PRODUCED_TOPICS for p in range(partitions[t])]
        try:
            best = -1
            window = 1024
            while parts:
                found, ends = _read_tails(consumer, parts, window, self._timeout, self._run_id,
                                          beat)
                best = max([best, *found.values()])
                # A partition whose tail held no tick of this run is read further back, unless
                # the window already reached its beginning.
                parts = [part for part in parts if part not in found and ends[part] > window]
                window *= 8
                if parts:
                    log.info("recovery reads further back: no record of this run in the tail",
                             partitions=len(parts), window=window)
            return best
        finally:
            consumer.close()


def _read_tails(consumer: Any, parts: list[tuple[str, int]], window: int, timeout: float,
                run_id: str, beat: Callable[[], None] | None = None,
                clock: Callable[[], float] = time.monotonic
                ) -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]]:
    """Read the last ``window`` offsets of every partition at once (librdkafka's logical
    ``OFFSET_TAIL``): the largest tick header of ``run_id`` per partition, and each partition's
    end offset. Raises :class:`DeliveryError` when nothing arrives for ``timeout`` seconds
    (a large window may take longer than that in total, which is fine while records flow);
    calls ``beat`` at least once a second while reading."""
    consumer.assign([TopicPartition(name, p, OFFSET_TAIL_BASE - window) for name, p in parts])
    found: dict[tuple[str, int], int] = {}
    ends: dict[tuple[str, int], int] = {}
    deadline = clock() + timeout
    while len(ends) < len(parts):
        if beat is not None:
            beat()
        if clock() > deadline:
            missing = sorted(set(parts) - set(ends))
            raise DeliveryError(
                f"no progress for {timeout:g}s reading the end of {missing} during recovery")
        records = 0
        progressed = False
        for message in consumer.consume(num_messages=1000, timeout=1.0):
            part = (message.topic(), message.partition())
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    ends[part] = message.offset()
                    progressed = True
                    continue
                if error.code() in _TRANSIENT:
                    continue  # not progress: a partition that never recovers still times out
                raise DeliveryError(f"cannot read {part} during recovery: {error}")
            records += 1
            tick = tick_of(message.headers(), run_id)
            if tick is not None:
                found[part] = max(found.get(part, -1), tick)
        if records or progressed:
            metrics.RECOVERY_RECORDS.inc(records)
            deadline = clock() + timeout
    consumer.unassign()
    return found, ends
