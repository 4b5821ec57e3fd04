"""Manifests: the lake's record of which rolls are complete, and the rules read from them.

The format is shared: the lake writer writes it, the ETL and the tests read it.

A roll's manifest is written last, after every data file of the roll is durable, so a manifest
proves its files are complete. The lake is therefore the truth about progress: a partition
resumes at ``last_offset + 1`` of its highest manifest (in the current source generation), and a
data file of that partition and generation whose range starts at or after that offset belongs to
a roll that never got its manifest: an *orphan*, deleted and rewritten.
"""

from __future__ import annotations

import hashlib
import itertools
import operator
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Final

import msgspec

from airline_core.lake.layout import (
    DATA_SUFFIX,
    MANIFEST_SUFFIX,
    RollId,
    manifest_dir,
    manifest_relpath,
    parse_name,
    topic_dir,
)

FORMAT_VERSION: Final = 1


class ManifestFile(msgspec.Struct, frozen=True):
    """One data file of the roll."""

    path: str  #: relative to LAKE_DIR, with forward slashes
    date: str  #: the event date of every line (YYYY-MM-DD, UTC)
    records: int
    bytes: int
    sha256: str
    first_offset: int  #: first record offset in this file
    last_offset: int  #: last record offset in this file
    #: ``[first, last]`` runs of consecutive record offsets; line *i* has the *i*-th offset
    offset_runs: list[tuple[int, int]]

    def __post_init__(self) -> None:
        previous = -1
        for first, last in self.offset_runs:
            if not previous < first <= last:
                raise ValueError(f"offset runs {self.offset_runs!r:.80} are not increasing "
                                 "[first, last] pairs")
            previous = last


class DivertedRecord(msgspec.Struct, frozen=True):
    """A record of the range that could not be stored as a line (null or multi-line value)."""

    offset: int
    reason: str
    dead_letter_event_id: str | None  #: id of its dead_letter envelope (None on dead_letter)


class ManifestSource(msgspec.Struct, frozen=True):
    """Which Kafka incarnation the offsets belong to."""

    cluster_id: str
    topic_id: str
    generation: int


class Manifest(msgspec.Struct, frozen=True):
    """The manifest of one roll (``raw/_manifests/<topic>/<roll stem>.json``)."""

    format_version: int
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    generation: int
    records: int  #: lines across ``files`` (records of the range minus ``diverted``)
    invalid_records: int  #: lines that are not valid events (kept raw; the ETL rejects them)
    files: list[ManifestFile]
    diverted: list[DivertedRecord]
    source: ManifestSource
    roll_reason: str  #: records | bytes | idle | stop

    @property
    def roll_id(self) -> RollId:
        """The id this manifest describes."""
        return RollId(self.topic, self.partition, self.first_offset, self.last_offset,
                      self.generation)


