"""``python -m benchmarks.producer``: the producer into Kafka against its ceiling.

Every side writes the same simulation (seed 42, the producer's own settings otherwise) into
fresh topics of the run's broker:

- ``airline-producer``: the product as it runs (its console script, ``--speed max``,
  transactions of whole ticks); events/s as it reports them itself ("producer finished": from
  the first simulated tick to the last commit, so process start and topic checks are not
  counted);
- the peer, a plain confluent-kafka loop of the same events built and encoded beforehand, with
  the product's producer settings (idempotent, ``acks=all``, lz4, the same transactions): the
  ceiling of the Kafka writes alone;
- ``simulate + encode (no Kafka)``: the simulation in process, CPU time; what the other half of
  the producer's cost is.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from airline_core.config import KafkaSettings, from_values
from airline_core.events import encode
from airline_core.kafka import make_producer, produce
from airline_core.topics import physical_name
from airline_producer.app import MAX_EVENTS_PER_TRANSACTION
from airline_producer.settings import Settings
from airline_producer.simulation import Simulation
from airline_testkit.kafka import create_topics
from airline_testkit.logs import json_logs

from benchmarks.harness import Bench, Result, alternate, standalone

PRODUCER = Path(sys.executable).with_name("airline-producer")
OURS = "airline-producer"
PEER = "plain confluent-kafka loop (pre-built events)"
SIMULATION = "simulate + encode (no Kafka)"
Batch = list[tuple[str, bytes, bytes | None]]  # (topic, value, key) in one transaction


def producer_values(flights: int, days: int) -> dict[str, str]:
    return {"PRODUCER_SEED": "42", "PRODUCER_FLIGHTS": str(flights), "PRODUCER_DAYS": str(days),
            "PRODUCER_SPEED": "max", "PRODUCER_PROMOTIONS": "off"}


def prebuilt(settings: Settings, prefix: str) -> tuple[list[Batch], float]:
    """The simulation's events, encoded and grouped as the producer commits them; CPU s."""
    started = time.process_time()
    batches: list[Batch] = []
    batch: Batch = []
    ticks = 0
    for tick in Simulation(settings).run():
        if not tick.events:
            continue
        batch.extend((physical_name(topic, prefix), encode(event), event.key)
                     for topic, event in tick.events)
        ticks += 1
        if ticks >= settings.transaction_max_ticks or len(batch) >= MAX_EVENTS_PER_TRANSACTION:
            batches.append(batch)
            batch, ticks = [], 0
    if batch:
        batches.append(batch)
    return batches, time.process_time() - started


def ours(bootstrap: str, prefix: str, values: dict[str, str]) -> float:
    """One run of the real producer into ``prefix``'s topics; its own events/s."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           "KAFKA_TOPIC_PREFIX": prefix, "METRICS_PORT": "0", "LOG_FORMAT": "json",
           "LOG_LEVEL": "INFO", "PRODUCER_TRANSACTIONAL_ID": f"{prefix}producer", **values}
    done = subprocess.run([str(PRODUCER)], env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"airline-producer failed: {done.stderr[-3000:]}")
    (finished,) = [e for e in json_logs(done.stderr) if e.get("event") == "producer finished"]
    return float(finished["events"]) / float(finished["seconds"])


def plain_loop(bootstrap: str, prefix: str, batches: list[Batch]) -> float:
    """The same records through one transactional producer, nothing else; events/s."""
    # The product's producer (make_producer) with the sink's own overrides.
    producer = make_producer(KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix),
                             "bench-plain-loop", transactional_id=f"{prefix}plain-{time.time_ns()}",
                             extra={"linger.ms": 5, "queue.buffering.max.messages": 1_000_000,
                                    "transaction.timeout.ms": 120_000})
    producer.init_transactions(30)
    started = time.monotonic()
    count = 0
    for batch in batches:
        producer.begin_transaction()
        for topic, value, key in batch:
            produce(producer, topic, value, key)
        producer.poll(0)
        producer.commit_transaction(60)
        count += len(batch)
    return count / (time.monotonic() - started)


def run(bench: Bench) -> list[Result]:
    """Build the events once, then alternate the producer and the plain loop."""
    assert bench.bootstrap, "the producer stage needs a broker"
    bootstrap = bench.bootstrap
    values = producer_values(bench.scale(600, 20), bench.scale(4, 1))
    settings = from_values(Settings, values, environ={})
    cpu: list[float] = []
    batches: list[Batch] = []
    for _ in range(bench.rounds):
        batches, seconds = prebuilt(settings, "")
        cpu.append(seconds)
    events = sum(len(b) for b in batches)

    def fresh(name: str) -> str:
        prefix = bench.topic_prefix(name)
        create_topics(bootstrap, prefix)
        return prefix

    def peer(_: int) -> float:
        prefix = fresh("plain")
        renamed = [[(prefix + topic, value, key) for topic, value, key in b] for b in batches]
        return plain_loop(bootstrap, prefix, renamed)

    measured = alternate(bench.rounds, {
        OURS: lambda _: ours(bootstrap, fresh("producer"), values),
        PEER: peer,
    })
    notes = (f"{settings.flights} flights x {settings.days} days, {events:,} events, "
             f"transactions of {settings.transaction_max_ticks} ticks")
    return [Result("producer", OURS, "events/s", measured[OURS], notes=notes),
            Result("producer", PEER, "events/s", measured[PEER], peer_of=OURS,
                   notes=f"{notes}; the Kafka writes alone"),
            Result("producer", SIMULATION, "events/CPU s", [events / s for s in cpu],
                   notes="in process, one core, no broker")]


def main(argv: Sequence[str] | None = None) -> int:
    return standalone("producer", run, kafka=True, postgres=False, argv=argv, doc=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
