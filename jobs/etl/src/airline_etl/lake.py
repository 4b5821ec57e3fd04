"""The raw lake, read side: which files exist, which are new, and their lines as a Polars frame.

Two layouts are read:

* the lake writer's rolls: ``raw/_manifests/<topic>/*.json`` (the layout and the manifest
  format are :mod:`airline_core.lake`, which the writer writes with) name the data files of a
  complete roll (the manifest is written last, so a data file without one is an incomplete
  roll and is never read). A roll is identified by its manifest path and the manifest's
  sha256, never by data file names, so renaming schemes of the writer do not matter;
* the user's old day files ``raw/<topic>/YYYY-MM-DD.jsonl`` (no manifest), identified by path
  and sha256 (an old file that changed is read again; loading is idempotent by event id).

Each line of a roll has a Kafka position: the roll's partition and source generation (from the
manifest) and its offset (the file's ``offset_runs``: line *i* has the *i*-th offset). The ETL
matches the engine's verdicts by position (:mod:`airline_etl.verdicts`). Old day files have no
positions.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

import msgspec
import polars as pl
from airline_core.lake import manifest as mf
from airline_core.lake.layout import manifest_dir, topic_dir
from airline_core.logging import get_logger
from airline_core.topics import LAKE_TOPICS

from airline_etl import transform
from airline_etl.errors import LakeError

log = get_logger(__name__)

_OLD_DAY_FILE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}\.jsonl$")

#: A lake line: its text, where it is, its Kafka position (null for old day files), and the
#: contract's verdict on its bytes (``contract_reason`` and ``reason_code`` are null for an
#: accepted line).
LINE_SCHEMA: Final[dict[str, pl.DataType]] = {
    "line": pl.String(), "source_file": pl.String(), "line_number": pl.Int64(),
    "legacy": pl.Boolean(), "contract_reason": pl.String(), "reason_code": pl.String(),
    "kafka_generation": pl.Int64(), "kafka_partition": pl.Int64(), "kafka_offset": pl.Int64(),
}
#: The columns of a line's Kafka position.
POSITION: Final = transform.POSITION


@dataclass(frozen=True)
class DataFile:
    """One data file of a lake entry, as the manifest lists it (path relative to ``LAKE_DIR``)."""

    path: str
    records: int | None = None
    bytes: int | None = None
    sha256: str | None = None
    #: ``[first, last]`` runs of consecutive offsets; line *i* has the *i*-th offset (None: the
    #: manifest does not say, so the file's lines have no positions).
    offset_runs: tuple[tuple[int, int], ...] | None = None

    @property
    def offsets(self) -> list[int] | None:
        """The Kafka offset of each line, in line order (None when unknown)."""
        if self.offset_runs is None:
            return None
        return mf.expand_runs(self.offset_runs)


@dataclass(frozen=True)
class LakeEntry:
    """A unit of loading: one manifest (a roll) or one old day file.

    ``key`` is the manifest's (or old file's) path relative to ``LAKE_DIR``; together with
    ``sha256`` it is what the warehouse records as loaded.
    """

    key: str
    sha256: str
    topic: str
    kind: str  # "manifest" or "legacy"
    files: tuple[DataFile, ...]
    records: int | None
    #: When the entry was completed (the manifest's, or old day file's, modification time):
    #: the order in which a capped run (``ETL_MAX_FILES_PER_RUN``) takes entries.
    mtime_ns: int = 0
    #: The roll's Kafka partition and source generation (None for old day files, or a
    #: manifest that does not say): with ``offset_runs``, each line's Kafka position.
    partition: int | None = None
    generation: int | None = None
    #: Bytes of its data files when discovered (an old day file's size; 0: not known).
    size: int = 0

    @property
    def legacy(self) -> bool:
        """Whether this is one of the user's old day files (events without ``event_id``)."""
        return self.kind == "legacy"

    @property
    def positioned(self) -> bool:
        """Whether the entry's lines have Kafka positions."""
        return (self.partition is not None and self.generation is not None
                and any(f.offset_runs for f in self.files))

    @property
    def offset_range(self) -> tuple[int, int] | None:
        """The lowest and highest offset of the entry's lines (None without positions)."""
        if not self.positioned:
            return None
        runs = [run for f in self.files for run in f.offset_runs or ()]
        return min(a for a, _ in runs), max(b for _, b in runs)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest_entry(lake_dir: Path, topic: str, path: Path) -> LakeEntry:
    raw = path.read_bytes()
    key = path.relative_to(lake_dir).as_posix()
    try:
        manifest = mf.decode(raw)
    except msgspec.MsgspecError as e:
        raise LakeError(f"manifest {key} does not parse: {e}") from e
    files = tuple(DataFile(path=f.path, records=f.records, bytes=f.bytes, sha256=f.sha256,
                           offset_runs=tuple(f.offset_runs)) for f in manifest.files)
    records, partition, generation = manifest.records, manifest.partition, manifest.generation
    for f in files:
        rel = PurePosixPath(f.path)
        if rel.is_absolute() or ".." in rel.parts:
            raise LakeError(f"manifest {key} names a file outside the lake: {f.path}")
    return LakeEntry(key=key, sha256=hashlib.sha256(raw).hexdigest(), topic=topic,
                     kind="manifest", files=files, records=records,
                     mtime_ns=path.stat().st_mtime_ns, partition=partition,
                     generation=generation, size=sum(f.bytes or 0 for f in files))


