"""Dead letters for operators: read the ``dead_letter`` topic whole, select, summarise, replay.

The topic is an archive to look into, not a stream to process, so it is read with a consumer that
joins no group and commits nothing: partitions are assigned from the beginning and read to the
high watermark they had when the read started (partition EOF past it, which also passes a
trailing transaction marker). Looking at dead letters therefore never moves any component's
progress, and two operators see the same thing. It reads ``read_committed``, like every reader
of the platform, so an envelope of an aborted engine transaction is never shown or replayed.

A replay re-produces a rejected record *as it was* (key, value, headers) to its source topic and
partition, once it can be accepted (after a fix), with the header ``airline-replay-of`` naming
the envelope. That header is what makes a replay idempotent: before producing, the source
partitions are scanned from the lowest selected source offset (a replay is always written after
its original) to their end, and an envelope whose record was already replayed is skipped. One
transactional producer writes the whole replay, so it lands completely or not at all, and its
``init_transactions`` (done before the scan) fences another replay running under the same id.

Envelopes whose original was truncated (only the first 64 KiB kept) are never replayed: the
bytes to replay are not in the envelope.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, NamedTuple

from confluent_kafka import OFFSET_BEGINNING, KafkaException, Message, Producer, TopicPartition

from airline_core import events as ev
from airline_core.config import KafkaSettings
from airline_core.contract import Reason, read_event
from airline_core.errors import AirlineError, MissingTopicError
from airline_core.kafka import Consumer, is_fatal, is_partition_eof, make_consumer, make_producer
from airline_core.topics import Topic, physical_name

#: Header a replayed record carries: the ``event_id`` of the envelope it was replayed from.
REPLAY_HEADER: Final = "airline-replay-of"
CLIENT_ID: Final = "airline-dlq"
_CODES: Final = frozenset(str(r) for r in Reason)

#: (logical topic, partition): where a record came from, or where it is replayed to.
Partition = tuple[str, int]


class DlqError(AirlineError):
    """The broker refused, failed or did not answer in time; the message says what was done."""


class NotFoundError(AirlineError):
    """An id given on the command line names no dead letter (or more than one)."""


# --------------------------------------------------------------------------- envelopes
def reason_code(envelope: ev.DeadLetter) -> str:
    """The stable code of an envelope. Envelopes of schema 1.0 have no ``reason_code``; their
    ``reason`` starts with the code when it is one of the contract's, else the code is ``""``."""
    if envelope.reason_code:
        return envelope.reason_code
    prefix = envelope.reason.partition(":")[0].strip()
    return prefix if prefix in _CODES else ""


def source_of(envelope: ev.DeadLetter) -> tuple[str, int, int]:
    """(logical topic, partition, offset) of the rejected record: one record, whatever the
    number of components that rejected it."""
    return envelope.source_topic, envelope.source_partition, envelope.source_offset


def source_text(envelope: ev.DeadLetter) -> str:
    """``topic[partition]@offset``, how the tool names a record."""
    return f"{envelope.source_topic}[{envelope.source_partition}]@{envelope.source_offset}"


class Original(NamedTuple):
    """The rejected record as its envelope kept it."""

    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text, validate=True)


def original_of(envelope: ev.DeadLetter) -> Original:
    """Decode the kept key, value and headers; raises :class:`ValueError` on damaged base64.

    A tombstone is told from an empty value by the hash: :func:`dead_letter_for` hashes every
    value it had (the empty one too) and leaves ``original_sha256`` empty only for no value."""
    try:
        value = (None if envelope.original_value_b64 == "" and envelope.original_sha256 == ""
                 else _unb64(envelope.original_value_b64))
        headers = tuple((name, _unb64(data)) for name, data in envelope.headers)
        return Original(_unb64(envelope.original_key_b64), value, headers)
    except binascii.Error as e:
        raise ValueError(f"damaged base64 in the envelope: {e}") from e


def refusal(envelope: ev.DeadLetter) -> str | None:
    """Why an envelope cannot be replayed from its own content, or ``None``."""
    if envelope.original_truncated:
        return (f"original truncated: the envelope kept only part of its {envelope.original_size}"
                f"-byte value or of its key, so it cannot be replayed from the envelope")
    try:
        original = original_of(envelope)
    except ValueError as e:
        return str(e)
    value = original.value
    if envelope.original_sha256 and value is not None and (
            hashlib.sha256(value).hexdigest() != envelope.original_sha256
            or len(value) != envelope.original_size):
        return "damaged envelope: the kept value does not match original_sha256/original_size"
    return None


