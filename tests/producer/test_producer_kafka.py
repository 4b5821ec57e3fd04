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
