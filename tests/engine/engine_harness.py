"""Helpers of the engine's integration tests: topics, input data, engine runs, output reads."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from airline_core import events as ev
from airline_core.topics import Topic, physical_name
from airline_testkit import kafka as kit
from airline_testkit.logs import json_logs

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ENGINE = str(Path(sys.executable).with_name("airline-engine"))
OUTPUTS = (Topic.INVENTORY_METRICS, Topic.PROMO_DECISIONS, Topic.DEAD_LETTER,
           Topic.ENGINE_STATE_CHANGELOG)
Raw = tuple[Topic, bytes | None, bytes | None, int]  # a hand-made (topic, key, value, partition)


def create_topics(bootstrap: str, prefix: str, partitions: int = 3) -> None:
    """Every registry topic under ``prefix`` (the testkit's topic factory)."""
    kit.create_topics(bootstrap, prefix, partitions)


def produce_events(bootstrap: str, prefix: str, items: Iterable[tuple[Topic, Any]],
                   partition_of: Mapping[str, int] | None = None, partitions: int = 3,
                   raw: Iterable[Raw] = ()) -> int:
    """Produce events (key = flight id) in one transaction; ``raw`` adds hand-made records
    (topic, key, value, partition). Flights go to ``partition_of`` or a stable hash."""
    def rows() -> Iterable[kit.Row]:
        for topic, event in items:
            part = (partition_of or {}).get(event.flight_id)
            if part is None:
                part = sum(event.flight_id.encode()) % partitions
            yield physical_name(topic, prefix), event.key, ev.encode(event), part
        for topic, key, value, part in raw:
            yield physical_name(topic, prefix), key, value, part

    return len(kit.write_records(bootstrap, rows(), transactional_id=f"test-feeder-{prefix}"))


@dataclass
class Run:
    """One engine process run."""

    returncode: int
    logs: list[dict[str, Any]] = field(default_factory=list)
    stderr: str = ""

    def summary(self) -> dict[str, Any]:
        """The ``engine stopped`` log record (empty if the process was killed)."""
        for record in self.logs:
            if record.get("event") == "engine stopped":
                return record
        return {}


def run_engine(bootstrap: str, prefix: str, *, crash_at: str = "", instance: str = "engine-0",
               idle: float = 1.5, extra_env: Mapping[str, str] | None = None,
               timeout: float = 120.0, background: bool = False) -> Any:
    """Run ``airline-engine`` to completion (or its crash); ``background`` returns the Popen."""
    env = dict(os.environ)
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_TOPIC_PREFIX": prefix,
        "KAFKA_GROUP_ID": f"{prefix}engine", "KAFKA_GROUP_INSTANCE_ID": instance,
        "METRICS_PORT": "0", "LOG_FORMAT": "json", "ENGINE_COMMIT_INTERVAL_MS": "300",
        "KAFKA_SESSION_TIMEOUT_MS": "6000", "STOP_WHEN_IDLE_SECONDS": str(idle),
        "AIRLINE_CRASH_AT": crash_at,
        # The runtime's tests pin the pace policy (its decisions on the synthetic input are
        # known); the revenue policy on Kafka: tests/evaluator/test_evaluator_live.py.
        "ENGINE_POLICY": "pace",
    })
    env.update(extra_env or {})
    proc = subprocess.Popen([ENGINE], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    if background:
        return proc
    return finish(proc, timeout)


def finish(proc: subprocess.Popen[str], timeout: float = 120.0) -> Run:
    """Wait for a background run and parse its JSON logs."""
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
        raise AssertionError(f"engine did not finish in {timeout}s:\n{stderr[-4000:]}") from None
    return Run(proc.returncode, json_logs(stderr), stderr)


def read_topics(bootstrap: str, names: list[str], partitions: int = 3, timeout: float = 30.0,
                isolation: str = "read_committed"
                ) -> dict[str, dict[int, list[tuple[bytes | None, bytes | None]]]]:
    """Every record of the topics, (key, value) in offset order per partition (the testkit's
    read to the end)."""
    read = kit.read_to_end(bootstrap, names, partitions, isolation=isolation, timeout=timeout)
    return {name: {p: kit.pairs(records) for p, records in per_partition.items()}
            for name, per_partition in read.items()}


def read_topic(bootstrap: str, name: str, partitions: int = 3, timeout: float = 30.0,
               isolation: str = "read_committed"
               ) -> dict[int, list[tuple[bytes | None, bytes | None]]]:
    """Every record of one topic (see :func:`read_topics`)."""
    return read_topics(bootstrap, [name], partitions, timeout, isolation)[name]


def read_outputs(bootstrap: str, prefix: str, partitions: int = 3
                 ) -> dict[str, dict[int, list[tuple[bytes | None, bytes | None]]]]:
    """Committed records of every engine output (the changelog compacted to latest per key)."""
    names = [physical_name(t, prefix) for t in OUTPUTS]
    read = read_topics(bootstrap, names, partitions)
    result = {}
    for topic, name in zip(OUTPUTS, names, strict=True):
        records = read[name]
        if topic is Topic.ENGINE_STATE_CHANGELOG:
            records = {p: sorted(dict(items).items()) for p, items in records.items()}
        result[str(topic)] = records
    return result


# --------------------------------------------------------------------------- the test input
UNKNOWN_FLIGHT = "XX999_2025-12-24"
PARTITIONS = 3


def partition_of(flight_id: str) -> int:
    """Where the tests put a flight (stable, independent of the client's partitioner)."""
    return sum(flight_id.encode()) % PARTITIONS


def dataset(flights: int = 12, seed: int = 11) -> tuple[list[tuple[Topic, Any]], list[Raw]]:
    """Synthetic flights plus bad input: a booking of a flight never scheduled (early in event
    time, so it expires to dead_letter), and raw records that do not decode or validate."""
    from datetime import timedelta

    from airline_testkit.synthetic import START, generate

    items = generate(flights=flights, seed=seed)
    orphan = ev.BookingCreated(
        event_id="orphan-booking", event_time=START + timedelta(days=2), flight_id=UNKNOWN_FLIGHT,
        booking_id="orphan", channel="WEB", fare_bucket="K", currency="GBP",
        total_price=Decimal("140.00"),
        passengers=[ev.Passenger(passenger_id="p", seat_id="1A", cabin_code="Y")])
    items.append((Topic.BOOKINGS, orphan))
    items.sort(key=lambda item: item[1].event_time)
    scheduled = ev.encode(next(e for _, e in items if isinstance(e, ev.FlightScheduled)))
    raw: list[Raw] = [
        (Topic.BOOKINGS, b"BA1_x", b"{not json", 0),
        (Topic.BOOKINGS, b"BA1_x", scheduled, 1),  # a FlightScheduled on the bookings topic
        (Topic.SEAT_INVENTORY, b"BA2_x", b'{"event_type":"CabinInventorySnapshot"}', 2),
        (Topic.FLIGHT_LIFECYCLE, b"BA3_x",
         scheduled.replace(f'"schema_version":"{ev.SCHEMA_VERSION}"'.encode(),
                          b'"schema_version":"2.0"'), 0),
    ]
    return items, raw


def load_dataset(bootstrap: str, prefix: str, flights: int = 12) -> int:
    """Create topics under ``prefix`` and write the test input; returns the record count."""
    create_topics(bootstrap, prefix, PARTITIONS)
    items, raw = dataset(flights)
    parts = {event.flight_id: partition_of(event.flight_id) for _, event in items}
    return produce_events(bootstrap, prefix, items, parts, PARTITIONS, raw)


def _state(key: Any, value: bytes) -> Any:
    """A changelog value: a flight's state, or the partition's learned price response."""
    from airline_engine.response import RESPONSE_KEY, decode_stats
    from airline_engine.state import decode_record

    name = key.decode() if isinstance(key, bytes) else key
    return decode_stats(value) if name == RESPONSE_KEY else decode_record(value).flight


def flight_states(changelog: dict[int, list[tuple[bytes | None, bytes | None]]]
                  ) -> dict[str, Any]:
    """The last state of each flight in a changelog read, leaving out the price-response key."""
    from airline_engine.response import RESPONSE_KEY
    from airline_engine.state import decode_record

    return {(k or b"").decode(): decode_record(v).flight
            for items in changelog.values() for k, v in items
            if v is not None and (k or b"").decode() != RESPONSE_KEY}


def comparable(outputs: dict[str, dict[int, list[tuple[bytes | None, bytes | None]]]]
               ) -> dict[str, Any]:
    """Outputs with the changelog reduced to flight states (its offsets depend on where the
    commits fell, which legitimately differs between runs)."""

    result: dict[str, Any] = dict(outputs)
    # A record that never decoded has no event time of its own: its envelope takes the Kafka
    # timestamp of when the test wrote it, which differs between two loads of the same data.
    # dead_letter is not co-partitioned: envelopes from several input partitions share one
    # partition, so their relative order is not defined (each input partition's is).
    result["dead_letter"] = {
        p: sorted(((k, msgspec.structs.replace(ev.decode("dead_letter", v), event_time=EPOCH))
                   for k, v in items), key=lambda kv: kv[1].event_id)
        for p, items in outputs["dead_letter"].items()}
    result["engine_state_changelog"] = {
        p: [(k, None if v is None else _state(k, v)) for k, v in items]
        for p, items in outputs["engine_state_changelog"].items()}
    return result
