"""``python -m benchmarks.lake_writer``: landing rate of the lake writer against a seed-style one.

The same records (valid events spread over every lake topic, produced once per stage) are read
by both sides from the run's broker:

- ``airline-lake-writer``: the product, as it runs (its console script, default roll limits but
  ``LAKE_ROLL_MAX_RECORDS=20000``; rolls fsynced before their manifest, offsets committed after);
  records/s from the partition assignment to the last roll landed (its own log lines), so the
  process start and the group join are not counted;
- the peer, a seed-style writer as the user's first version did it: a confluent-kafka consumer
  that opens ``raw/<topic>/<day>.jsonl`` and appends every message (no fsync, no manifest,
  auto-committed offsets, so a crash loses or repeats records); timed from its first record to
  its last, in process.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from airline_core.events import encode
from airline_core.topics import LAKE_TOPICS, physical_name
from airline_testkit.events import lake_event
from airline_testkit.kafka import Row, create_topics, write_records
from airline_testkit.logs import json_logs

from benchmarks.harness import Bench, Result, alternate, standalone

WRITER = Path(sys.executable).with_name("airline-lake-writer")
OURS = "airline-lake-writer"
PEER = "seed-style writer (append per message)"


def _ts(event: dict[str, object]) -> float:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


def _rows(prefix: str, count: int, seed: int) -> Iterator[Row]:
    """``count`` valid events over every lake topic in turn (keys hash to partitions)."""
    rng = random.Random(seed)
    for i in range(count):
        topic = LAKE_TOPICS[i % len(LAKE_TOPICS)]
        event = lake_event(topic, f"{seed}-{i}", rng)
        yield physical_name(topic, prefix), event.key, encode(event), None


def ours(bootstrap: str, prefix: str, lake_dir: Path, count: int) -> float:
    """One run of the real writer over the whole input; records/s."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_TOPIC_PREFIX": prefix,
           "KAFKA_GROUP_ID": f"{prefix}lake-{time.time_ns()}", "LAKE_DIR": str(lake_dir),
           "METRICS_PORT": "0", "LOG_FORMAT": "json", "LOG_LEVEL": "INFO",
           "LAKE_ROLL_MAX_RECORDS": "20000", "LAKE_IDLE_FLUSH_SECONDS": "30",
           "KAFKA_STATISTICS_INTERVAL_MS": "0"}
    done = subprocess.run([str(WRITER), "--stop-when-idle", "1"], env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"airline-lake-writer failed: {done.stderr[-3000:]}")
    events = json_logs(done.stderr)
    assigned = min(_ts(e) for e in events if e.get("event") == "partitions assigned")
    rolls = [e for e in events if e.get("event") == "roll landed"]
    landed = sum(int(e["records"]) for e in rolls)
    if landed != count:
        raise RuntimeError(f"airline-lake-writer landed {landed} of {count} records")
    return landed / (max(_ts(e) for e in rolls) - assigned)


def seed_style(bootstrap: str, prefix: str, lake_dir: Path, count: int) -> float:
    """The first version's writer: open and append one file per topic and day per message."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{prefix}seed-"
                         f"{time.time_ns()}", "auto.offset.reset": "earliest",
                         "enable.auto.commit": True})
    names = {physical_name(t, prefix): t for t in LAKE_TOPICS}
    consumer.subscribe(list(names))
    seen = 0
    started = 0.0
    idle_since = time.monotonic()
    try:
        while seen < count and time.monotonic() - idle_since < 30:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            if not started:
                started = time.monotonic()
            idle_since = time.monotonic()
            value = msg.value() or b""
            day = str(json.loads(value).get("event_time", "unknown"))[:10]
            path = lake_dir / "raw" / names[msg.topic() or ""] / f"{day}.jsonl"
            if not path.parent.exists():
                path.parent.mkdir(parents=True)
            with path.open("ab") as out:
                out.write(value + b"\n")
            seen += 1
    finally:
        consumer.close()
    if seen != count:
        raise RuntimeError(f"the seed-style writer read {seen} of {count} records")
    return seen / (time.monotonic() - started)


def run(bench: Bench) -> list[Result]:
    """Produce the records once, then alternate both writers over them."""
    assert bench.bootstrap, "the lake writer stage needs a broker"
    bootstrap = bench.bootstrap
    count = bench.scale(300_000, 3_000)
    prefix = bench.topic_prefix("lake")
    create_topics(bootstrap, prefix)
    write_records(bootstrap, _rows(prefix, count, seed=1), transactional=False, timeout=300)
    values = alternate(bench.rounds, {
        OURS: lambda r: ours(bootstrap, prefix, bench.scratch(f"lake-ours-{r}"), count),
        PEER: lambda r: seed_style(bootstrap, prefix, bench.scratch(f"lake-seed-{r}"), count),
    })
    notes = f"{count:,} records over {len(LAKE_TOPICS)} topics"
    return [Result("lake_writer", OURS, "records/s", values[OURS],
                   notes=f"{notes}; durable rolls + manifests, exactly once"),
            Result("lake_writer", PEER, "records/s", values[PEER], peer_of=OURS,
                   notes=f"{notes}; no fsync, auto-commit (loses or repeats on a crash)")]


def main(argv: Sequence[str] | None = None) -> int:
    return standalone("lake_writer", run, kafka=True, postgres=False, argv=argv, doc=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
