"""``python -m benchmarks.latency``: readable latency through the exactly-once engine.

A booking (or any input) is sent at a fixed rate; its ``inventory_metrics`` output counts as
seen when a ``read_committed`` consumer receives it, so the figure includes the engine's
transaction commit, which is what a downstream reader waits for. Each input's send time is
matched to its output by the derived event id (``derived_event_id(input, "metrics")``), the
same rule the engine uses, so no clock is shared with the engine process.

The input is the producer's simulation (seed 42), pre-encoded and sent without transactions at
``RATE`` events/s; the first second is warm-up and not counted. Run for the engine's commit
intervals of 100 ms and 1 s, alternated, a fresh prefix each round.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from airline_core.config import from_values
from airline_core.events import encode
from airline_core.ids import derived_event_id
from airline_core.topics import Topic, physical_name
from airline_producer.settings import Settings as ProducerSettings
from airline_producer.simulation import Simulation
from airline_testkit.kafka import create_topics
from airline_testkit.logs import json_logs
from confluent_kafka import Consumer, Producer, TopicPartition

from benchmarks import producer
from benchmarks.harness import Bench, Result, say, standalone

ENGINE = Path(sys.executable).with_name("airline-engine")
RATE = 5_000  # input events per second
WARM_UP_S = 1.0
INTERVALS_MS = (100, 1000)
Record = tuple[str, bytes, bytes | None, str]  # (physical topic, value, key, metrics event id)


def subject(interval_ms: int) -> str:
    return f"airline-engine, exactly-once, commit every {interval_ms} ms"


def records(values: dict[str, str], prefix: str, limit: int) -> list[Record]:
    """The first ``limit`` simulation events, encoded, each with its metrics output's id."""
    settings = from_values(ProducerSettings, values, environ={})
    out: list[Record] = []
    for tick in Simulation(settings).run():
        for topic, event in tick.events:
            out.append((physical_name(topic, prefix), encode(event), event.key,
                        derived_event_id(event.event_id, "metrics")))
            if len(out) >= limit:
                return out
    return out


class OutputWatch:
    """A ``read_committed`` consumer of the metrics topic noting when each event id arrives."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{prefix}watch",
                                   "isolation.level": "read_committed",
                                   "enable.auto.commit": False, "fetch.wait.max.ms": 10})
        topic = physical_name(Topic.INVENTORY_METRICS, prefix)
        partitions = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self._consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for message in self._consumer.consume(1000, timeout=0.02):
                value = message.value()
                if message.error() is None and value:
                    self.seen[json.loads(value)["event_id"]] = time.monotonic()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._consumer.close()


def send_paced(bootstrap: str, batch: list[Record]) -> dict[str, float]:
    """Send ``batch`` at ``RATE``/s in 10 ms slices; each metrics id's send time."""
    out = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1, "acks": "all"})
    sent: dict[str, float] = {}
    per_slice = max(RATE // 100, 1)
    started = time.monotonic()
    for i in range(0, len(batch), per_slice):
        due = started + i / RATE
        if (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
        now = time.monotonic()
        for topic, value, key, metrics_id in batch[i:i + per_slice]:
            out.produce(topic, value, key)
            sent[metrics_id] = now
        out.poll(0)
    out.flush(30)
    return sent


def wait_for_log(path: Path, event: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(e.get("event") == event for e in json_logs(path.read_text())):
            return
        time.sleep(0.1)
    raise RuntimeError(f"airline-engine did not log {event!r} in {timeout_s:.0f}s: "
                       f"{path.read_text()[-3000:]}")


def one_run(bench: Bench, values: dict[str, str], interval_ms: int, seconds: float,
            extra: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(p50 ms, p99 ms, outputs matched) for one engine run at ``interval_ms``."""
    assert bench.bootstrap
    prefix = bench.topic_prefix(f"latency{interval_ms}")
    create_topics(bench.bootstrap, prefix)
    batch = records(values, prefix, int(RATE * seconds))
    log = bench.scratch(f"latency-{interval_ms}") / "engine.log"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "KAFKA_BOOTSTRAP_SERVERS": bench.bootstrap, "KAFKA_TOPIC_PREFIX": prefix,
           "KAFKA_GROUP_ID": f"{prefix}engine", "KAFKA_GROUP_INSTANCE_ID": "bench",
           "METRICS_PORT": "0", "LOG_FORMAT": "json", "LOG_LEVEL": "INFO",
           "ENGINE_COMMIT_INTERVAL_MS": str(interval_ms), **(extra or {})}
    with log.open("w") as stderr:
        engine = subprocess.Popen([str(ENGINE)], env=env, stderr=stderr,
                                  stdout=subprocess.DEVNULL)
    watch = OutputWatch(bench.bootstrap, prefix)
    try:
        wait_for_log(log, "partitions assigned")
        sent = send_paced(bench.bootstrap, batch)
        time.sleep(2 + interval_ms / 1000)  # the last transaction commits
    finally:
        engine.send_signal(signal.SIGTERM)
        engine.wait(60)
        watch.close()
    counted_from = min(sent.values()) + WARM_UP_S
    lags = sorted((watch.seen[i] - t) * 1000 for i, t in sent.items()
                  if t >= counted_from and i in watch.seen)
    if len(lags) < 100:
        raise RuntimeError(f"only {len(lags)} outputs seen at {interval_ms} ms: "
                           f"{log.read_text()[-3000:]}")
    p99 = statistics.quantiles(lags, n=100)[98]
    return statistics.median(lags), p99, len(lags)


def run(bench: Bench) -> list[Result]:
    """Both commit intervals, alternated over the rounds."""
    values = producer.producer_values(600, 4)
    seconds = bench.scale(20, 3)
    p50: dict[int, list[float]] = {i: [] for i in INTERVALS_MS}
    p99: dict[int, list[float]] = {i: [] for i in INTERVALS_MS}
    matched: dict[int, int] = {}
    for r in range(bench.rounds):
        order = INTERVALS_MS[r % 2:] + INTERVALS_MS[:r % 2]
        for interval in order:
            a, b, n = one_run(bench, values, interval, seconds)
            p50[interval].append(a)
            p99[interval].append(b)
            matched[interval] = n
            say(f"  round {r + 1}/{bench.rounds} commit {interval} ms: p50 {a:,.0f} ms, "
                f"p99 {b:,.0f} ms ({n:,} outputs)")
    notes = f"{RATE:,} input events/s for {seconds} s (first {WARM_UP_S:.0f} s not counted), " \
            "send -> read_committed receipt of its inventory_metrics output"
    results = []
    for interval in INTERVALS_MS:
        for metric, values_ms in (("p50 ms", p50[interval]), ("p99 ms", p99[interval])):
            results.append(Result("latency", subject(interval), metric, values_ms,
                                  higher_is_better=False,
                                  notes=f"{notes}; {matched[interval]:,} outputs"))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    return standalone("latency", run, kafka=True, postgres=False, argv=argv, doc=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
