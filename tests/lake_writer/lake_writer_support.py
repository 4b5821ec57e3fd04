"""Helpers for the lake writer's broker tests: topics, test events, running the writer as a
real process, reading back every topic, and checking the lake against them."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airline_core import config
from airline_core.events import (
    BookingCancelled,
    CabinInventoryMetrics,
    CabinInventorySnapshot,
    CheckInOpened,
    DeadLetter,
    Event,
    Passenger,
    PromotionEnded,
    SeatAssigned,
    decode_header,
    encode,
)
from airline_core.ids import derive_id
from airline_core.kafka import make_consumer, make_producer
from airline_core.topics import LAKE_TOPICS, Topic, physical_name
from airline_core.topics_cli import TopicsSettings, create
from airline_lake_writer import manifest as mf
from airline_lake_writer.rolls import expand_runs
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

WRITER = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "airline-lake-writer"
T0 = datetime(2025, 11, 27, 20, 0, tzinfo=UTC)
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
        kafka = config.from_values(config.KafkaSettings, {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "KAFKA_TOPIC_PREFIX": self.prefix},
            environ={})
        txn_id = f"{self.prefix}txn-{seed}" if transactional else None
        producer = make_producer(kafka, "lake-test", transactional_id=txn_id)
        if txn_id:
            producer.init_transactions(30)
            producer.begin_transaction()
        rng = random.Random(seed)
        for i in range(count):
            topic = LAKE_TOPICS[i % len(LAKE_TOPICS)]
            event = make_event(topic, f"{seed}-{i}", rng)
            producer.produce(physical_name(topic, self.prefix), encode(event), event.key)
            if i % 1000 == 999:
                producer.poll(0)
        for j, (topic, value) in enumerate(extra_values):
            producer.produce(physical_name(topic, self.prefix), value, f"X{j}".encode())
        if txn_id:
            if abort:
                producer.abort_transaction(30)
            else:
                producer.commit_transaction(30)
        assert producer.flush(120) == 0, "produce did not complete in 120 s"
        if not abort:
            self.produced += count + len(extra_values)


def make_event(topic: Topic, n: str, rng: random.Random) -> Event:
    """A valid event for ``topic`` with a deterministic id and a scattered event time."""
    flight = f"BA{rng.randrange(20):03d}_2025-11-30"
    common: dict[str, Any] = {"event_id": derive_id("lake-test", n), "flight_id": flight,
              "event_time": T0 + timedelta(minutes=rng.randrange(4 * 24 * 60))}
    passengers = [Passenger(passenger_id="p1", seat_id="12C", cabin_code="Y")]
    if topic == Topic.FLIGHT_LIFECYCLE:
        return CheckInOpened(**common)
    if topic == Topic.BOOKINGS:
        return BookingCancelled(**common, booking_id=n, fare_bucket="K", passengers=passengers)
    if topic == Topic.SEAT_INVENTORY:
        return CabinInventorySnapshot(**common, time_to_departure_minutes=600, cabins=[])
    if topic == Topic.SEAT_MAP:
        return SeatAssigned(**common, booking_id=n, passenger_id="p1", seat_id="12C", row=12,
                            letter="C", cabin_code="Y")
    if topic == Topic.INVENTORY_METRICS:
        return CabinInventoryMetrics(**common, booked_seats=1, total_seats=180,
                                     load_factor=0.01, minutes_to_departure=600)
    if topic == Topic.PROMO_DECISIONS:
        return PromotionEnded(**common, promo_id=n, decision_source="RULE_ENGINE",
                              reason="recovered")
    return DeadLetter(**common, source_topic="bookings", source_partition=0, source_offset=1,
                      reason="test", component="test", original_value_b64="e30=")


def make_source(kafka_bootstrap: str, prefix: str) -> Source:
    """Create the registry's topics (3 partitions each) under ``prefix`` on the broker."""
    settings = config.from_values(TopicsSettings, {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                                                   "KAFKA_TOPIC_PREFIX": prefix}, environ={})
    assert create(settings) == 0
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
    kafka = config.from_values(config.KafkaSettings, {
        "KAFKA_BOOTSTRAP_SERVERS": src.bootstrap, "KAFKA_TOPIC_PREFIX": src.prefix}, environ={})
    consumer = make_consumer(kafka, "lake-test-reader", f"{src.prefix}reader")
    partitions = [TopicPartition(physical_name(t, src.prefix), p, OFFSET_BEGINNING)
                  for t in LAKE_TOPICS for p in range(3)]
    ends = {(tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=10)[1]
            for tp in partitions}
    consumer.assign(partitions)
    records: dict[Coord, bytes | None] = {}
    deadline = time.monotonic() + 60
    try:
        while True:
            positions = consumer.position(partitions)
            if all(tp.offset >= ends[(tp.topic, tp.partition)] or
                   (tp.offset < 0 and ends[(tp.topic, tp.partition)] == 0) for tp in positions):
                return records
            assert time.monotonic() < deadline, "reading the topics back took over 60 s"
            for message in consumer.consume(1000, timeout=0.5):
                assert message.error() is None, message.error()
                topic = str(message.topic())[len(src.prefix):]
                records[(topic, int(message.partition() or 0), int(message.offset() or 0))] = \
                    message.value()
    finally:
        consumer.close()


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
                offsets = expand_runs(entry.offset_runs)
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
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                continue