# --------------------------------------------------------------------------- selection
@dataclass(frozen=True)
class Selection:
    """Which envelopes a command is about. Criteria combine with AND; the values of one
    criterion with OR (``--reason a --reason b``). Times compare with the envelope's
    ``event_time``: ``since`` inclusive, ``until`` exclusive. Empty criteria match everything."""

    ids: frozenset[str] = frozenset()
    reasons: frozenset[str] = frozenset()
    topics: frozenset[str] = frozenset()
    components: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None

    @property
    def is_everything(self) -> bool:
        """No criterion at all (a replay refuses that unless told ``--all``)."""
        return not (self.ids or self.reasons or self.topics or self.components
                    or self.since or self.until)

    def matches(self, envelope: ev.DeadLetter) -> bool:
        """Whether ``envelope`` is selected."""
        return ((not self.ids or envelope.event_id in self.ids)
                and (not self.reasons or reason_code(envelope) in self.reasons)
                and (not self.topics or envelope.source_topic in self.topics)
                and (not self.components or envelope.component in self.components)
                and (self.since is None or envelope.event_time >= self.since)
                and (self.until is None or envelope.event_time < self.until))

    def apply(self, envelopes: Iterable[ev.DeadLetter]) -> list[ev.DeadLetter]:
        """The selected envelopes, in the given order."""
        return [e for e in envelopes if self.matches(e)]


def _order(envelope: ev.DeadLetter) -> tuple[datetime, str, int, int, str]:
    return (envelope.event_time, *source_of(envelope), envelope.event_id)


@dataclass(frozen=True)
class Catalogue:
    """Every distinct envelope of the topic, in (event time, source) order.

    The same envelope can be on the topic more than once (the lake writer is not transactional:
    after a crash it diverts a record again, with the same derived id); it is kept once."""

    envelopes: tuple[ev.DeadLetter, ...]
    records: int = 0
    unreadable: int = 0
    duplicates: int = 0

    def by_id(self) -> dict[str, ev.DeadLetter]:
        """Envelopes by ``event_id``."""
        return {e.event_id: e for e in self.envelopes}

    def resolve(self, wanted: Iterable[str]) -> frozenset[str]:
        """Full ids of ``wanted`` ids or unique id prefixes (operators paste a few characters);
        raises :class:`NotFoundError` naming every id that matches none or several."""
        ids = [e.event_id for e in self.envelopes]
        known = set(ids)
        found: set[str] = set()
        problems: list[str] = []
        for text in wanted:
            if text in known:
                found.add(text)
                continue
            hits = [i for i in ids if i.startswith(text)] if text else []
            if len(hits) == 1:
                found.add(hits[0])
            else:
                problems.append(f"{text!r} matches {len(hits) or 'no'} dead letters")
        if problems:
            raise NotFoundError("; ".join(problems))
        return frozenset(found)


def catalogue_of(values: Iterable[bytes | None]) -> Catalogue:
    """The catalogue of raw ``dead_letter`` values: each decoded with the contract (a record
    that is not an envelope is counted as unreadable, never fatal), duplicates kept once."""
    seen: dict[str, ev.DeadLetter] = {}
    records = unreadable = duplicates = 0
    for value in values:
        records += 1
        event = read_event(Topic.DEAD_LETTER, value)
        if not isinstance(event, ev.DeadLetter):
            unreadable += 1
        elif event.event_id in seen:
            duplicates += 1
        else:
            seen[event.event_id] = event
    return Catalogue(tuple(sorted(seen.values(), key=_order)), records, unreadable, duplicates)


@dataclass(frozen=True)
class Summary:
    """Counts of a selection, most frequent first (ties by name)."""

    total: int
    by_reason: dict[str, int]
    by_topic: dict[str, int]


def _ranked(counter: Counter[str]) -> dict[str, int]:
    return dict(sorted(counter.items(), key=lambda item: (-item[1], item[0])))


def summarise(envelopes: Iterable[ev.DeadLetter]) -> Summary:
    """How many envelopes, by reason code and by source topic."""
    items = list(envelopes)
    return Summary(len(items), _ranked(Counter(reason_code(e) or "-" for e in items)),
                   _ranked(Counter(e.source_topic for e in items)))