def discover(lake_dir: Path, topics: Iterable[str] = LAKE_TOPICS) -> list[LakeEntry]:
    """Every complete lake entry (manifests and old day files) of ``topics``, in a stable order."""
    entries: list[LakeEntry] = []
    for topic in map(str, topics):
        manifests = manifest_dir(lake_dir, topic)
        if manifests.is_dir():
            for path in sorted(manifests.glob("*.json")):
                if not path.name.startswith("."):
                    entries.append(_manifest_entry(lake_dir, topic, path))
        old_days = topic_dir(lake_dir, topic)
        if old_days.is_dir():
            for path in sorted(old_days.iterdir()):
                if path.is_file() and _OLD_DAY_FILE.match(path.name):
                    key = path.relative_to(lake_dir).as_posix()
                    stat = path.stat()
                    entries.append(LakeEntry(
                        key=key, sha256=_sha256_file(path), topic=topic, kind="legacy",
                        files=(DataFile(path=key),), records=None,
                        mtime_ns=stat.st_mtime_ns, size=stat.st_size))
    return entries


def new_entries(entries: Iterable[LakeEntry], loaded: set[tuple[str, str]]) -> list[LakeEntry]:
    """The entries whose (key, sha256) the warehouse has not recorded as loaded."""
    return [e for e in entries if (e.key, e.sha256) not in loaded]


#: Bytes per line an old day file is taken to hold when a run's record cap weighs it: it does
#: not say how many lines it has (a manifest does), and counting them would mean reading it.
LEGACY_BYTES_PER_RECORD = 256


