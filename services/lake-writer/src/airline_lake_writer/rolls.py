"""Roll cutting: the functional core that decides which records go into which file.

A *roll* is one partition's contiguous range of record offsets [first, last]. A partition's
buffer is cut into a roll as soon as it holds ``max_records`` records or ``max_bytes`` bytes
(counted after the record that reaches the limit, so a single huge record still makes a roll of
its own). Given where the previous roll ended, the cut points depend only on the records and the
limits, so a writer that replays the same offsets after a crash cuts the same rolls and writes the
same file names (as Kafka Connect's S3 sink and Secor do). Idle flushes, revocations and shutdown
are the time-driven exceptions; they are safe because files without a manifest are deleted and
rewritten on resume.

Within a roll, records are grouped by event date (event time is not monotonic within a
partition), giving one file per date, each in offset order.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Final, Literal, NamedTuple

from airline_core.contract import Reason, Rejection, all_pass_byte_checks, check_bytes
from airline_core.errors import InvalidEventError
from airline_core.events import MAX_TIME, EventHeader, decode_header, decode_headers
from airline_core.lake.layout import RollId, data_relpath
from airline_core.lake.manifest import offset_runs

RollReason = Literal["records", "bytes", "idle", "stop"]
#: What the lake cannot hold as one line: these records go to ``dead_letter`` instead.
UNSTORABLE: Final = frozenset({Reason.TOMBSTONE, Reason.MULTILINE})


class LakeRecord(NamedTuple):
    """One Kafka record as the lake sees it: offset, exact value bytes, event date.

    ``unstorable`` holds the reason when the value cannot be written as one line (it is then
    diverted to ``dead_letter`` and listed in the manifest instead of a file). A named tuple,
    not a dataclass: the writer builds one per record, hundreds of thousands a second.
    """

    offset: int
    value: bytes
    date: str
    valid: bool = True
    unstorable: Rejection | None = None

    @property
    def size(self) -> int:
        """Bytes this record adds to a file (value plus the newline)."""
        return 0 if self.unstorable else len(self.value) + 1


_OFFSET, _VALUE, _DATE, _VALID, _UNSTORABLE = (operator.itemgetter(i) for i in range(5))


def _running_bytes(records: Sequence[LakeRecord]) -> list[int]:
    """The bytes of ``records[0..i]`` for each *i* (:attr:`LakeRecord.size` summed), in C
    loops when no record is unstorable (the usual batch)."""
    if any(map(_UNSTORABLE, records)):
        return list(itertools.accumulate(r.size for r in records))
    lengths = itertools.accumulate(map(len, map(_VALUE, records)))
    return list(map(operator.add, lengths, range(1, len(records) + 1)))


def _utc_date(timestamp_ms: int | None) -> str:
    """The UTC date of a Kafka timestamp (any int64 a producer set: clamped to the contract's
    time range, so no timestamp can make the conversion fail)."""
    seconds = min(max(timestamp_ms or 0, 0) / 1000, MAX_TIME.timestamp() - 1)
    return datetime.fromtimestamp(seconds, tz=UTC).date().isoformat()


def _event_date(header: EventHeader) -> str:
    """The UTC date of an event (its ``event_time`` is timezone-aware, usually UTC already)."""
    when = header.event_time
    return (when if when.tzinfo is UTC else when.astimezone(UTC)).date().isoformat()


def classify(offset: int, value: bytes | None, kafka_timestamp_ms: int | None) -> LakeRecord:
    """Build the :class:`LakeRecord` of a Kafka record.

    The contract's byte checks come first (:func:`airline_core.contract.check_bytes`), so no
    value can make the header decoder recurse or allocate without bound. A tombstone or a value
    with a line break cannot be a line (:data:`UNSTORABLE`); anything else lands, because the
    lake is raw. The date is the event's own ``event_time`` (UTC) read cheaply with
    ``decode_header``; a value that is not a valid event is dated by its Kafka timestamp.
    """
    problem = check_bytes(value)
    if problem is not None and problem.code in UNSTORABLE:
        return LakeRecord(offset, value or b"", _utc_date(kafka_timestamp_ms), False, problem)
    if problem is not None or value is None:
        return LakeRecord(offset, value or b"", _utc_date(kafka_timestamp_ms), False)
    try:
        header = decode_header(value, bytes_checked=True)
    except InvalidEventError:
        return LakeRecord(offset, value, _utc_date(kafka_timestamp_ms), False)
    return LakeRecord(offset, value, _event_date(header))


#: Below this many records a batch that failed the batch checks is classified one by one.
_SPLIT_BELOW: Final = 8


def classify_all(offsets: Sequence[int], values: Sequence[bytes | None],
                 timestamp_of: Callable[[int], int | None]) -> list[LakeRecord]:
    """:func:`classify` for a batch of one partition's records (``timestamp_of(i)`` is the Kafka
    timestamp of the *i*-th), with the same result record for record.

    A batch of valid events is checked and decoded in one pass each
    (:func:`~airline_core.contract.all_pass_byte_checks`,
    :func:`~airline_core.events.decode_headers`); a batch that fails is split in halves, so
    a few odd records among many cost a few extra passes, not a per-record decode of the whole
    batch."""
    records: list[LakeRecord] = []
    _classify_range(offsets, values, timestamp_of, 0, len(values), records)
    return records


def _classify_range(offsets: Sequence[int], values: Sequence[bytes | None],
                    timestamp_of: Callable[[int], int | None], lo: int, hi: int,
                    out: list[LakeRecord]) -> None:
    chunk = values[lo:hi]
    if all_pass_byte_checks(chunk):
        headers = decode_headers(chunk)
        if headers is not None:
            out.extend(map(LakeRecord, offsets[lo:hi], chunk, map(_event_date, headers)))
            return
    if hi - lo < _SPLIT_BELOW:
        out.extend(classify(offsets[i], values[i], timestamp_of(i)) for i in range(lo, hi))
        return
    middle = (lo + hi) // 2
    _classify_range(offsets, values, timestamp_of, lo, middle, out)
    _classify_range(offsets, values, timestamp_of, middle, hi, out)


@dataclass(frozen=True)
class RollLimits:
    """When a buffer becomes a roll."""

    max_records: int
    max_bytes: int

    def __post_init__(self) -> None:
        if self.max_records <= 0 or self.max_bytes <= 0:
            raise ValueError("roll limits must be greater than 0")


@dataclass(frozen=True)
class RollFile:
    """The records of one roll that share an event date: one data file."""

    date: str
    relpath: PurePosixPath
    first_offset: int
    last_offset: int
    lines: tuple[bytes, ...]
    #: ``(first, last)`` runs of consecutive record offsets: line *i* is the *i*-th offset
    offset_runs: tuple[tuple[int, int], ...] = ()

    @property
    def records(self) -> int:
        """Number of lines."""
        return len(self.lines)

    def content(self) -> bytes:
        """The file's bytes: each value exactly as produced, one per line."""
        return b"\n".join(self.lines) + b"\n" if self.lines else b""


