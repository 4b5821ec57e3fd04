"""The broker side of every test and benchmark: read topics to their end, create topics, write
records in one transaction.

Each is written once because each used to be written several times, slightly differently:
reading "to the end" by position, by end-of-partition events or by waiting for a known value
gave tests that disagreed on what "everything committed" means and timed out without saying
where. Here the end of a partition is its high watermark when the read starts, reached when
librdkafka says end-of-partition at (or past) it; a read that cannot get there fails naming
each partition left with its position and end.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Final, NamedTuple

from airline_core.config import KafkaSettings
from airline_core.kafka import is_fatal, is_partition_eof, make_admin, make_consumer, make_producer
from airline_core.topics_cli import TopicsSettings, create
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import NewTopic

#: Partitions of the test topics unless a test asks otherwise (the registry's default).
PARTITIONS: Final = 3
CLIENT_ID: Final = "airline-testkit"

Headers = tuple[tuple[str, bytes | None], ...]
#: A record to write: (physical topic, key, value, partition or ``None`` for the key's).
Row = tuple[str, bytes | None, bytes | None, int | None]


class Record(NamedTuple):
    """One record read back: what the tests compare (key, value, headers) and where it was."""

    key: bytes | None
    value: bytes | None
    headers: Headers
    offset: int


#: Records per physical topic, then per partition, in offset order.
Records = dict[str, dict[int, list[Record]]]


class ReadTimeoutError(AssertionError):
    """A read that did not reach the end of every partition in time (a test failure, so an
    ``AssertionError``); the message names each partition left with its position and end."""

    def __init__(self, timeout: float, left: Mapping[tuple[str, int], tuple[int, int]],
                 last_error: KafkaError | None) -> None:
        self.left = dict(left)
        where = ", ".join(f"{t}[{p}] at {pos} of {end}" for (t, p), (pos, end)
                          in sorted(self.left.items()))
        suffix = f"; last client error: {last_error}" if last_error is not None else ""
        super().__init__(f"reading to the end timed out after {timeout:g}s; "
                         f"partitions left (position of end): {where}{suffix}")


def read_to_end(bootstrap: str, topics: Iterable[str],
                partitions: int | Iterable[int] | None = None, *,
                isolation: str = "read_committed", timeout: float = 60.0) -> Records:
    """Every record of ``topics`` (physical names) up to each partition's high watermark.

    ``partitions``: a count (partitions ``0..n-1`` of every topic), the partition numbers, or
    ``None`` for every partition the broker has. Every partition asked for is in the result,
    empty ones included. ``read_committed`` (the default) is what a downstream consumer sees:
    aborted records never appear, and a transaction still open at the end makes the read
    wait for it (or time out naming the partition), since its records lie below the high
    watermark. Raises :class:`ReadTimeoutError` after ``timeout`` seconds.
    """
    names = list(dict.fromkeys(topics))
    consumer = make_consumer(
        KafkaSettings(bootstrap_servers=bootstrap), f"{CLIENT_ID}-reader",
        f"{CLIENT_ID}-reader-{uuid.uuid4().hex[:12]}",  # never commits: the group is moot
        extra={"isolation.level": isolation, "enable.partition.eof": True,
               "fetch.wait.max.ms": 10})
    try:
        deadline = time.monotonic() + timeout
        wanted = _partitions(consumer, names, partitions)
        result: Records = {name: {p: [] for p in wanted[name]} for name in names}
        ends = {(name, p): _end(consumer, name, p, deadline)
                for name in names for p in wanted[name]}
        todo = {tp for tp, end in ends.items() if end > 0}
        if todo:
            consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in sorted(todo)])
        last_error: KafkaError | None = None
        while todo:
            if time.monotonic() > deadline:
                positions = {(tp.topic, tp.partition): tp.offset for tp in consumer.position(
                    [TopicPartition(t, p) for t, p in sorted(todo)])}
                raise ReadTimeoutError(timeout, {tp: (positions.get(tp, -1), ends[tp])
                                                 for tp in todo}, last_error)
            messages = consumer.consume(1000, timeout=0.2)
            for message in messages:
                tp = (str(message.topic()), int(message.partition() or 0))
                error = message.error()
                if error is None:
                    result[tp[0]][tp[1]].append(_record(message))
                elif is_partition_eof(message):
                    if int(message.offset() or 0) >= ends[tp]:
                        todo.discard(tp)
                elif is_fatal(error):
                    raise AssertionError(f"reading {tp[0]}[{tp[1]}] failed: {error}")
                else:
                    last_error = error  # transient (a broker restarting): retried by the client
            if not messages and todo:
                # An end-of-partition seen below the end (a transaction then still open) is
                # not repeated when only markers follow: the position tells then.
                for tp_ in consumer.position([TopicPartition(t, p) for t, p in todo]):
                    if tp_.offset >= ends[(tp_.topic, tp_.partition)]:
                        todo.discard((tp_.topic, tp_.partition))
    finally:
        consumer.close()
    return result


#: Answers of a partition without a leader yet (just created) or moving (a broker restarting).
_NOT_READY: Final = frozenset({KafkaError.NOT_LEADER_FOR_PARTITION,
                               KafkaError.LEADER_NOT_AVAILABLE,
                               KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TIMED_OUT,
                               KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN})


def _end(consumer: Any, topic: str, partition: int, deadline: float) -> int:
    """The partition's high watermark, asked again while it has no leader to answer."""
    while True:
        try:
            return int(consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                      timeout=10)[1])
        except KafkaException as e:
            error = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
            if error is None or (error.code() not in _NOT_READY and not error.retriable()) \
                    or time.monotonic() > deadline:
                raise AssertionError(f"no end offset for {topic}[{partition}]: {e}") from e
            time.sleep(0.1)


