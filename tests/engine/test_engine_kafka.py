"""The engine against the real broker: replay, dead letters, restart, crash loop, scale-out.

One reference run (module fixture) processes the test input uninterrupted; every other test
loads the same input under its own topic prefix, runs the engine some other way and compares
the committed outputs (per partition, in order) with the reference.
"""

from __future__ import annotations

import base64
import random
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from airline_core import events as ev
from airline_core.config import from_values
from airline_core.topics import ENGINE_INPUTS, Topic, physical_name
from airline_engine.core import EngineCore, core_config
from airline_engine.settings import Settings
from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from engine_harness import (
    PARTITIONS,
    UNKNOWN_FLIGHT,
    comparable,
    create_topics,
    dataset,
    finish,
    load_dataset,
    partition_of,
    produce_events,
    read_outputs,
    read_topic,
    run_engine,
)

pytestmark = pytest.mark.kafka

FLIGHTS = 16


def _prefix(base: str) -> str:
    return f"{base}_{uuid.uuid4().hex[:10]}-"


@pytest.fixture(scope="module")
def reference(kafka_bootstrap: str) -> dict[str, Any]:
    """The uninterrupted run every other test compares with."""
    prefix = _prefix("engref")
    produced = load_dataset(kafka_bootstrap, prefix, FLIGHTS)
    run = run_engine(kafka_bootstrap, prefix)
    assert run.returncode == 0, run.stderr[-3000:]
    outputs = read_outputs(kafka_bootstrap, prefix)
    return {"prefix": prefix, "produced": produced, "run": run, "outputs": outputs,
            "comparable": comparable(outputs)}


def _decoded(outputs: dict[str, Any], topic: str) -> list[Any]:
    return [ev.decode(topic, v) for items in outputs[topic].values() for _, v in items]


def test_reference_run_tracks_decides_and_dead_letters(reference: dict[str, Any]) -> None:
    outputs = reference["outputs"]
    assert reference["run"].summary()["processed"] == reference["produced"]
    decisions = _decoded(outputs, "promo_decisions")
    kinds = Counter(type(d).__name__ for d in decisions)
    assert kinds["PromotionTriggered"] > 0 and kinds["PromotionEnded"] > 0
    for d in decisions:
        assert d.decision_source == "RULE_ENGINE" and d.policy_version == "pace-1"
    metrics = _decoded(outputs, "inventory_metrics")
    assert len({m.flight_id for m in metrics}) == FLIGHTS
    # Every output of a flight sits on the flight's partition (co-partitioned with the inputs).
    for topic in ("inventory_metrics", "promo_decisions"):
        for p, items in outputs[topic].items():
            assert all(partition_of(k.decode()) == p for k, _ in items)
    letters = _decoded(outputs, "dead_letter")
    reasons = sorted(letter.reason_code for letter in letters)
    assert reasons == ["invalid_field", "not_json", "unknown_flight", "unsupported_schema",
                       "wrong_topic"]
    assert all(letter.reason.startswith(f"{letter.reason_code}: ") for letter in letters)
    assert any(letter.flight_id == UNKNOWN_FLIGHT and "unknown flight" in letter.reason
               for letter in letters)
    assert any("schema_version 2.0" in letter.reason for letter in letters)
    # The envelope keeps the rejected record whole.
    assert any(base64.b64decode(letter.original_value_b64) == b"{not json" for letter in letters)


def _in_event_time_order(items: list[tuple[Topic, Any]], partition: int
                         ) -> dict[str, list[bytes]]:
    """What the functional core publishes for one partition's events in merge order."""
    ranks = {t: i for i, t in enumerate(ENGINE_INPUTS)}
    mine = [(t, e) for t, e in items if partition_of(e.flight_id) == partition]
    mine.sort(key=lambda item: (item[1].event_time, ranks[item[0]]))  # stable: offsets
    core = EngineCore(core_config(from_values(Settings, {"ENGINE_POLICY": "pace"}, {})))
    outputs = core.apply_all((str(t), e) for t, e in mine)
    return {topic: [ev.encode(o.event) for o in outputs if o.topic == topic]
            for topic in ("inventory_metrics", "promo_decisions")}