@dataclass(frozen=True)
class Diverted:
    """A record of the roll's range that could not be stored as a line."""

    offset: int
    reason: str


@dataclass(frozen=True)
class Roll:
    """A cut roll: its id, its files (one per event date, by date) and what was diverted."""

    id: RollId
    reason: RollReason
    files: tuple[RollFile, ...]
    diverted: tuple[Diverted, ...] = ()
    invalid_records: int = 0

    @property
    def records(self) -> int:
        """Records written as lines (diverted records excluded)."""
        return sum(f.records for f in self.files)

    @property
    def bytes(self) -> int:
        """Bytes written across the roll's files."""
        return sum(sum(map(len, f.lines)) + len(f.lines) for f in self.files)


def build_roll(topic: str, partition: int, generation: int, records: list[LakeRecord],
               reason: RollReason) -> Roll:
    """Group ``records`` (one partition, increasing offsets) into a roll, one file per date.

    Column at a time (dates, values, offsets pulled out with ``map``): a roll holds up to
    ``LAKE_ROLL_MAX_RECORDS`` records and is usually of a single date."""
    if not records:
        raise ValueError("a roll needs at least one record")
    roll_id = RollId(topic, partition, records[0].offset, records[-1].offset, generation)
    diverted = tuple(Diverted(r.offset, r.unstorable.text) for r in records if r.unstorable)
    stored = [r for r in records if not r.unstorable] if diverted else records
    invalid = len(records) - sum(map(_VALID, records)) - len(diverted)
    dates = list(map(_DATE, stored))
    files = []
    for date in sorted(set(dates)):
        group = (stored if len(dates) == dates.count(date)
                 else list(itertools.compress(stored, map(date.__eq__, dates))))
        offsets = list(map(_OFFSET, group))
        files.append(RollFile(date, data_relpath(roll_id, date), offsets[0], offsets[-1],
                              tuple(map(_VALUE, group)), offset_runs(offsets)))
    return Roll(roll_id, reason, tuple(files), diverted, invalid)


