"""Measure the lake writer's landing rate on a real broker.

Usage: ``.venv/bin/python -m benchmarks.lake_writer [RECORDS]`` (default 200000). Starts a
throwaway single-node Kafka (or uses ``KAFKA_BOOTSTRAP_SERVERS``), produces RECORDS test events
spread over the seven lake topics, runs ``airline-lake-writer --stop-when-idle 1`` with the
default roll limits into a temp lake, and prints records/s measured from the partition
assignment to the last roll landed (so process start and the group join are not counted).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from airline_core.events import encode
from airline_core.topics import LAKE_TOPICS, physical_name
from airline_devstack.kafka_broker import KafkaBroker
from airline_testkit.events import lake_event
from airline_testkit.kafka import Row, create_topics, write_records
from airline_testkit.logs import json_logs
from airline_testkit.net import free_port

WRITER = Path(sys.executable).with_name("airline-lake-writer")


def _ts(event: dict[str, object]) -> float:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


def _rows(prefix: str, count: int, seed: int) -> Iterator[Row]:
    """``count`` valid events over every lake topic in turn (keys hash to partitions)."""
    rng = random.Random(seed)
    for i in range(count):
        topic = LAKE_TOPICS[i % len(LAKE_TOPICS)]
        event = lake_event(topic, f"{seed}-{i}", rng)
        yield physical_name(topic, prefix), event.key, encode(event), None


def main() -> int:
    """Run the benchmark and print one summary line."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    work = Path(tempfile.mkdtemp(prefix="lake-bench-"))
    broker = None
    try:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            broker = KafkaBroker(work / "kafka", free_port(), heap="1g")
            broker.start()
            bootstrap = broker.bootstrap
        prefix = f"bench{int(time.time())}-"
        create_topics(bootstrap, prefix)
        started = time.monotonic()
        write_records(bootstrap, _rows(prefix, count, seed=1), transactional=False, timeout=120)
        print(f"produced {count} records in {time.monotonic() - started:.1f}s", flush=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_TOPIC_PREFIX": prefix,
               "KAFKA_GROUP_ID": f"{prefix}lake", "LAKE_DIR": str(work / "lake"),
               "METRICS_PORT": "0", "LOG_FORMAT": "json", "LOG_LEVEL": "INFO",
               "LAKE_ROLL_MAX_RECORDS": "20000", "LAKE_IDLE_FLUSH_SECONDS": "30",
               "KAFKA_STATISTICS_INTERVAL_MS": "0"}
        wall = time.monotonic()
        done = subprocess.run([str(WRITER), "--stop-when-idle", "1"], env=env,
                              capture_output=True, text=True, timeout=900, check=False)
        wall = time.monotonic() - wall
        assert done.returncode == 0, done.stderr[-3000:]
        events = json_logs(done.stderr)
        assigned = min(_ts(e) for e in events if e.get("event") == "partitions assigned")
        rolls = [e for e in events if e.get("event") == "roll landed"]
        last = max(_ts(e) for e in rolls)
        landed = sum(int(e["records"]) for e in rolls)
        size = sum(p.stat().st_size for p in (work / "lake").rglob("*.jsonl"))
        print(f"landed {landed} records ({size / 1e6:.1f} MB) in {len(rolls)} rolls: "
              f"{landed / (last - assigned):.0f} records/s, {size / 1e6 / (last - assigned):.1f} "
              f"MB/s from assignment to last roll (process wall time {wall:.1f}s)")
        return 0
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