def test_in_process_core_gives_the_same_decisions(reference: dict[str, Any]) -> None:
    """The functional core fed each partition's events in (event time, topic rank) order
    produces exactly what the Kafka shell committed."""
    items, _ = dataset(FLIGHTS)
    for p in range(PARTITIONS):
        published = _in_event_time_order(items, p)
        for topic in ("inventory_metrics", "promo_decisions"):
            assert published[topic] == [v for _, v in reference["outputs"][topic][p]]


def test_a_commit_that_lands_partition_by_partition_keeps_the_event_time_order(
        kafka_bootstrap: str) -> None:
    """A transaction's commit markers land partition by partition, so a fetch can show the
    seat and booking records of a flight while its FlightScheduled, written in the same
    transaction, still waits for its marker. Here that moment is stretched to 2 s, twenty times
    the grace after which a caught-up input stops holding back the merge: the lifecycle
    records are written in a transaction left open while the rest is committed. The engine,
    caught up on every input long before, must see the written records coming (the partition's
    high watermark) and wait, not park the seat records as an unknown flight and dead-letter
    them an hour of event time later."""
    prefix = _prefix("engmarker")
    create_topics(kafka_bootstrap, prefix, PARTITIONS)
    items, _ = dataset(4)
    proc = run_engine(kafka_bootstrap, prefix, idle=10.0, background=True)
    try:
        _wait_for_members(kafka_bootstrap, f"{prefix}engine", 1)
        time.sleep(1.0)  # every input read to its end
        lifecycle = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 0,
                              "transactional.id": f"{prefix}lifecycle"})
        lifecycle.init_transactions(30)
        lifecycle.begin_transaction()
        name = physical_name(Topic.FLIGHT_LIFECYCLE, prefix)
        for topic, event in items:
            if topic is Topic.FLIGHT_LIFECYCLE:
                lifecycle.produce(name, ev.encode(event), event.key,
                                  partition=partition_of(event.flight_id))
        assert lifecycle.flush(30) == 0  # written: the partitions' high watermarks move
        rest = [(t, e) for t, e in items if t is not Topic.FLIGHT_LIFECYCLE]
        produce_events(kafka_bootstrap, prefix, rest,
                       {e.flight_id: partition_of(e.flight_id) for _, e in rest}, PARTITIONS)
        time.sleep(2.0)
        lifecycle.commit_transaction(30)
    except BaseException:
        proc.kill()
        raise
    run = finish(proc)
    assert run.returncode == 0, run.stderr[-3000:]
    outputs = read_outputs(kafka_bootstrap, prefix)
    letters = [letter.reason for letter in _decoded(outputs, "dead_letter")]
    assert letters == [f"unknown_flight: unknown flight {UNKNOWN_FLIGHT}: no FlightScheduled "
                       "within 60 minutes of event time"]  # the dataset's orphan booking only
    for p in range(PARTITIONS):
        expected = _in_event_time_order(items, p)
        for topic in ("inventory_metrics", "promo_decisions"):
            assert [v for _, v in outputs[topic][p]] == expected[topic], (topic, p)


