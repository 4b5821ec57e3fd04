"""The raw lake, read side: which files exist, which are new, and their lines as a Polars frame.

Two layouts are read:

* the lake writer's rolls: ``raw/_manifests/<topic>/*.json`` name the data files of a complete
  roll (the manifest is written last, so a data file without one is an incomplete roll and is
  never read). A roll is identified by its manifest path and the manifest's sha256, never by data
  file names, so renaming schemes of the writer do not matter;
* the user's old day files ``raw/<topic>/YYYY-MM-DD.jsonl`` (no manifest), identified by path
  and sha256 (an old file that changed is read again; loading is idempotent by event id).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

import polars as pl
from airline_core.logging import get_logger
from airline_core.topics import LAKE_TOPICS

from airline_etl import transform
from airline_etl.errors import LakeError

log = get_logger(__name__)

RAW: Final = "raw"
MANIFESTS: Final = "_manifests"
_OLD_DAY_FILE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}\.jsonl$")

#: A lake line: its text, where it is, and the contract's verdict on its bytes
#: (``contract_reason`` and ``reason_code`` are null for an accepted line).
LINE_SCHEMA: Final[dict[str, pl.DataType]] = {
    "line": pl.String(), "source_file": pl.String(), "line_number": pl.Int64(),
    "legacy": pl.Boolean(), "contract_reason": pl.String(), "reason_code": pl.String(),
}


@dataclass(frozen=True)
class DataFile:
    """One data file of a lake entry, as the manifest lists it (path relative to ``LAKE_DIR``)."""

    path: str
    records: int | None = None
    bytes: int | None = None
    sha256: str | None = None


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

    @property
    def legacy(self) -> bool:
        """Whether this is one of the user's old day files (events without ``event_id``)."""
        return self.kind == "legacy"


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
        body = json.loads(raw)
        files = tuple(
            DataFile(path=str(f["path"]), records=f.get("records"), bytes=f.get("bytes"),
                     sha256=f.get("sha256"))
            for f in body["files"]
        )
        records = body.get("records")
    except (ValueError, KeyError, TypeError) as e:
        raise LakeError(f"manifest {key} does not parse: {e}") from e
    for f in files:
        rel = PurePosixPath(f.path)
        if rel.is_absolute() or ".." in rel.parts:
            raise LakeError(f"manifest {key} names a file outside the lake: {f.path}")
    return LakeEntry(key=key, sha256=hashlib.sha256(raw).hexdigest(), topic=topic,
                     kind="manifest", files=files, records=records,
                     mtime_ns=path.stat().st_mtime_ns)


def discover(lake_dir: Path, topics: Iterable[str] = LAKE_TOPICS) -> list[LakeEntry]:
    """Every complete lake entry (manifests and old day files) of ``topics``, in a stable order."""
    entries: list[LakeEntry] = []
    for topic in map(str, topics):
        manifest_dir = lake_dir / RAW / MANIFESTS / topic
        if manifest_dir.is_dir():
            for path in sorted(manifest_dir.glob("*.json")):
                if not path.name.startswith("."):
                    entries.append(_manifest_entry(lake_dir, topic, path))
        topic_dir = lake_dir / RAW / topic
        if topic_dir.is_dir():
            for path in sorted(topic_dir.iterdir()):
                if path.is_file() and _OLD_DAY_FILE.match(path.name):
                    key = path.relative_to(lake_dir).as_posix()
                    entries.append(LakeEntry(
                        key=key, sha256=_sha256_file(path), topic=topic, kind="legacy",
                        files=(DataFile(path=key),), records=None,
                        mtime_ns=path.stat().st_mtime_ns))
    return entries


def new_entries(entries: Iterable[LakeEntry], loaded: set[tuple[str, str]]) -> list[LakeEntry]:
    """The entries whose (key, sha256) the warehouse has not recorded as loaded."""
    return [e for e in entries if (e.key, e.sha256) not in loaded]


def oldest_first(entries: Iterable[LakeEntry], limit: int) -> list[LakeEntry]:
    """The ``limit`` oldest entries (all when ``limit`` is 0), in discovery order.

    Oldest = completed first (modification time, then key: offsets in roll names are
    zero-padded, so a partition's rolls sort in offset order). Taking the oldest means every
    entry is eventually loaded while the writer keeps adding new ones; the order in which
    entries are loaded does not change the result (incremental equals full).
    """
    entries = list(entries)
    if limit <= 0 or len(entries) <= limit:
        return entries
    chosen = {id(e) for e in sorted(entries, key=lambda e: (e.mtime_ns, e.key))[:limit]}
    return [e for e in entries if id(e) in chosen]


def _lines_of(content: bytes, source_file: str, legacy: bool, topic: str) -> pl.DataFrame:
    """Every line of ``content`` as one row, with the contract's verdict on its exact bytes.

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
    return pl.DataFrame({
        "line": text, "source_file": [source_file] * len(raw),
        "line_number": list(range(1, len(raw) + 1)), "legacy": [legacy] * len(raw),
        "contract_reason": reasons, "reason_code": codes,
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
        frames.append(_lines_of(content, data.path, entry.legacy, entry.topic))
    lines = pl.concat(frames) if frames else pl.DataFrame(schema=LINE_SCHEMA)
    if entry.records is not None and lines.height != entry.records:
        log.warning("manifest record count differs from the lines read", manifest=entry.key,
                    manifest_records=entry.records, lines=lines.height)
    return lines


def read_topic(lake_dir: Path, entries: Iterable[LakeEntry]) -> Iterator[pl.DataFrame]:
    """Lines of each entry in turn (the caller concatenates or streams them)."""
    for entry in entries:
        yield read_entry(lake_dir, entry)
