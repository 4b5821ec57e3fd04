"""The manifest of one of the writer's rolls (the format is :mod:`airline_core.lake.manifest`)."""

from __future__ import annotations

import hashlib

from airline_core.lake.manifest import (
    FORMAT_VERSION,
    DivertedRecord,
    Manifest,
    ManifestFile,
    ManifestSource,
)

from airline_lake_writer.rolls import Roll, RollFile


def file_entry(file: RollFile, content: bytes) -> ManifestFile:
    """The manifest entry of a data file whose exact bytes are ``content``."""
    return ManifestFile(path=str(file.relpath), date=file.date, records=file.records,
                        bytes=len(content), sha256=hashlib.sha256(content).hexdigest(),
                        first_offset=file.first_offset, last_offset=file.last_offset,
                        offset_runs=list(file.offset_runs))


def build_manifest(roll: Roll, files: list[ManifestFile], source: ManifestSource,
                   dead_letter_ids: dict[int, str] | None = None) -> Manifest:
    """The manifest of ``roll`` once its ``files`` are durable."""
    ids = dead_letter_ids or {}
    return Manifest(
        format_version=FORMAT_VERSION, topic=roll.id.topic, partition=roll.id.partition,
        first_offset=roll.id.first, last_offset=roll.id.last, generation=roll.id.generation,
        records=sum(f.records for f in files), invalid_records=roll.invalid_records,
        files=files,
        diverted=[DivertedRecord(d.offset, d.reason, ids.get(d.offset)) for d in roll.diverted],
        source=source, roll_reason=roll.reason)