def test_replay_with_other_batching_gives_identical_outputs(
        kafka_bootstrap: str, reference: dict[str, Any]) -> None:
    prefix = _prefix("engreplay")
    load_dataset(kafka_bootstrap, prefix, FLIGHTS)
    run = run_engine(kafka_bootstrap, prefix, extra_env={
        "KAFKA_CONSUMER_BATCH_SIZE": "7", "ENGINE_COMMIT_INTERVAL_MS": "40"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert comparable(read_outputs(kafka_bootstrap, prefix)) == reference["comparable"]


def test_restart_restores_state_and_reads_only_new_input(
        kafka_bootstrap: str, reference: dict[str, Any]) -> None:
    """Half the input, stop; the other half, restart: the second run restores the state from
    the changelog, reads no input below the committed offsets, and ends where one run ends."""
    prefix = _prefix("engrestart")
    create_topics(kafka_bootstrap, prefix, PARTITIONS)
    items, raw = dataset(FLIGHTS)
    parts = {e.flight_id: partition_of(e.flight_id) for _, e in items}
    cut = items[len(items) // 2][1].event_time
    first = [(t, e) for t, e in items if e.event_time < cut]
    second = [(t, e) for t, e in items if e.event_time >= cut]
    produce_events(kafka_bootstrap, prefix, first, parts, PARTITIONS)
    run1 = run_engine(kafka_bootstrap, prefix)
    assert run1.returncode == 0, run1.stderr[-3000:]
    assert run1.summary()["processed"] == len(first)
    produced = produce_events(kafka_bootstrap, prefix, second, parts, PARTITIONS, raw)
    run2 = run_engine(kafka_bootstrap, prefix)
    assert run2.returncode == 0, run2.stderr[-3000:]
    summary = run2.summary()
    assert summary["restored_records"] > 0
    assert summary["processed"] == produced
    for part in summary["partitions"].values():
        for topic, first_read in part["first_read"].items():
            assert first_read >= part["start_offsets"][topic], (topic, part)
    # Same outputs; dead letters' ids derive from input offsets, which moved by the extra
    # transaction marker of the split load, so only their number is compared.
    outputs = comparable(read_outputs(kafka_bootstrap, prefix))
    expected = reference["comparable"]
    for topic in ("inventory_metrics", "promo_decisions", "engine_state_changelog"):
        assert outputs[topic] == expected[topic], topic
    assert sum(map(len, outputs["dead_letter"].values())) == 5


def _committed_input_offsets(bootstrap: str, prefix: str) -> int:
    """The sum of the engine group's committed offsets over every input partition."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{prefix}engine",
                         "enable.auto.commit": False})
    tps = [TopicPartition(physical_name(t, prefix), p) for t in ENGINE_INPUTS
           for p in range(PARTITIONS)]
    try:
        return sum(max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10))
    finally:
        consumer.close()


def test_record_bound_holds_inside_one_large_release(kafka_bootstrap: str) -> None:
    """ENGINE_COMMIT_MAX_RECORDS bounds a transaction even when one fetch (or a merge that
    held a backlog) releases far more records than the bound: killed at the 350th record with
    a bound of 100 and no time-based commit, at most 100 records were uncommitted."""
    prefix = _prefix("engbound")
    load_dataset(kafka_bootstrap, prefix, FLIGHTS)
    run = run_engine(kafka_bootstrap, prefix, crash_at="engine.mid_batch@350", extra_env={
        "KAFKA_CONSUMER_BATCH_SIZE": "5000", "ENGINE_COMMIT_MAX_RECORDS": "100",
        "ENGINE_COMMIT_INTERVAL_MS": "60000"})
    assert run.returncode == -9, run.stderr[-3000:]
    # Offsets also count the input's transaction markers, so they are at least the records.
    assert _committed_input_offsets(kafka_bootstrap, prefix) >= 350 - 100


@pytest.mark.slow
def test_crash_loop_commits_exactly_the_uninterrupted_outputs(
        kafka_bootstrap: str, reference: dict[str, Any]) -> None:
    """Seeded SIGKILLs after produce/before commit, mid-batch, during restore and after
    commit; each followed by a restart, until a run finishes. Committed outputs must equal the
    uninterrupted run's."""
    prefix = _prefix("engcrash")
    load_dataset(kafka_bootstrap, prefix, FLIGHTS)
    env = {"KAFKA_CONSUMER_BATCH_SIZE": "40", "ENGINE_COMMIT_MAX_RECORDS": "110",
           "ENGINE_COMMIT_INTERVAL_MS": "300"}
    rng = random.Random(4)
    crashes: Counter[str] = Counter()
    runs = 0
    has_state = False  # some state is in the changelog, so a restore has records to crash in
    while sum(crashes.values()) < 22:
        point = rng.choice(["after_produce", "after_produce", "mid_batch", "mid_batch",
                            "during_restore", "after_commit"])
        if point == "during_restore" and not has_state:
            point = "after_commit"
        n = {"after_produce": rng.randint(1, 3), "mid_batch": rng.randint(30, 400),
             "during_restore": rng.randint(1, 3), "after_commit": rng.randint(1, 2)}[point]
        run = run_engine(kafka_bootstrap, prefix, crash_at=f"engine.{point}@{n}",
                         extra_env=env, timeout=60)
        runs += 1
        if run.returncode == -9:
            crashes[point] += 1
            has_state = has_state or point == "after_commit" or (
                point == "after_produce" and n > 1)
        else:
            assert run.returncode == 0, run.stderr[-3000:]
            break  # input exhausted before this crash point: no work left to crash in
        assert runs < 80, crashes
    print("crash runs:", runs, dict(crashes))
    final = run_engine(kafka_bootstrap, prefix, extra_env=env)
    assert final.returncode == 0, final.stderr[-3000:]
    assert sum(crashes.values()) >= 20, crashes
    assert crashes["after_produce"] >= 5, crashes  # killed inside an open transaction
    summary = final.summary()
    assert summary["restored_records"] > 0
    for part in summary["partitions"].values():  # resumed at the committed offsets
        for topic, first_read in part["first_read"].items():
            assert first_read >= part["start_offsets"].get(topic, 0), (topic, part)
    outputs = read_outputs(kafka_bootstrap, prefix)
    assert comparable(outputs) == reference["comparable"]
    # The killed transactions did write records that read_committed readers never see.
    name = physical_name(Topic.INVENTORY_METRICS, prefix)
    uncommitted = read_topic(kafka_bootstrap, name, PARTITIONS, isolation="read_uncommitted")
    committed = outputs["inventory_metrics"]
    assert sum(map(len, uncommitted.values())) > sum(map(len, committed.values()))


def _wait_for_members(bootstrap: str, group: str, count: int, timeout: float = 90.0) -> None:
    """Until ``group`` is stable with ``count`` members that each own partitions."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout
    members: list[Any] = []
    while time.monotonic() < deadline:
        try:  # the first answer can take long while the broker creates __consumer_offsets
            description = admin.describe_consumer_groups(
                [group], request_timeout=2)[group].result(timeout=3)
        except (TimeoutError, KafkaException):
            continue
        members = description.members
        if description.state == ConsumerGroupState.STABLE and len(members) == count and all(
                m.assignment.topic_partitions for m in members):
            return
        time.sleep(0.2)
    raise AssertionError(f"group {group} never had {count} stable members: {members}")


@pytest.mark.slow
def test_two_instances_split_partitions_and_equal_one(
        kafka_bootstrap: str, reference: dict[str, Any]) -> None:
    """Both instances join first (half the input is there), then the rest arrives: each
    processes its own partitions, and together they commit exactly one instance's output."""
    prefix = _prefix("engscale")
    create_topics(kafka_bootstrap, prefix, PARTITIONS)
    items, raw = dataset(FLIGHTS)
    parts = {e.flight_id: partition_of(e.flight_id) for _, e in items}
    cut = items[len(items) // 2][1].event_time
    produce_events(kafka_bootstrap, prefix, [(t, e) for t, e in items if e.event_time < cut],
                   parts, PARTITIONS)
    # The second half arrives in one transaction whose records become visible on the input
    # partitions a moment apart (its commit markers land partition by partition); the merge
    # waits for them whatever the moment (the partitions' high watermarks show them coming).
    env = {"KAFKA_CONSUMER_BATCH_SIZE": "100", "ENGINE_COMMIT_INTERVAL_MS": "100"}
    procs = [run_engine(kafka_bootstrap, prefix, instance=f"engine-{i}", idle=6.0,
                        extra_env=env, background=True) for i in range(2)]
    try:
        _wait_for_members(kafka_bootstrap, f"{prefix}engine", 2)
    except AssertionError:
        for proc in procs:
            proc.kill()
        raise
    produce_events(kafka_bootstrap, prefix, [(t, e) for t, e in items if e.event_time >= cut],
                   parts, PARTITIONS, raw)
    runs = [finish(proc, timeout=120) for proc in procs]
    for run in runs:
        assert run.returncode == 0, run.stderr[-3000:]
    owned = [{p for r in run.logs if r.get("event") == "partitions assigned"
              for p in r["partitions"]} for run in runs]
    assert owned[0].isdisjoint(owned[1]) or any(
        run.summary()["restores"] > 1 for run in runs)  # a partition moved: restored again
    assert all(run.summary()["processed"] > 0 for run in runs)  # both did real work
    outputs = comparable(read_outputs(kafka_bootstrap, prefix))
    expected = reference["comparable"]
    for topic in ("inventory_metrics", "promo_decisions", "engine_state_changelog"):
        assert outputs[topic] == expected[topic], topic
    assert sum(map(len, outputs["dead_letter"].values())) == 5
