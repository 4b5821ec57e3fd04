"""``airline-dlq`` against the real broker: list, show, replay (exactly the selected originals,
to their partition, with the header; nothing on a second run or a dry run)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from airline_core import dlq_cli as cli
from airline_core import events as ev
from airline_core.config import KafkaSettings
from airline_core.contract import Reason, Rejection, read_record
from airline_core.dead_letter import dead_letter_for
from airline_core.topics import Topic, physical_name
from airline_core.topics_cli import TopicsSettings, create
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)

pytestmark = pytest.mark.kafka

T0 = datetime(2025, 11, 28, 10, tzinfo=UTC)
BOOKING = ev.BookingCreated(
    event_id="bk-dlq-1", event_time=T0, flight_id="BA7_2025-12-01", booking_id="b1",
    channel="WEB", fare_bucket="K", currency="GBP", total_price=Decimal("140.00"),
    passengers=[ev.Passenger(passenger_id="p1", seat_id="1A", cabin_code="Y")])

#: name -> (topic, partition, key, value, headers, component, rejection or None: the contract's)
SOURCES: dict[str, tuple[Topic, int, bytes | None, bytes | None, list[tuple[str, bytes]], str,
                         Rejection | None]] = {
    "bad_json": (Topic.BOOKINGS, 0, b"BA1_x", b"{not json", [("trace", b"t-1")],
                 "airline-engine", None),
    "invalid": (Topic.BOOKINGS, 2, b"BA2_x", b'{"event_type":"BookingCreated"}', [],
                "airline-engine", None),
    # valid by the contract, rejected by an engine rule: what a fix makes acceptable
    "unknown_flight": (Topic.BOOKINGS, 1, BOOKING.key, ev.encode(BOOKING), [],
                       "airline-engine", Rejection(Reason.UNKNOWN_FLIGHT, "no FlightScheduled")),
    "oversized": (Topic.SEAT_MAP, 1, b"BA3_x", b'{"pad":"' + b"x" * 70_000 + b'"}', [],
                  "airline-engine", None),
    "tombstone": (Topic.SEAT_MAP, 0, b"BA4_x", None, [], "lake-writer", None),
}


@dataclass
class World:
    """Source records on their topics, their envelopes on dead_letter, the flags to reach them."""

    bootstrap: str
    prefix: str
    envelopes: dict[str, ev.DeadLetter]

    @property
    def flags(self) -> list[str]:
        return ["--bootstrap-servers", self.bootstrap, "--topic-prefix", self.prefix,
                "--log-format", "json", "--timeout-seconds", "30"]

    def name(self, topic: Topic) -> str:
        return physical_name(topic, self.prefix)


def read_partition(bootstrap: str, topic: str, partition: int, timeout: float = 30.0
                   ) -> list[Message]:
    """Every committed record of one partition, in offset order, to its high watermark (asked
    read_uncommitted: the last stable offset can lag a transaction committed just before)."""
    marks = Consumer({"bootstrap.servers": bootstrap, "group.id": "test-dlq-reader",
                      "isolation.level": "read_uncommitted"})
    end = marks.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
    marks.close()
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "test-dlq-reader",
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "enable.partition.eof": True, "fetch.wait.max.ms": 10})
    try:
        if end == 0:
            return []
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        records: list[Message] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in consumer.consume(100, timeout=0.2):
                error = msg.error()
                if error is None:
                    records.append(msg)
                elif error.code() == KafkaError._PARTITION_EOF and (msg.offset() or 0) >= end:
                    return records
                else:
                    raise AssertionError(f"reading {topic}[{partition}]: {error}")
        raise AssertionError(f"{topic}[{partition}] not read to offset {end} in {timeout}s")
    finally:
        consumer.close()


def snapshot(world: World) -> dict[tuple[str, int], list[tuple[int, bytes | None,
                                                                bytes | None, list[Any]]]]:
    """(offset, key, value, headers) of every record of the source topics."""
    return {(str(t), p): [(int(m.offset() or 0), m.key(), m.value(), list(m.headers() or []))
                          for m in read_partition(world.bootstrap, world.name(t), p)]
            for t in (Topic.BOOKINGS, Topic.SEAT_MAP) for p in range(3)}


@pytest.fixture
def world(kafka_bootstrap: str, unique_name: Callable[[str], str]) -> World:
    prefix = unique_name("dlq") + "."
    create(TopicsSettings(kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap,
                                              topic_prefix=prefix), partitions=3))
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 5})
    for topic, partition, key, value, headers, _, _ in SOURCES.values():
        # an accepted record before and after each rejected one, as in a real partition
        producer.produce(physical_name(topic, prefix), value=b"{}", key=key, partition=partition)
        wire: list[tuple[str, str | bytes | None]] = list(headers)
        producer.produce(physical_name(topic, prefix), value=value, key=key, partition=partition,
                         headers=wire)
        producer.produce(physical_name(topic, prefix), value=b"{}", key=key, partition=partition)
    assert producer.flush(30) == 0
    envelopes: dict[str, ev.DeadLetter] = {}
    for name, (topic, partition, key, value, _, component, rejection) in SOURCES.items():
        (message,) = [m for m in read_partition(kafka_bootstrap, physical_name(topic, prefix),
                                                partition) if m.value() == value]
        verdict = rejection or read_record(topic, key, value)
        assert isinstance(verdict, Rejection), name
        envelopes[name] = dead_letter_for(message, str(topic), verdict, component,
                                          fallback_time=T0)
    assert envelopes["oversized"].original_truncated
    dead_letter = physical_name(Topic.DEAD_LETTER, prefix)
    for i, envelope in enumerate(envelopes.values()):
        producer.produce(dead_letter, value=ev.encode(envelope), key=envelope.key,
                         partition=i % 3)
    producer.produce(dead_letter, value=ev.encode(envelopes["bad_json"]), partition=2)  # again
    producer.produce(dead_letter, value=b"not an envelope", partition=1)
    assert producer.flush(30) == 0
    return World(kafka_bootstrap, prefix, envelopes)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = cli.main(argv)
    return code, capsys.readouterr().out.splitlines()


def test_list_prints_each_envelope_once_and_counts(world: World,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(["list", *world.flags], capsys)
    assert code == 0
    assert out[0].startswith("time ")
    lines = out[1:1 + len(world.envelopes)]
    assert sorted(line.split()[-1] for line in lines) == sorted(
        e.event_id for e in world.envelopes.values())
    bad = world.envelopes["bad_json"]
    assert cli.line_of(bad) in lines
    assert f"{bad.source_topic}[0]@{bad.source_offset}" in cli.line_of(bad)
    summary = out[out.index("") + 1:]
    assert summary[0] == "5 dead letters; 7 records on the topic, 1 duplicate, 1 not a dead letter"
    assert f"  {'bookings':<24}{3:>8}" in summary and f"  {'seat_map':<24}{2:>8}" in summary
    assert f"  {'not_json':<24}{1:>8}" in summary

    code, out = run(["list", "--topic", "bookings", "--reason", "not_json", "--reason",
                     "unknown_flight", "--json", *world.flags], capsys)
    assert code == 0
    rows = [json.loads(line) for line in out]
    assert sorted(r["event_id"] for r in rows[:-1]) == sorted(
        world.envelopes[n].event_id for n in ("bad_json", "unknown_flight"))
    assert rows[-1]["summary"]["dead_letters"] == 2
    assert rows[-1]["summary"]["by_reason"] == {"not_json": 1, "unknown_flight": 1}

    code, out = run(["list", "--component", "lake-writer", "--limit", "1", *world.flags], capsys)
    assert code == 0 and world.envelopes["tombstone"].event_id in out[1]
    assert out[3].startswith("1 dead letter;")


def test_show_decodes_one_envelope_and_judges_it_now(world: World,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    bad = world.envelopes["bad_json"]
    code, out = run(["show", bad.event_id, *world.flags], capsys)
    assert code == 0
    assert f"{'event_id':<20}{bad.event_id}" in out
    assert f"{'source':<20}bookings[0]@{bad.source_offset}" in out
    assert f"{'key (text)':<20}BA1_x" in out and f"{'value (text)':<20}{{not json" in out
    assert f"{'header (text)':<20}trace = t-1" in out
    assert any(line.startswith(f"{'contract now':<20}rejected: not_json: ") for line in out)

    fixed = world.envelopes["unknown_flight"]
    code, out = run(["show", fixed.event_id[:13], *world.flags], capsys)  # a unique prefix
    assert code == 0
    assert f"{'reason_code':<20}unknown_flight" in out
    assert any(line.startswith(f"{'contract now':<20}accepted: BookingCreated bk-dlq-1")
               for line in out)

    assert cli.main(["show", "no-such-id", *world.flags]) == 1
    assert "'no-such-id' matches no dead letters" in capsys.readouterr().err


def test_replay_writes_exactly_the_selected_originals_once(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    selection = ["--topic", "bookings", "--reason", "not_json", "--reason", "unknown_flight"]
    before = snapshot(world)

    code, out = run(["replay", *selection, "--dry-run", *world.flags], capsys)
    assert code == 0
    assert sum(line.startswith("would replay ") for line in out) == 2
    assert out[-1] == ("dry run: would replay 2 of 2 selected dead letters; nothing was "
                       "written")
    assert snapshot(world) == before, "a dry run wrote something"

    code, out = run(["replay", *selection, *world.flags], capsys)
    assert code == 0, out
    assert out[-1] == "replayed 2 of 2 selected dead letters"
    after = snapshot(world)
    bad, fixed = world.envelopes["bad_json"], world.envelopes["unknown_flight"]
    new = {where: records[len(before[where]):] for where, records in after.items()}
    assert {where: [(k, v, h) for _, k, v, h in records] for where, records in new.items()
            if records} == {
        ("bookings", 0): [(b"BA1_x", b"{not json",
                           [("trace", b"t-1"), ("airline-replay-of", bad.event_id.encode())])],
        ("bookings", 1): [(BOOKING.key, ev.encode(BOOKING),
                           [("airline-replay-of", fixed.event_id.encode())])],
    }
    landed = new[("bookings", 0)][0][0]
    assert (f"replayed     {bad.event_id}  bookings[0]@{bad.source_offset} -> "
            f"bookings[0]@{landed}") in out

    code, out = run(["replay", *selection, *world.flags], capsys)
    assert code == 0
    assert out[-1] == ("replayed 0 of 2 selected dead letters; skipped 2 (2 already replayed)")
    assert f"already replayed as bookings[0]@{landed}" in out[0] + out[1]
    assert snapshot(world) == after, "a second replay wrote something"


def test_replay_refuses_truncated_originals_and_restores_tombstones(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(world)
    code, out = run(["replay", "--topic", "seat_map", *world.flags], capsys)
    assert code == 0
    big, tomb = world.envelopes["oversized"], world.envelopes["tombstone"]
    assert any(line.startswith(f"skipped      {big.event_id}") and "truncated" in line
               for line in out)
    assert out[-1] == "replayed 1 of 2 selected dead letters; skipped 1 (1 truncated)"
    after = snapshot(world)
    assert after[("seat_map", 1)] == before[("seat_map", 1)], "a truncated original was replayed"
    (replayed,) = after[("seat_map", 0)][len(before[("seat_map", 0)]):]
    assert replayed[1:] == (b"BA4_x", None, [("airline-replay-of", tomb.event_id.encode())])


def test_a_prefix_without_topics_exits_1(kafka_bootstrap: str, unique_name: Callable[[str], str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    prefix = unique_name("dlqnone") + "."
    code = cli.main(["list", "--bootstrap-servers", kafka_bootstrap, "--topic-prefix", prefix,
                     "--log-format", "json"])
    assert code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"topic {prefix}dead_letter does not exist" in json.loads(line)["error"]