# --------------------------------------------------------------------------- replay planning
class Location(NamedTuple):
    """Where a record is on the broker (logical topic name)."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass(frozen=True)
class ReplayRecord:
    """One record to re-produce: the original, with ``airline-replay-of`` set."""

    envelope: ev.DeadLetter
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]

    @property
    def target(self) -> Partition:
        """The source topic (logical) and partition: the record goes back where it was."""
        return self.envelope.source_topic, self.envelope.source_partition


@dataclass(frozen=True)
class Skipped:
    """A selected envelope not replayed, and why (``kind`` is stable, ``detail`` is prose)."""

    envelope: ev.DeadLetter
    kind: str  # "truncated", "damaged", "already_replayed" or "same_record"
    detail: str


@dataclass(frozen=True)
class ReplayPlan:
    """What a replay writes (in source order) and what it leaves out."""

    records: tuple[ReplayRecord, ...]
    skipped: tuple[Skipped, ...]

    def counts(self) -> dict[str, int]:
        """Skipped envelopes by kind."""
        return dict(sorted(Counter(s.kind for s in self.skipped).items()))


def replay_record(envelope: ev.DeadLetter) -> ReplayRecord:
    """The record to produce for ``envelope``: its original key and value, its headers minus
    any older ``airline-replay-of`` (a record replayed, rejected again and replayed from its
    new envelope names only that envelope), plus ``airline-replay-of`` = its id."""
    original = original_of(envelope)
    headers = tuple(h for h in original.headers if h[0] != REPLAY_HEADER)
    return ReplayRecord(envelope, original.key, original.value,
                        (*headers, (REPLAY_HEADER, envelope.event_id.encode())))


def scan_starts(selected: Iterable[ev.DeadLetter]) -> dict[Partition, int]:
    """Per source partition, the lowest source offset of the replayable selected envelopes: a
    replay of any of them (or of another envelope of the same record) is at or after it."""
    starts: dict[Partition, int] = {}
    for envelope in selected:
        if refusal(envelope) is None:
            where = (envelope.source_topic, envelope.source_partition)
            starts[where] = min(starts.get(where, envelope.source_offset),
                                envelope.source_offset)
    return starts


def plan_replay(selected: Iterable[ev.DeadLetter], replays: Mapping[str, Location],
                known: Mapping[str, ev.DeadLetter]) -> ReplayPlan:
    """Decide each selected envelope: replay it, or skip it (truncated or damaged original,
    already replayed, or another envelope of a record replayed already or in this replay).

    ``replays`` maps envelope ids to the replayed records found in the source partitions;
    ``known`` is every envelope, so a record that another component also rejected (the engine
    and the lake writer both dead-letter a multi-line value) is replayed once, not twice."""
    done = {source_of(known[i]): (i, where) for i, where in replays.items() if i in known}
    planned: dict[tuple[str, int, int], str] = {}
    records: list[ReplayRecord] = []
    skipped: list[Skipped] = []
    for envelope in sorted(selected, key=lambda e: (*source_of(e), e.event_id)):
        problem = refusal(envelope)
        source = source_of(envelope)
        if problem is not None:
            kind = "truncated" if envelope.original_truncated else "damaged"
            skipped.append(Skipped(envelope, kind, problem))
        elif envelope.event_id in replays:
            skipped.append(Skipped(envelope, "already_replayed",
                                   f"already replayed as {replays[envelope.event_id]}"))
        elif source in done:
            other, where = done[source]
            skipped.append(Skipped(envelope, "already_replayed",
                                   f"the same record was already replayed as {where} "
                                   f"(from dead letter {other})"))
        elif source in planned:
            skipped.append(Skipped(envelope, "same_record",
                                   f"the same record is replayed once, from dead letter "
                                   f"{planned[source]}"))
        else:
            planned[source] = envelope.event_id
            records.append(replay_record(envelope))
    return ReplayPlan(tuple(records), tuple(skipped))


def replay_of(headers: Mapping[str, bytes | str | None] | Sequence[tuple[str, bytes | str | None]]
              | None) -> str | None:
    """The envelope id a record's ``airline-replay-of`` header names, if it has one."""
    items = headers.items() if isinstance(headers, Mapping) else headers or ()
    for name, data in items:
        if name == REPLAY_HEADER and data is not None:
            return data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return None


