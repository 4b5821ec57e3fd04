"""Helpers for the lake writer's broker tests: topics, test events, running the writer as a
real process, reading back every topic, and checking the lake against them."""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from airline_core.events import decode_header, encode
from airline_core.lake import manifest as mf
from airline_core.topics import LAKE_TOPICS, Topic, physical_name
from airline_testkit import kafka as kit
from airline_testkit.events import lake_event
from airline_testkit.logs import json_logs

WRITER = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "airline-lake-writer"
Coord = tuple[str, int, int]  # (logical topic, partition, offset)


@dataclasses.dataclass
class Source:
    """A prefixed set of lake topics on the session broker, and what was produced to it."""

    bootstrap: str
    prefix: str
    produced: int = 0

    def env(self, lake_dir: Path, **extra: str) -> dict[str, str]:
        """Environment of a writer process on these topics and ``lake_dir``."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "KAFKA_TOPIC_PREFIX": self.prefix,
               "KAFKA_GROUP_ID": f"{self.prefix}lake", "LAKE_DIR": str(lake_dir),
               "METRICS_PORT": "0", "LOG_FORMAT": "json", "LAKE_ROLL_MAX_RECORDS": "50",
               "LAKE_IDLE_FLUSH_SECONDS": "1", "KAFKA_STATISTICS_INTERVAL_MS": "0"}
        env.update(extra)
        return env

    def produce(self, count: int, seed: int, *, transactional: bool = False,
                abort: bool = False,
                extra_values: tuple[tuple[Topic, bytes | None], ...] = ()) -> None:
        """Produce ``count`` valid events spread over every lake topic and several event dates
        (not monotonic), then ``extra_values`` as raw values; optionally in one transaction,
        optionally aborted (then none of it may ever land)."""
        def rows() -> Iterable[kit.Row]:
            rng = random.Random(seed)
            for i in range(count):
                topic = LAKE_TOPICS[i % len(LAKE_TOPICS)]
                event = lake_event(topic, f"{seed}-{i}", rng)
                yield physical_name(topic, self.prefix), event.key, encode(event), None
            for j, (topic, value) in enumerate(extra_values):
                yield physical_name(topic, self.prefix), f"X{j}".encode(), value, None

        kit.write_records(self.bootstrap, rows(), transactional=transactional, abort=abort,
                          transactional_id=f"{self.prefix}txn-{seed}", timeout=120)
        if not abort:
            self.produced += count + len(extra_values)


def make_source(kafka_bootstrap: str, prefix: str) -> Source:
    """Create the registry's topics (3 partitions each) under ``prefix`` on the broker."""
    kit.create_topics(kafka_bootstrap, prefix)
    return Source(kafka_bootstrap, prefix)


def run_writer(env: dict[str, str], *args: str, timeout: float = 120.0
               ) -> subprocess.CompletedProcess[str]:
    """Run the writer to completion (``--stop-when-idle`` in ``args`` or a crash point)."""
    try:
        return subprocess.run([str(WRITER), *args], env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"writer did not finish in {timeout}s; stderr tail:\n"
                             f"{(e.stderr or b'')[-3000:]!r}") from e


def start_writer(env: dict[str, str], *args: str, log: Path) -> subprocess.Popen[bytes]:
    """Start the writer in the background, its logs to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen([str(WRITER), *args], env=env, stdout=out, stderr=out)


def read_topics(src: Source) -> dict[Coord, bytes | None]:
    """Every committed record of every lake topic, by (logical topic, partition, offset)."""
    names = {physical_name(t, src.prefix): str(t) for t in LAKE_TOPICS}
    read = kit.read_to_end(src.bootstrap, names, kit.PARTITIONS)
    return {(names[name], p, r.offset): r.value for name, per_partition in read.items()
            for p, records in per_partition.items() for r in records}


@dataclasses.dataclass
class LakeContent:
    """Every line in the lake, by coordinate (each coordinate listed as often as it occurs)."""

    lines: list[tuple[Coord, bytes]]
    diverted: list[Coord]
    manifests: int


def read_lake(lake_dir: Path, generation: int | None = 0) -> LakeContent:
    """Read the lake through its manifests (of one generation, or all)."""
    lines: list[tuple[Coord, bytes]] = []
    diverted: list[Coord] = []
    count = 0
    for topic in LAKE_TOPICS:
        for roll_id in mf.manifest_ids(lake_dir, str(topic)):
            if generation is not None and roll_id.generation != generation:
                continue
            manifest = mf.read(mf.manifest_dir(lake_dir, str(topic)) / roll_id.manifest_name)
            count += 1
            for entry in manifest.files:
                data = (lake_dir / entry.path).read_bytes().split(b"\n")
                assert data[-1] == b"", f"{entry.path} does not end with a newline"
                offsets = mf.expand_runs(entry.offset_runs)
                assert len(offsets) == len(data) - 1 == entry.records
                lines += [((str(topic), manifest.partition, o), v)
                          for o, v in zip(offsets, data, strict=False)]
            diverted += [(str(topic), manifest.partition, d.offset) for d in manifest.diverted]
    return LakeContent(lines, diverted, count)


def assert_exactly_once(lake_dir: Path, topics: dict[Coord, bytes | None],
                        generation: int | None = 0) -> LakeContent:
    """The lake holds every record of the topics exactly once (by coordinate and by event id),
    byte for byte, and nothing else; the lake's own audit passes."""
    content = read_lake(lake_dir, generation)
    seen = Counter(coord for coord, _ in content.lines) + Counter(content.diverted)
    duplicated = [c for c, n in seen.items() if n > 1]
    assert not duplicated, f"{len(duplicated)} records landed twice, e.g. {duplicated[:5]}"
    missing = sorted(set(topics) - set(seen))
    assert not missing, f"{len(missing)} records never landed, e.g. {missing[:5]}"
    extra = sorted(set(seen) - set(topics))
    assert not extra, f"{len(extra)} lake records are not in the topics, e.g. {extra[:5]}"
    for coord, value in content.lines:
        assert value == topics[coord], f"{coord} differs from the topic's bytes"
    ids: Counter[str] = Counter()
    for _, value in content.lines:
        try:
            ids[decode_header(value).event_id] += 1
        except Exception:
            continue
    assert not [i for i, n in ids.items() if n > 1], "an event id landed twice"
    audit = mf.audit(lake_dir, [str(t) for t in LAKE_TOPICS])
    assert audit.ok, audit.problems[:10]
    return content


def log_events(text: str) -> Iterator[dict[str, object]]:
    """The JSON log lines of a writer's stderr."""
    yield from json_logs(text)