@dataclass
class PartitionBuffer:
    """Records of one partition not yet in a roll, and the cutting rule."""

    topic: str
    partition: int
    generation: int
    limits: RollLimits
    records: list[LakeRecord] = field(default_factory=list)
    bytes: int = 0
    last_append: float = 0.0

    @property
    def next_offset(self) -> int | None:
        """The offset after the last buffered record (``None`` when empty)."""
        return self.records[-1].offset + 1 if self.records else None

    def append(self, record: LakeRecord, now: float) -> Roll | None:
        """Add a record; return the roll it completes, if any."""
        rolls = self.extend([record], now)
        return rolls[0] if rolls else None

    def extend(self, records: Sequence[LakeRecord], now: float) -> list[Roll]:
        """Add records in offset order; return the rolls they complete (cut exactly where
        appending them one at a time would).

        Offsets must increase (gaps are fine: transaction markers and aborted records occupy
        offsets that are never delivered to a ``read_committed`` consumer). The cut points are
        found by bisecting the running byte total, not by a test per record."""
        if not records:
            return []
        offsets = list(map(_OFFSET, records))
        last = self.records[-1].offset if self.records else -1
        if offsets[0] <= last or any(map(operator.ge, offsets, offsets[1:])):
            bad = next(o for o, before in zip(offsets, [last, *offsets], strict=False)
                       if o <= before)
            raise ValueError(f"{self.topic}/{self.partition}: offset {bad} is not after the "
                             "record before it; buffers must be reset on seek")
        self.last_append = now
        totals = _running_bytes(records)
        rolls: list[Roll] = []
        start, base = 0, 0  # the first record not yet buffered, and the bytes before it
        while start < len(records):
            by_count = start + self.limits.max_records - len(self.records) - 1
            by_bytes = bisect.bisect_left(totals, self.limits.max_bytes - self.bytes + base,
                                          lo=start)
            end = min(by_count, by_bytes)
            if end >= len(records):
                self.records.extend(records[start:])
                self.bytes += totals[-1] - base
                break
            self.records.extend(records[start:end + 1])
            self.bytes += totals[end] - base
            rolls.append(self._cut("records" if by_count <= by_bytes else "bytes"))
            start, base = end + 1, totals[end]
        return rolls

    def idle(self, now: float, idle_seconds: float) -> bool:
        """Whether the buffer holds records and nothing arrived for ``idle_seconds``."""
        return bool(self.records) and now - self.last_append >= idle_seconds

    def flush(self, reason: RollReason) -> Roll | None:
        """Cut whatever is buffered into a roll (``None`` when empty)."""
        return self._cut(reason) if self.records else None

    def clear(self) -> int:
        """Drop the buffer (partition revoked: the next owner resumes from the lake)."""
        dropped = len(self.records)
        self.records = []
        self.bytes = 0
        return dropped

    def _cut(self, reason: RollReason) -> Roll:
        roll = build_roll(self.topic, self.partition, self.generation, self.records, reason)
        self.clear()
        return roll