# --------------------------------------------------------------------------- Kafka: reading
class Reader:
    """A ``read_committed`` consumer that joins no group: it is only ever *assigned*
    partitions and never commits (the client insists on a ``group.id``; none is joined).

    A second client, which reads no record, asks for the high watermarks: a ``read_committed``
    client would get the last stable offset instead, which stays *below* a transaction that
    was just committed until its markers are written, so a replay committed a moment ago could
    be missed. Reading to the high watermark waits for such a transaction to finish."""

    def __init__(self, kafka: KafkaSettings, timeout: float,
                 extra: Mapping[str, Any] | None = None) -> None:
        self.kafka, self.timeout = kafka, timeout
        group = f"{kafka.topic_prefix}{CLIENT_ID}-reader"
        self.consumer: Consumer = make_consumer(
            kafka, CLIENT_ID, group,
            extra={"enable.partition.eof": True, "fetch.wait.max.ms": 100, **(extra or {})})
        self._marks: Consumer = make_consumer(
            kafka, CLIENT_ID, group, extra={**(extra or {}), "isolation.level": "read_uncommitted"})

    def partitions(self, name: str) -> int:
        """Partition count of physical topic ``name``; :class:`MissingTopicError` if absent."""
        try:
            metadata = self.consumer.list_topics(name, timeout=self.timeout)
        except KafkaException as e:
            raise DlqError(f"cannot read metadata of {name} from "
                           f"{self.kafka.bootstrap_servers}: {e}") from e
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None or not topic.partitions:
            raise MissingTopicError(f"topic {name} does not exist on "
                                    f"{self.kafka.bootstrap_servers} (check KAFKA_TOPIC_PREFIX)")
        return len(topic.partitions)

    def read(self, starts: Mapping[tuple[str, int], int]) -> Iterator[Message]:
        """Every committed record of the given (physical topic, partition)s from the given
        offset (negative: the beginning) up to the high watermark each had when the read began.

        Ends on partition EOF at or past that mark, not on the last record's offset, because the
        last offset of a transactional topic is a commit marker that no record carries. A
        transaction still open below the mark holds the read back until it ends (the engine's
        time out after 10 s). Waits at most ``timeout`` seconds in all; a partition still open
        then is a :class:`DlqError`."""
        ends: dict[tuple[str, int], int] = {}
        assignment: list[TopicPartition] = []
        for (name, partition), start in sorted(starts.items()):
            try:
                low, high = self._marks.get_watermark_offsets(
                    TopicPartition(name, partition), timeout=self.timeout)
            except KafkaException as e:
                raise DlqError(f"cannot read the end offsets of {name}[{partition}]: {e}") from e
            first = low if start < 0 else max(start, low)
            if high > first:
                ends[(name, partition)] = high
                assignment.append(TopicPartition(name, partition,
                                                 OFFSET_BEGINNING if start < 0 else first))
        if not ends:
            return
        self.consumer.assign(assignment)
        todo = set(ends)
        deadline = time.monotonic() + self.timeout
        try:
            while todo:
                if time.monotonic() > deadline:
                    left = ", ".join(f"{n}[{p}]" for n, p in sorted(todo))
                    raise DlqError(f"reading did not reach the end of {left} within "
                                   f"{self.timeout:g} s (an open transaction, or the broker)")
                for message in self.consumer.consume(500, timeout=0.2):
                    where = (str(message.topic()), int(message.partition() or 0))
                    offset = message.offset()
                    error = message.error()
                    if error is not None:
                        if is_partition_eof(message):
                            if where in todo and offset is not None and offset >= ends[where]:
                                todo.discard(where)
                        elif is_fatal(error) or not error.retriable():
                            raise DlqError(f"reading {where[0]}[{where[1]}]: {error.str()}")
                        continue
                    if offset is not None and offset < ends.get(where, -1):
                        yield message
        finally:
            self.consumer.unassign()

    def close(self) -> None:
        """Leave nothing behind (no group was joined, nothing to commit)."""
        self.consumer.close()
        self._marks.close()


@contextmanager
def reader(kafka: KafkaSettings, timeout: float,
           extra: Mapping[str, Any] | None = None) -> Iterator[Reader]:
    """A :class:`Reader`, closed afterwards."""
    opened = Reader(kafka, timeout, extra)
    try:
        yield opened
    finally:
        opened.close()