def offset_runs(offsets: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """Compress increasing offsets into ``(first, last)`` runs of consecutive offsets.

    Vectorised (a run breaks where an offset is not its predecessor plus one): a roll's file
    holds up to hundreds of thousands of offsets."""
    values = offsets if isinstance(offsets, list) else list(offsets)
    if not values:
        return ()
    following = values[1:]
    breaks = list(map(operator.ne, following, map((1).__add__, values)))
    starts = [values[0], *itertools.compress(following, breaks)]
    ends = [*itertools.compress(values, breaks), values[-1]]
    return tuple(zip(starts, ends, strict=True))


def expand_runs(runs: Iterable[tuple[int, int]]) -> list[int]:
    """Inverse of :func:`offset_runs`: the offset of each line, in order."""
    return [o for first, last in runs for o in range(first, last + 1)]


_ENCODER: Final = msgspec.json.Encoder()
_DECODER: Final = msgspec.json.Decoder(Manifest)


def manifest_relpath_of(manifest: Manifest) -> PurePosixPath:
    """Where ``manifest`` lives, relative to ``LAKE_DIR``."""
    return manifest_relpath(manifest.roll_id)


def encode(manifest: Manifest) -> bytes:
    """Manifest JSON (one line, ends with a newline)."""
    return _ENCODER.encode(manifest) + b"\n"


def decode(data: bytes) -> Manifest:
    """Parse a manifest (raises ``msgspec.DecodeError``/``ValidationError`` when malformed)."""
    return _DECODER.decode(data)


def read(path: Path) -> Manifest:
    """Read one manifest file."""
    return decode(path.read_bytes())


# --------------------------------------------------------------------------- scanning
def manifest_ids(lake_dir: Path, topic: str) -> list[RollId]:
    """Ids of every manifest of ``topic`` (any partition, any generation), sorted."""
    directory = manifest_dir(lake_dir, topic)
    if not directory.is_dir():
        return []
    ids = []
    for entry in directory.iterdir():
        parsed = parse_name(entry.name)
        if parsed and parsed[1] == MANIFEST_SUFFIX and parsed[0].topic == topic:
            ids.append(parsed[0])
    return sorted(ids)


def highest(ids: Iterable[RollId], partition: int, generation: int) -> RollId | None:
    """The manifest with the highest range of ``partition`` in ``generation``."""
    mine = [i for i in ids if i.partition == partition and i.generation == generation]
    return max(mine, key=lambda i: i.last, default=None)


def resume_offset(ids: Iterable[RollId], partition: int, generation: int) -> int | None:
    """Where ``partition`` resumes: ``last + 1`` of its highest manifest, ``None`` if none."""
    top = highest(ids, partition, generation)
    return None if top is None else top.last + 1


def overlaps(ids: Iterable[RollId]) -> list[tuple[RollId, RollId]]:
    """Pairs of manifests of one partition and generation whose ranges overlap (must be none)."""
    problems = []
    by_key: dict[tuple[str, int, int], list[RollId]] = {}
    for i in ids:
        by_key.setdefault((i.topic, i.partition, i.generation), []).append(i)
    for group in by_key.values():
        group.sort(key=lambda i: (i.first, i.last))
        problems += [(a, b) for a, b in itertools.pairwise(group) if b.first <= a.last]
    return problems


def data_files(lake_dir: Path, topic: str) -> Iterator[tuple[Path, RollId]]:
    """Every data file of the new layout of ``topic`` with its parsed roll id."""
    root = topic_dir(lake_dir, topic)
    if not root.is_dir():
        return
    for date_dir in root.iterdir():
        if not (date_dir.is_dir() and date_dir.name.startswith("date=")):
            continue
        for entry in date_dir.iterdir():
            parsed = parse_name(entry.name)
            if parsed and parsed[1] == DATA_SUFFIX:
                yield entry, parsed[0]


def is_orphan(file_id: RollId, partition: int, generation: int, resume: int | None) -> bool:
    """Whether a data file belongs to a roll of this partition that has no manifest.

    Rolls of a partition are written one at a time, in offset order, each manifest last, so
    every file at or past the resume offset (or any file, when there is no manifest) is one.
    """
    if file_id.partition != partition or file_id.generation != generation:
        return False
    return resume is None or file_id.first >= resume


def orphans(lake_dir: Path, topic: str, partition: int, generation: int,
            resume: int | None) -> list[Path]:
    """Data files of ``topic``/``partition`` left by rolls that never got their manifest."""
    return sorted(path for path, file_id in data_files(lake_dir, topic)
                  if is_orphan(file_id, partition, generation, resume))


# --------------------------------------------------------------------------- audit
@dataclass
class Audit:
    """What :func:`audit` found; ``ok`` when the lake keeps all of its own rules."""

    manifests: int = 0
    records: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems


def audit(lake_dir: Path, topics: Iterable[str], *, check_hashes: bool = True) -> Audit:
    """Check the lake against its manifests.

    Every manifest parses and names itself; manifests of a partition do not overlap; every
    listed file exists with its size and sha256; every data file is listed by exactly one
    manifest (an unlisted one is an orphan still waiting for its roll to be rewritten).
    """
    result = Audit()
    for topic in topics:
        ids = manifest_ids(lake_dir, topic)
        result.problems += [f"overlapping manifests {a.stem} and {b.stem}"
                            for a, b in overlaps(ids)]
        listed: set[Path] = set()
        for roll_id in ids:
            path = manifest_dir(lake_dir, topic) / roll_id.manifest_name
            try:
                manifest = read(path)
            except (OSError, msgspec.MsgspecError) as e:
                result.problems.append(f"unreadable manifest {path}: {e}")
                continue
            result.manifests += 1
            result.records += manifest.records
            if manifest.roll_id != roll_id:
                result.problems.append(f"manifest {path} describes {manifest.roll_id}")
            for entry in manifest.files:
                file_path = lake_dir / entry.path
                listed.add(file_path)
                if not file_path.is_file():
                    result.problems.append(f"{path} lists missing file {entry.path}")
                    continue
                data = file_path.read_bytes() if check_hashes else b""
                if check_hashes and (len(data) != entry.bytes
                                     or hashlib.sha256(data).hexdigest() != entry.sha256):
                    result.problems.append(f"{entry.path} does not match its manifest")
        result.problems += [f"data file {path} has no manifest"
                            for path, _ in data_files(lake_dir, topic) if path not in listed]
    return result