def _partitions(consumer: Any, names: list[str], partitions: int | Iterable[int] | None
                ) -> dict[str, list[int]]:
    if isinstance(partitions, int):
        return {name: list(range(partitions)) for name in names}
    if partitions is not None:
        chosen = sorted(set(partitions))
        return {name: chosen for name in names}
    metadata = consumer.list_topics(timeout=10)
    found: dict[str, list[int]] = {}
    for name in names:
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None:
            raise AssertionError(f"topic {name} does not exist on the broker")
        found[name] = sorted(topic.partitions)
    return found


def _record(message: Message) -> Record:
    raw = message.headers() or []
    items = raw.items() if isinstance(raw, dict) else raw  # a consumed record has a list
    headers = tuple((str(k), v.encode() if isinstance(v, str) else v) for k, v in items)
    return Record(message.key(), message.value(), headers, int(message.offset() or 0))


def pairs(records: Iterable[Record]) -> list[tuple[bytes | None, bytes | None]]:
    """(key, value) of each record: what most comparisons need."""
    return [(r.key, r.value) for r in records]


def create_topics(bootstrap: str, prefix: str, partitions: int = PARTITIONS) -> KafkaSettings:
    """Every registry topic under ``prefix``, ``partitions`` each, with its registry configs.

    Goes through ``airline-topics create`` (:func:`airline_core.topics_cli.create`), so tests
    run on the topics a deployment creates, compacted changelog included; idempotent. Returns
    the client settings of that prefix."""
    kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix)
    create(TopicsSettings(kafka=kafka, partitions=partitions))
    return kafka


def create_topic(bootstrap: str, name: str, partitions: int = 1, *, replicas: int = 1,
                 config: Mapping[str, str] | None = None, timeout: float = 30.0) -> str:
    """One topic outside the registry's layout (a broker test, a deliberately wrong layout, a
    topic created as a rendered manifest says); returns its name."""
    admin = make_admin(KafkaSettings(bootstrap_servers=bootstrap), CLIENT_ID)
    new = NewTopic(name, num_partitions=partitions, replication_factor=replicas,
                   config=dict(config or {}))
    admin.create_topics([new])[name].result(timeout=timeout)  # admin alive until it ends
    return name


def write_records(bootstrap: str, records: Iterable[Row], *, transactional: bool = True,
                  transactional_id: str | None = None, abort: bool = False,
                  extra: Mapping[str, Any] | None = None, timeout: float = 60.0) -> list[int]:
    """Write ``(topic, key, value, partition)`` rows in order, in one transaction; returns the
    offset of each row, in the order given.

    One transaction makes the whole input appear at once to ``read_committed`` readers (the
    components under test), as a producer's committed batch does; ``abort=True`` writes it to
    the log and aborts it (it must then never be seen); ``transactional=False`` writes with a
    plain idempotent producer (no commit markers in the partitions). A row without partition
    goes where its key hashes. Any delivery error of a committed write is a test failure.
    """
    if abort and not transactional:
        raise ValueError("only a transaction can be aborted")
    txn_id = (transactional_id or f"{CLIENT_ID}-{uuid.uuid4().hex[:12]}") if transactional \
        else None
    producer = make_producer(KafkaSettings(bootstrap_servers=bootstrap), CLIENT_ID,
                             transactional_id=txn_id, extra=extra)
    offsets: list[int] = []
    errors: list[str] = []

    def delivered(index: int) -> Any:
        def report(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                errors.append(f"{message.topic()}[{message.partition()}]: {error}")
            else:
                offsets[index] = int(message.offset() or 0)
        return report

    if txn_id:
        producer.init_transactions(timeout)
        producer.begin_transaction()
    for index, (topic, key, value, partition) in enumerate(records):
        offsets.append(-1)
        while True:
            try:
                producer.produce(topic, value=value, key=key,
                                 partition=-1 if partition is None else partition,
                                 on_delivery=delivered(index))
                break
            except BufferError:
                producer.poll(0.1)
        if index % 1000 == 999:
            producer.poll(0)
    if txn_id and abort:
        producer.flush(timeout)  # in the log first, then aborted: what a reader must skip
        producer.abort_transaction(timeout)
    elif txn_id:
        producer.commit_transaction(timeout)
    left = producer.flush(timeout)
    if not abort:
        assert left == 0, f"{left} records not delivered within {timeout:g}s"
        assert not errors, f"{len(errors)} records not written, e.g. {errors[:3]}"
    return offsets