def read_catalogue(source: Reader) -> Catalogue:
    """Every envelope of the ``dead_letter`` topic, read to its end."""
    name = physical_name(Topic.DEAD_LETTER, source.kafka.topic_prefix)
    count = source.partitions(name)
    return catalogue_of(m.value() for m in source.read({(name, p): -1 for p in range(count)}))


def find_replays(source: Reader, starts: Mapping[Partition, int]) -> dict[str, Location]:
    """Replayed records already in the source partitions (from each start offset to the end):
    envelope id -> where its replay is. Also checks each partition exists, so a replay to a
    topic or partition that is gone fails before anything is written."""
    prefix = source.kafka.topic_prefix
    topics = sorted({topic for topic, _ in starts})
    counts = {t: source.partitions(physical_name(t, prefix)) for t in topics}
    for (topic, partition) in sorted(starts):
        if partition >= counts[topic]:
            raise DlqError(f"dead letters name partition {partition} of {topic}, which has "
                           f"{counts[topic]} partitions now")
    logical = {physical_name(t, prefix): t for t in counts}
    found: dict[str, Location] = {}
    wanted = {(physical_name(t, prefix), p): o for (t, p), o in starts.items()}
    for message in source.read(wanted):
        replayed = replay_of(message.headers())
        if replayed is not None and replayed not in found:
            found[replayed] = Location(logical[str(message.topic())],
                                       int(message.partition() or 0), int(message.offset() or 0))
    return found


# --------------------------------------------------------------------------- Kafka: replaying
def _produce(producer: Producer, topic: str, record: ReplayRecord,
             on_delivery: Callable[[Any, Any], None]) -> None:
    """Produce one record to its pinned partition, waiting while the local queue is full."""
    while True:
        try:
            producer.produce(topic, value=record.value, key=record.key,
                             headers=list(record.headers), partition=record.target[1],
                             on_delivery=on_delivery)
            return
        except BufferError:
            producer.poll(0.1)


def write_replay(producer: Producer, records: Sequence[ReplayRecord], prefix: str,
                 timeout: float) -> dict[str, Location]:
    """Produce ``records`` in one transaction; returns where each landed (envelope id ->
    location). Any failure aborts the transaction: nothing of the replay becomes visible."""
    landed: dict[str, Location] = {}
    problems: list[str] = []

    def delivered(record: ReplayRecord) -> Callable[[Any, Any], None]:
        def callback(error: Any, message: Any) -> None:
            if error is not None:
                problems.append(str(error))
            else:
                landed[record.envelope.event_id] = Location(
                    record.target[0], int(message.partition()), int(message.offset()))
        return callback

    producer.begin_transaction()
    try:
        for record in records:
            _produce(producer, physical_name(record.target[0], prefix), record, delivered(record))
        if producer.flush(timeout) > 0 or problems:
            raise DlqError(f"replay not delivered: {problems[0] if problems else 'timed out'}")
        producer.commit_transaction(timeout)
    except BaseException:
        with suppress(KafkaException):
            producer.abort_transaction(timeout)
        raise
    return landed


@dataclass(frozen=True)
class ReplayResult:
    """A replay's decisions and, unless it was a dry run, where each record landed."""

    plan: ReplayPlan
    landed: dict[str, Location]
    dry_run: bool


def replay(kafka: KafkaSettings, catalogue: Catalogue, selected: Sequence[ev.DeadLetter], *,
           transactional_id: str, timeout: float, dry_run: bool = False,
           extra: Mapping[str, Any] | None = None) -> ReplayResult:
    """Replay ``selected`` (see the module docstring). A dry run scans and plans the same way
    but creates no producer, so it writes nothing and fences nobody."""
    starts = scan_starts(selected)
    producer: Producer | None = None
    if starts and not dry_run:
        producer = make_producer(kafka, CLIENT_ID,
                                 transactional_id=f"{kafka.topic_prefix}{transactional_id}",
                                 extra=extra)
        producer.init_transactions(timeout)
    replays: dict[str, Location] = {}
    if starts:
        with reader(kafka, timeout, extra) as source:
            replays = find_replays(source, starts)
    plan = plan_replay(selected, replays, catalogue.by_id())
    landed: dict[str, Location] = {}
    if producer is not None and plan.records:
        landed = write_replay(producer, plan.records, kafka.topic_prefix, timeout)
    return ReplayResult(plan, landed, dry_run)
