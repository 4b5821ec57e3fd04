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

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Final, Literal

from airline_core.contract import Reason, Rejection, check_bytes
from airline_core.errors import InvalidEventError
from airline_core.events import MAX_TIME, decode_header
from airline_core.lake.layout import RollId, data_relpath
from airline_core.lake.manifest import offset_runs

RollReason = Literal["records", "bytes", "idle", "stop"]
#: What the lake cannot hold as one line: these records go to ``dead_letter`` instead.
UNSTORABLE: Final = frozenset({Reason.TOMBSTONE, Reason.MULTILINE})


@dataclass(frozen=True)
class LakeRecord:
    """One Kafka record as the lake sees it: offset, exact value bytes, event date.

    ``unstorable`` holds the reason when the value cannot be written as one line (it is then
    diverted to ``dead_letter`` and listed in the manifest instead of a file).
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


def _utc_date(timestamp_ms: int | None) -> str:
    """The UTC date of a Kafka timestamp (any int64 a producer set: clamped to the contract's
    time range, so no timestamp can make the conversion fail)."""
    seconds = min(max(timestamp_ms or 0, 0) / 1000, MAX_TIME.timestamp() - 1)
    return datetime.fromtimestamp(seconds, tz=UTC).date().isoformat()


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
        return LakeRecord(offset, value or b"", _utc_date(kafka_timestamp_ms), valid=False,
                          unstorable=problem)
    if problem is not None or value is None:
        return LakeRecord(offset, value or b"", _utc_date(kafka_timestamp_ms), valid=False)
    try:
        header = decode_header(value)
    except InvalidEventError:
        return LakeRecord(offset, value, _utc_date(kafka_timestamp_ms), valid=False)
    return LakeRecord(offset, value, header.event_time.astimezone(UTC).date().isoformat())


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
        return b"".join(line + b"\n" for line in self.lines)


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
        return sum(len(line) + 1 for f in self.files for line in f.lines)


def build_roll(topic: str, partition: int, generation: int, records: list[LakeRecord],
               reason: RollReason) -> Roll:
    """Group ``records`` (one partition, increasing offsets) into a roll, one file per date."""
    if not records:
        raise ValueError("a roll needs at least one record")
    roll_id = RollId(topic, partition, records[0].offset, records[-1].offset, generation)
    by_date: dict[str, list[LakeRecord]] = {}
    diverted: list[Diverted] = []
    for record in records:
        if record.unstorable:
            diverted.append(Diverted(record.offset, record.unstorable.text))
        else:
            by_date.setdefault(record.date, []).append(record)
    files = tuple(
        RollFile(date, data_relpath(roll_id, date), group[0].offset, group[-1].offset,
                 tuple(r.value for r in group), offset_runs([r.offset for r in group]))
        for date, group in sorted(by_date.items())
    )
    invalid = sum(1 for r in records if not r.valid and not r.unstorable)
    return Roll(roll_id, reason, files, tuple(diverted), invalid)


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
        """Add a record; return the roll it completes, if any.

        Offsets must increase (gaps are fine: transaction markers and aborted records occupy
        offsets that are never delivered to a ``read_committed`` consumer).
        """
        if self.records and record.offset <= self.records[-1].offset:
            raise ValueError(f"{self.topic}/{self.partition}: offset {record.offset} after "
                             f"{self.records[-1].offset}; buffers must be reset on seek")
        self.records.append(record)
        self.bytes += record.size
        self.last_append = now
        if len(self.records) >= self.limits.max_records:
            return self._cut("records")
        if self.bytes >= self.limits.max_bytes:
            return self._cut("bytes")
        return None

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
