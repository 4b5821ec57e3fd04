"""The evaluator judges the code that runs: on the real broker, the engine's live decisions for
a seed's open-loop stream are, byte for byte, the ones the evaluator's in-process run takes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from airline_core.events import PromotionTriggered, decode, encode
from airline_core.lifecycle import StopSignal
from airline_core.topics import Topic, partition_of, physical_name
from airline_evaluator import closed_loop
from airline_producer.app import run as run_producer
from airline_producer.settings import Settings as ProducerSettings
from airline_testkit import kafka as kit

pytestmark = pytest.mark.kafka

PARTITIONS = 3
ENGINE = shutil.which("airline-engine", path=str(Path(sys.executable).parent)) or "airline-engine"


def _world(**changes: object) -> ProducerSettings:
    """A weak market (many flights behind), a horizon longer than the revenue policy's window."""
    values: dict[str, object] = {"seed": 7, "flights": 36, "days": 2,
                                 "booking_horizon_days": 30, "snapshot_interval_minutes": 720,
                                 "target_load_factor": 0.65, "transaction_max_ticks": 96}
    values.update(changes)
    return ProducerSettings(**values)  # type: ignore[arg-type]


def test_live_revenue_decisions_equal_the_evaluators(kafka_bootstrap: str,
                                                     unique_name: Callable[[str], str]) -> None:
    prefix = unique_name("evallive") + "-"
    kafka = kit.create_topics(kafka_bootstrap, prefix, PARTITIONS)
    world = _world()
    assert run_producer(_world(kafka=kafka, metrics_port=0,
                               transactional_id=unique_name("evallive-tx")), StopSignal()) == 0

    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "KAFKA_TOPIC_PREFIX": prefix, "KAFKA_GROUP_ID": f"{prefix}engine",
           "KAFKA_GROUP_INSTANCE_ID": "engine-0", "METRICS_PORT": "0", "LOG_FORMAT": "json",
           "ENGINE_POLICY": "revenue", "STOP_WHEN_IDLE_SECONDS": "2",
           "KAFKA_SESSION_TIMEOUT_MS": "6000"}
    engine = subprocess.run([ENGINE], env=env, capture_output=True, text=True, timeout=300,
                            check=False)
    assert engine.returncode == 0, engine.stderr[-3000:]

    name = physical_name(Topic.PROMO_DECISIONS, prefix)
    live = kit.read_to_end(kafka_bootstrap, [name], PARTITIONS)[name]
    for p, records in live.items():
        assert all(partition_of(r.key or b"", PARTITIONS) == p for r in records), \
            "the producer's partitioner is not the one the evaluator assumes"
    live_values = sorted(r.value or b"" for records in live.values() for r in records)

    evaluated = closed_loop.run(closed_loop.LoopConfig(world, "revenue", apply_decisions=False,
                                                       partitions=PARTITIONS))
    expected = sorted(encode(event) for event in evaluated.decisions)
    triggered = [e for e in evaluated.decisions if isinstance(e, PromotionTriggered)]
    assert len(triggered) >= 3, "the world is too small to show the policy deciding"
    assert len({e.flight_id for e in triggered}) >= 2
    assert live_values == expected, (
        f"{len(live_values)} live decisions, {len(expected)} evaluated; first live: "
        f"{[decode('promo_decisions', v) for v in live_values[:2]]}")


def test_one_core_per_partition_is_not_one_core_for_all() -> None:
    """Without a partition per core the learned response pools over other flights: the split
    matters (else the live test above could not tell a wrong split)."""
    world = _world(flights=60, days=3)
    per_partition = closed_loop.run(closed_loop.LoopConfig(world, "revenue", partitions=3))
    pooled = closed_loop.run(closed_loop.LoopConfig(world, "revenue", partitions=1))
    assert [encode(e) for e in per_partition.decisions] != [encode(e) for e in pooled.decisions]
