"""The lake on disk: resume positions from manifests, orphan clean-up, and landing rolls.

Landing a roll is the ordered sequence the guarantee rests on: every data file durable
(temporary name, fsync, rename, fsync the directory), then the manifest the same way, and only
after that may the caller commit offsets. Named crash points sit between the steps.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from airline_core.crash import crash_point
from airline_core.lake import manifest as mf
from airline_core.lake.layout import manifest_dir, manifest_relpath, tmp_belongs_to, topic_dir
from airline_core.logging import get_logger

from airline_lake_writer.durable import delete_durable, is_tmp, write_durable
from airline_lake_writer.manifest import build_manifest, file_entry
from airline_lake_writer.metrics import (
    BYTES,
    DIVERTED,
    FILES,
    INVALID,
    ORPHANS_DELETED,
    RECORDS,
    ROLL_SECONDS,
    ROLLS,
)
from airline_lake_writer.rolls import Roll

log = get_logger(__name__)

#: Crash points, in the order a roll passes them (``AIRLINE_CRASH_AT=<point>[@<n>]``).
CRASH_POINTS = (
    "lake.mid_buffer",  # a record was consumed into a buffer that is not yet a roll
    "lake.before_rename",  # a data file's temporary copy is fsynced, not yet renamed
    "lake.mid_roll",  # a data file is durable, the roll's other files/manifest are not
    "lake.before_manifest",  # all data files durable, no manifest yet
    "lake.manifest_before_rename",  # manifest temporary copy fsynced, not renamed
    "lake.before_commit",  # manifest durable, offsets not committed
    "lake.after_commit",  # offsets committed
)


class LakeStore:
    """Reads and writes one lake directory for one source generation."""

    def __init__(self, lake_dir: Path, generation: int, cluster_id: str,
                 topic_ids: Mapping[str, str]) -> None:
        self.lake_dir = lake_dir
        self.generation = generation
        self._cluster_id = cluster_id
        self._topic_ids = dict(topic_ids)

    def resume(self, topic: str, partitions: Iterable[int]) -> dict[int, int | None]:
        """Where each partition of ``topic`` resumes (``None``: from the beginning), after
        deleting the files and temporary files of rolls that never got their manifest."""
        ids = mf.manifest_ids(self.lake_dir, topic)
        wanted = sorted(set(partitions))
        result = {p: mf.resume_offset(ids, p, self.generation) for p in wanted}
        doomed: list[Path] = []
        for path, file_id in mf.data_files(self.lake_dir, topic):
            if file_id.partition in result and mf.is_orphan(
                    file_id, file_id.partition, self.generation, result[file_id.partition]):
                doomed.append(path)
        orphan_count = len(doomed)
        doomed += self._tmp_files(topic, wanted)
        if doomed:
            delete_durable(doomed)
            ORPHANS_DELETED.labels(topic).inc(orphan_count)
            log.info("deleted files of unfinished rolls", topic=topic, orphans=orphan_count,
                     temporary=len(doomed) - orphan_count)
        return result

    def _tmp_files(self, topic: str, partitions: list[int]) -> list[Path]:
        found = []
        for directory in (manifest_dir(self.lake_dir, topic), *self._date_dirs(topic)):
            if not directory.is_dir():
                continue
            found += [entry for entry in directory.iterdir()
                      if is_tmp(entry.name)
                      and any(tmp_belongs_to(entry.name, topic, p) for p in partitions)]
        return found

    def _date_dirs(self, topic: str) -> list[Path]:
        root = topic_dir(self.lake_dir, topic)
        if not root.is_dir():
            return []
        return [d for d in root.iterdir() if d.is_dir() and d.name.startswith("date=")]

    def land(self, roll: Roll, dead_letter_ids: Mapping[int, str] | None = None) -> mf.Manifest:
        """Make ``roll`` durable: its data files, then its manifest (raises LakeStorageError).

        Idempotent: landing the same roll again (after a failure or crash) replaces the same
        names with the same bytes.
        """
        started = time.perf_counter()
        entries = []
        for file in roll.files:
            content = file.content()
            write_durable(self.lake_dir / file.relpath, content, crash_name="lake.before_rename")
            entries.append(file_entry(file, content))
            crash_point("lake.mid_roll")
        crash_point("lake.before_manifest")
        source = mf.ManifestSource(self._cluster_id, self._topic_ids.get(roll.id.topic, ""),
                                   self.generation)
        manifest = build_manifest(roll, entries, source, dict(dead_letter_ids or {}))
        write_durable(self.lake_dir / manifest_relpath(roll.id), mf.encode(manifest),
                      crash_name="lake.manifest_before_rename")
        topic = roll.id.topic
        RECORDS.labels(topic).inc(manifest.records)
        BYTES.labels(topic).inc(sum(f.bytes for f in entries))
        FILES.labels(topic).inc(len(entries))
        ROLLS.labels(topic, roll.reason).inc()
        INVALID.labels(topic).inc(roll.invalid_records)
        DIVERTED.labels(topic).inc(len(roll.diverted))
        ROLL_SECONDS.observe(time.perf_counter() - started)
        return manifest