def records_of(entry: LakeEntry) -> int:
    """The records ``entry`` holds (an old day file's estimated from its size)."""
    if entry.records is not None:
        return entry.records
    return max(entry.size // LEGACY_BYTES_PER_RECORD, 1)


def oldest_first(entries: Iterable[LakeEntry], limit: int, max_records: int = 0
                 ) -> list[LakeEntry]:
    """The oldest entries, at most ``limit`` of them and at most ``max_records`` records (0: no
    cap; the oldest entry is taken even when it alone holds more), in discovery order.

    Oldest = completed first (modification time, then key: offsets in roll names are
    zero-padded, so a partition's rolls sort in offset order). Taking the oldest means every
    entry is eventually loaded while the writer keeps adding new ones; the order in which
    entries are loaded does not change the result (incremental equals full).
    """
    entries = list(entries)
    oldest = sorted(entries, key=lambda e: (e.mtime_ns, e.key))
    if limit > 0:
        oldest = oldest[:limit]
    if max_records > 0:
        taken = 0
        for i, entry in enumerate(oldest):
            taken += records_of(entry)
            if taken > max_records and i > 0:
                oldest = oldest[:i]
                break
    if len(oldest) == len(entries):
        return entries
    chosen = {id(e) for e in oldest}
    return [e for e in entries if id(e) in chosen]


def _lines_of(content: bytes, source_file: str, legacy: bool, topic: str,
              position: tuple[int, int, Sequence[int]] | None = None) -> pl.DataFrame:
    """Every line of ``content`` as one row, with the contract's verdict on its exact bytes
    and, when ``position`` = (generation, partition, offsets) is given, its Kafka position.

    Nothing is skipped: an empty line is an empty record value, which the contract rejects
    (``empty_value``) exactly as the engine does. A rejected line's text is kept for
    ``etl_rejects`` with undecodable bytes and NUL replaced (U+FFFD), since Postgres text
    cannot hold them; an accepted line is valid UTF-8 without NUL by the contract.
    """
    raw = content.split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()  # the newline that ends the last line
    if legacy:  # the user's old day files may have been written with CRLF line ends
        raw = [line.removesuffix(b"\r") for line in raw]
    reasons, codes = transform.verdicts(raw, topic, legacy)
    text = [line.decode() if reason is None
            else line.decode("utf-8", "replace").replace("\x00", "\ufffd")
            for line, reason in zip(raw, reasons, strict=True)]
    n = len(raw)
    if position is None:
        generation: list[int | None] = [None] * n
        partition: list[int | None] = [None] * n
        offsets: Sequence[int | None] = [None] * n
    else:
        if len(position[2]) != n:
            raise LakeError(f"{source_file}: its manifest's offset_runs name {len(position[2])} "
                            f"offsets for {n} lines")
        generation, partition, offsets = [position[0]] * n, [position[1]] * n, position[2]
    return pl.DataFrame({
        "line": text, "source_file": [source_file] * n,
        "line_number": list(range(1, n + 1)), "legacy": [legacy] * n,
        "contract_reason": reasons, "reason_code": codes, "kafka_generation": generation,
        "kafka_partition": partition, "kafka_offset": offsets,
    }, schema=LINE_SCHEMA)


def read_entry(lake_dir: Path, entry: LakeEntry) -> pl.DataFrame:
    """The lines of every data file of ``entry``, checked against the manifest's size and hash."""
    frames = []
    for data in entry.files:
        path = lake_dir / data.path
        try:
            content = path.read_bytes()
        except OSError as e:
            raise LakeError(f"{entry.key}: cannot read data file {data.path}: {e}") from e
        if data.bytes is not None and len(content) != data.bytes:
            raise LakeError(f"{entry.key}: {data.path} has {len(content)} bytes, "
                            f"the manifest says {data.bytes}")
        if data.sha256 and hashlib.sha256(content).hexdigest() != data.sha256:
            raise LakeError(f"{entry.key}: {data.path} does not match the manifest's sha256")
        offsets = data.offsets
        position = (None if offsets is None or entry.partition is None
                    or entry.generation is None
                    else (entry.generation, entry.partition, offsets))
        frames.append(_lines_of(content, data.path, entry.legacy, entry.topic, position))
    lines = pl.concat(frames) if frames else pl.DataFrame(schema=LINE_SCHEMA)
    if entry.records is not None and lines.height != entry.records:
        log.warning("manifest record count differs from the lines read", manifest=entry.key,
                    manifest_records=entry.records, lines=lines.height)
    return lines


class EntryIndex:
    """Which entry holds a Kafka position, or a data file (to read lines loaded before again)."""

    def __init__(self, entries: Iterable[LakeEntry]) -> None:
        self._by_file: dict[str, LakeEntry] = {}
        ranges: dict[tuple[str, int, int], list[tuple[int, int, LakeEntry]]] = {}
        for entry in entries:
            for data in entry.files:
                self._by_file.setdefault(data.path, entry)
            span = entry.offset_range
            if span is not None:
                assert entry.partition is not None and entry.generation is not None
                ranges.setdefault((entry.topic, entry.partition, entry.generation), []).append(
                    (span[0], span[1], entry))
        self._ranges = {k: sorted(v, key=lambda r: (r[0], r[1])) for k, v in ranges.items()}
        self._starts = {k: [r[0] for r in v] for k, v in self._ranges.items()}

    def by_position(self, topic: str, partition: int, generation: int, offset: int
                    ) -> LakeEntry | None:
        """The entry whose lines include that Kafka position (None: not in the lake)."""
        key = (topic, partition, generation)
        spans = self._ranges.get(key)
        if not spans:
            return None
        i = bisect.bisect_right(self._starts[key], offset)
        # Ranges of one partition do not overlap; look back a little for ranges that start
        # before ``offset`` (a roll's files may leave gaps, so check the offsets themselves).
        for first, last, entry in reversed(spans[max(0, i - 4):i]):
            if first <= offset <= last and any(
                    a <= offset <= b for f in entry.files for a, b in f.offset_runs or ()):
                return entry
        return None

    def by_file(self, path: str) -> LakeEntry | None:
        """The entry that lists the data file ``path`` (None: not in the lake)."""
        return self._by_file.get(path)


def read_topic(lake_dir: Path, entries: Iterable[LakeEntry]) -> Iterator[pl.DataFrame]:
    """Lines of each entry in turn (the caller concatenates or streams them)."""
    for entry in entries:
        yield read_entry(lake_dir, entry)
