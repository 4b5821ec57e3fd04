"""Test lakes written without running the lake writer: what the ETL reads, in milliseconds.

Rolls are named and described with the lake writer's own naming and manifest structs
(:mod:`airline_core.lake.layout`, :mod:`airline_core.lake.manifest`), so a test lake has
exactly the layout the writer produces (one data file per event date per roll, each line's
offset in ``offset_runs``, the manifest written last) and follows it when it changes. The
user's old day files (``raw/<topic>/<day>.jsonl``) are written by :func:`write_legacy`.
Events usually come from :func:`airline_testkit.events.make_world`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from airline_core import events as ev
from airline_core.lake import manifest as mf
from airline_core.lake.layout import RollId, data_relpath, manifest_relpath

from airline_testkit.events import World

#: The date directory of a line that has no readable event time (as the writer files them).
UNDATED = "2025-11-20"


def _date(line: bytes) -> str:
    try:
        return str(json.loads(line)["event_time"])[:10]
    except (ValueError, KeyError, TypeError):
        return UNDATED


def write_roll(lake_dir: Path, topic: str, partition: int, first: int,
               lines: Sequence[bytes], *, manifest: bool = True, generation: int = 0,
               offsets: Sequence[int] | None = None,
               dates: Sequence[str] | None = None) -> Path:
    """Write one roll of ``lines`` (one data file per event date) and, last, its manifest
    (``manifest=False``: a roll the writer never finished); returns the manifest's path.

    Line *i* is the record at offset ``offsets[i]`` (default ``first + i``; a gap stands for a
    transaction marker or a diverted record); ``generation`` > 0 is a source after
    ``--new-source``; ``dates`` (one per line) spares decoding each line for its date."""
    at = list(offsets) if offsets is not None else [first + i for i in range(len(lines))]
    if len(at) != len(lines) or at != sorted(set(at)):
        raise ValueError(f"offsets must be increasing, one per line: {at[:10]}")
    roll = RollId(topic, partition, at[0] if at else first, at[-1] if at else first, generation)
    by_date: dict[str, list[tuple[int, bytes]]] = {}
    days = dates if dates is not None else [_date(line) for line in lines]
    for offset, line, day in zip(at, lines, days, strict=True):
        by_date.setdefault(day, []).append((offset, line))
    files = []
    for day, day_lines in sorted(by_date.items()):
        rel = data_relpath(roll, day)
        content = b"".join(line + b"\n" for _, line in day_lines)
        (lake_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (lake_dir / rel).write_bytes(content)
        day_offsets = [o for o, _ in day_lines]
        files.append(mf.ManifestFile(
            path=str(rel), date=day, records=len(day_lines), bytes=len(content),
            sha256=hashlib.sha256(content).hexdigest(), first_offset=day_offsets[0],
            last_offset=day_offsets[-1], offset_runs=list(mf.offset_runs(day_offsets))))
    path = lake_dir / manifest_relpath(roll)
    if manifest:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(mf.encode(mf.Manifest(
            format_version=mf.FORMAT_VERSION, topic=topic, partition=partition,
            first_offset=roll.first, last_offset=roll.last, generation=generation,
            records=len(lines), invalid_records=0, files=files, diverted=[],
            source=mf.ManifestSource(cluster_id="test-cluster", topic_id=f"id-{topic}",
                                     generation=generation),
            roll_reason="records")))
    return path


def write_world(lake_dir: Path, world: World, *, partition: int = 0, first: int = 0,
                roll_size: int = 1000) -> int:
    """Write every topic of ``world`` as rolls of ``roll_size`` events; returns manifests."""
    count = 0
    for topic, events in world.by_topic.items():
        lines = [ev.encode(e) for e in events]
        for i in range(0, len(lines), roll_size):
            write_roll(lake_dir, topic, partition, first + i, lines[i:i + roll_size])
            count += 1
    return count


#: What stands for a copy's number in a template world's ids (see :func:`write_copies`).
_TEMPLATE_TAG = "tpl"


def write_copies(lake_dir: Path, copies: int, *, flights: int = 1000,
                 bookings_per_flight: int = 16, roll_size: int = 50_000,
                 partitions: int = 3) -> int:
    """A big lake fast: one template world (every event type) encoded once, written
    ``copies`` times with the ids of each copy made distinct by byte replacement (the flight
    ids' tag, and the first 8 hex digits of every UUID), in the writer's layout (rolls of
    ``roll_size`` lines per partition, offsets consecutive). Returns the events written.

    The default 16 bookings per flight all happen before departure, so the lake has no
    rejects. Building millions of events one dataclass at a time would take minutes.
    """
    from airline_testkit.events import make_world

    world = make_world(flights=flights, bookings_per_flight=bookings_per_flight,
                       tag=_TEMPLATE_TAG)
    uuid = re.compile(rb'"[0-9a-f]{8}-([0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"')
    template = {topic: [uuid.sub(rb'"@@@@@@@@-\1"', ev.encode(e)) for e in events]
                for topic, events in world.by_topic.items()}
    dates = {topic: [_date(line) for line in lines] for topic, lines in template.items()}
    tag = f"_{_TEMPLATE_TAG}_".encode()
    next_offset: dict[tuple[str, int], int] = {}
    total = 0
    for c in range(copies):
        partition = c % partitions
        prefix, copy_tag = b'"%08x-' % c, b"_c%d_" % c
        for topic, lines in template.items():
            copy = [line.replace(b'"@@@@@@@@-', prefix).replace(tag, copy_tag)
                    for line in lines]
            for i in range(0, len(copy), roll_size):
                first = next_offset.get((topic, partition), 0)
                chunk = copy[i:i + roll_size]
                write_roll(lake_dir, topic, partition, first, chunk,
                           dates=dates[topic][i:i + roll_size])
                next_offset[(topic, partition)] = first + len(chunk)
            total += len(copy)
    return total


def write_legacy(lake_dir: Path, topic: str, day: str, records: Iterable[dict[str, Any]]) -> Path:
    """The user's old layout: ``raw/<topic>/<day>.jsonl``, events without id or version."""
    path = lake_dir / "raw" / topic / f"{day}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
    return path
