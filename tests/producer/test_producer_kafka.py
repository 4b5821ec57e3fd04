"""On the real broker: determinism (two runs, one seed, byte-identical per partition) and
restart (the producer killed mid-run, several times, then restarted: the topics hold exactly the
events of an uninterrupted run, no duplicates, nothing lost)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from airline_core.events import decode
from airline_core.lifecycle import StopSignal
from airline_producer.app import run
from producer_support import (
    RUN,
    check_stream,
    create_topics,
    expected_per_key,
    per_key,
    read_all,
    small_settings,
)

pytestmark = pytest.mark.kafka


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


def test_another_run_on_the_same_topics_is_not_taken_for_a_restart(
        kafka_bootstrap: str, unique_name: Callable[[str], str]) -> None:
    """A new seed on topics that already hold an earlier run writes its whole stream: only the
    producer's own run counts when it looks for the last committed tick."""
    kafka = create_topics(kafka_bootstrap, unique_name("prodruns") + "-")
    earlier = small_settings(**{**RUN, "seed": 8}, kafka=kafka, metrics_port=0,
                             transactional_id=unique_name("prodruns-a"))
    assert run(earlier, StopSignal()) == 0
    earlier_records = per_key(read_all(kafka))
    later = small_settings(**RUN, kafka=kafka, metrics_port=0,
                           transactional_id=unique_name("prodruns-b"))
    assert run(later, StopSignal()) == 0
    got = per_key(read_all(kafka))
    for key, values in expected_per_key().items():
        assert got[key][len(earlier_records.get(key, [])):] == values, \
            f"{key}: the second run lost or reordered events"


def test_recovery_reads_back_past_other_runs_and_beats(kafka_bootstrap: str,
                                                       unique_name: Callable[[str], str]) -> None:
    """This run's last tick lies behind thousands of another run's records on every partition:
    recovery reads back (window x8) until it finds it, beating ``/healthz`` while it reads."""
    from airline_core.kafka import make_producer
    from airline_core.topics import physical_name
    from airline_producer.kafka_sink import PRODUCED_TOPICS, RUN_HEADER, TICK_HEADER, KafkaSink
    from airline_producer.simulation import Simulation
    from producer_support import PARTITIONS

    kafka = create_topics(kafka_bootstrap, unique_name("prodrecover") + "-")
    config = small_settings(**RUN, kafka=kafka, metrics_port=0,
                            transactional_id=unique_name("prodrecover-tx"))
    sink = KafkaSink(kafka, config.effective_transactional_id, config.run_id)
    sink.init()
    ticks = [t for t in Simulation(config).run() if t.events][:30]
    sink.write(ticks)
    other = make_producer(kafka, "test-other-run")
    headers: list[tuple[str, str | bytes | None]] = [(TICK_HEADER, b"999999"),
                                                     (RUN_HEADER, b"another-run")]
    for topic in PRODUCED_TOPICS:
        for partition in range(PARTITIONS):
            for n in range(3000):  # > 1024: the first window holds only the other run
                other.produce(physical_name(topic, kafka.topic_prefix), b"x", str(n).encode(),
                              partition=partition, headers=headers)
        other.flush(30)
    beats = [0]

    def beat() -> None:
        beats[0] += 1

    assert sink.last_committed_tick({t: PARTITIONS for t in PRODUCED_TOPICS}, beat) == \
        ticks[-1].index
    assert beats[0] > 0, "recovery never beat /healthz"


def test_runs_with_one_seed_and_different_dates_do_not_fence_each_other(
        kafka_bootstrap: str, unique_name: Callable[[str], str]) -> None:
    """Default transactional ids: a second run (same seed, new start date) registering its id
    does not fence the first, which still commits; a restart of the first does fence it."""
    import zlib

    from airline_core.errors import AirlineError
    from airline_producer.kafka_sink import KafkaSink
    from airline_producer.simulation import Simulation

    kafka = create_topics(kafka_bootstrap, unique_name("prodfence") + "-")
    seed = zlib.crc32(kafka.topic_prefix.encode())  # default ids unique to this test
    first = small_settings(**{**RUN, "seed": seed}, kafka=kafka)
    second = first.replace(start_date="2025-12-05")
    assert first.effective_transactional_id != second.effective_transactional_id
    ticks = [t for t in Simulation(first).run() if t.events][:2]
    sink = KafkaSink(kafka, first.effective_transactional_id, first.run_id)
    sink.init()
    KafkaSink(kafka, second.effective_transactional_id, second.run_id).init()
    assert sink.write(ticks[:1]) > 0  # not fenced by the other run
    KafkaSink(kafka, first.effective_transactional_id, first.run_id).init()  # a restart
    with pytest.raises(AirlineError):
        sink.write(ticks[1:])  # the old incarnation is fenced, as it must be
