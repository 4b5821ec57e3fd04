"""On the real broker: determinism (two runs, one seed, byte-identical per partition) and
restart (the producer killed mid-run, several times, then restarted: the topics hold exactly the
events of an uninterrupted run, no duplicates, nothing lost)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable

import pytest
from airline_core.config import KafkaSettings
from airline_core.events import decode, encode
from airline_core.kafka import make_admin, make_consumer
from airline_core.lifecycle import StopSignal
from airline_core.topics import Topic, physical_name
from airline_producer.app import run
from airline_producer.kafka_sink import PRODUCED_TOPICS, tick_of
from airline_producer.simulation import Simulation
from confluent_kafka import KafkaError, TopicPartition
from confluent_kafka.admin import NewTopic
from producer_support import check_stream, small_settings

pytestmark = pytest.mark.kafka

PARTITIONS = 3
RUN = {"seed": 7, "flights": 10, "days": 2, "booking_horizon_days": 21,
       "snapshot_interval_minutes": 720, "transaction_max_ticks": 24}

Records = dict[tuple[str, int], list[tuple[bytes, bytes, int | None]]]


def create_topics(bootstrap: str, prefix: str) -> KafkaSettings:
    """The producer's topics (and promo_decisions) under ``prefix``, 3 partitions each."""
    admin = make_admin(KafkaSettings(bootstrap_servers=bootstrap))
    names = [physical_name(t, prefix) for t in (*PRODUCED_TOPICS, Topic.PROMO_DECISIONS)]
    futures = admin.create_topics([NewTopic(n, num_partitions=PARTITIONS, replication_factor=1)
                                   for n in names])
    for future in futures.values():
        future.result(30)
    return KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix)


def read_all(kafka: KafkaSettings) -> Records:
    """Every committed record of the producer's topics, per (logical topic, partition)."""
    consumer = make_consumer(kafka, "producer-test", f"producer-test-{kafka.topic_prefix}",
                             extra={"enable.partition.eof": True})
    parts = [TopicPartition(physical_name(t, kafka.topic_prefix), p, 0)
             for t in PRODUCED_TOPICS for p in range(PARTITIONS)]
    consumer.assign(parts)
    records: Records = defaultdict(list)
    pending = {(tp.topic, tp.partition) for tp in parts}
    try:
        while pending:
            message = consumer.poll(30)
            assert message is not None, f"no EOF within 30 s on {sorted(pending)}"
            if message.error():
                assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
                pending.discard((message.topic(), message.partition()))
                continue
            topic = message.topic()[len(kafka.topic_prefix):]
            records[(topic, message.partition())].append(
                (message.key(), message.value(), tick_of(message.headers())))
    finally:
        consumer.close()
    return dict(records)


def per_key(records: Records) -> dict[tuple[str, bytes], list[bytes]]:
    """Values per (topic, key) in partition order: what per-key ordering promises."""
    result: dict[tuple[str, bytes], list[bytes]] = defaultdict(list)
    for (topic, _), items in sorted(records.items()):
        for key, value, _ in items:
            result[(topic, key)].append(value)
    return dict(result)


def expected_per_key() -> dict[tuple[str, bytes], list[bytes]]:
    """The uninterrupted in-process run of the same settings, per (topic, key)."""
    result: dict[tuple[str, bytes], list[bytes]] = defaultdict(list)
    for tick in Simulation(small_settings(**RUN)).run():
        for topic, event in tick.events:
            result[(topic.value, event.key)].append(encode(event))
    return dict(result)


def test_two_runs_one_seed_byte_identical(kafka_bootstrap: str,
                                          unique_name: Callable[[str], str]) -> None:
    streams = []
    for _ in range(2):
        kafka = create_topics(kafka_bootstrap, unique_name("prod") + "-")
        config = small_settings(**RUN, kafka=kafka, metrics_port=0,
                                transactional_id=unique_name("prod-tx"))
        assert run(config, StopSignal()) == 0
        streams.append(read_all(kafka))
    first, second = streams
    assert first.keys() == second.keys()
    for part in first:
        assert [r[:2] for r in first[part]] == [r[:2] for r in second[part]], \
            f"partition {part} differs between two runs of one seed"
    assert per_key(first) == expected_per_key()


def test_killed_and_restarted_equals_uninterrupted(kafka_bootstrap: str,
                                                  unique_name: Callable[[str], str]) -> None:
    kafka = create_topics(kafka_bootstrap, unique_name("prodcrash") + "-")
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "KAFKA_TOPIC_PREFIX": kafka.topic_prefix, "METRICS_PORT": "0", "LOG_FORMAT": "json",
           "PRODUCER_TRANSACTIONAL_ID": unique_name("prodcrash-tx"),
           **{f"PRODUCER_{k.upper()}": str(v) for k, v in RUN.items()}}
    crashes = ["producer.mid_tick@30", "producer.before_commit@3", "producer.after_commit@2",
               "producer.mid_tick@200", ""]
    for crash in crashes:
        result = subprocess.run(
            [sys.executable, "-m", "airline_producer.cli"], env={**env, "AIRLINE_CRASH_AT": crash},
            capture_output=True, text=True, timeout=120, check=False)
        if crash:
            assert result.returncode == -9, f"expected a SIGKILL at {crash}: {result.stderr}"
        else:
            assert result.returncode == 0, result.stderr
    records = read_all(kafka)
    got = per_key(records)
    want = expected_per_key()
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == want[key], f"{key}: events lost, duplicated or reordered on restart"
    ids = [value for items in records.values() for _, value, _ in items]
    assert len(ids) == len(set(ids)), "duplicate records after restarts"


def test_stream_from_kafka_keeps_invariants(kafka_bootstrap: str,
                                           unique_name: Callable[[str], str]) -> None:
    """The events read back decode on their topics and, merged by tick, pass every check."""
    kafka = create_topics(kafka_bootstrap, unique_name("prodinv") + "-")
    config = small_settings(**RUN, kafka=kafka, metrics_port=0,
                            transactional_id=unique_name("prodinv-tx"))
    assert run(config, StopSignal()) == 0
    rows = []
    for (topic, _), items in read_all(kafka).items():
        for key, value, tick in items:
            event = decode(topic, value)
            assert event.key == key
            rows.append((tick, event.event_time, topic, event))
    # Within a tick, a flight's topics are merged by event time; ties keep the producer's
    # causal order: lifecycle, bookings, seat map, snapshots.
    rank = {"flight_lifecycle": 0, "bookings": 1, "seat_map": 2, "seat_inventory": 3}
    rows.sort(key=lambda r: (r[0], r[1], rank[r[2]]))
    views = check_stream((topic, event) for _, _, topic, event in rows)
    assert views and all(v.closed for v in views.values())
