"""Measure the lake writer's landing rate on a real broker.

Usage: ``.venv/bin/python services/lake-writer/bench.py [RECORDS]`` (default 200000). Starts a
throwaway single-node Kafka (or uses ``KAFKA_BOOTSTRAP_SERVERS``), produces RECORDS test events
spread over the seven lake topics, runs ``airline-lake-writer --stop-when-idle 1`` with the
default roll limits into a temp lake, and prints records/s measured from the partition
assignment to the last roll landed (so process start and the group join are not counted).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[2] / "tests" / "lake_writer"))

from lake_writer_support import make_source, run_writer  # noqa: E402


def _ts(event: dict[str, object]) -> float:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


def main() -> int:
    """Run the benchmark and print one summary line."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    work = Path(tempfile.mkdtemp(prefix="lake-bench-"))
    broker = None
    try:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            from airline_devstack._proc import free_port
            from airline_devstack.kafka_broker import KafkaBroker
            broker = KafkaBroker(work / "kafka", free_port(), heap="1g")
            broker.start()
            bootstrap = broker.bootstrap
        source = make_source(bootstrap, f"bench{int(time.time())}-")
        started = time.monotonic()
        source.produce(count, seed=1)
        print(f"produced {count} records in {time.monotonic() - started:.1f}s", flush=True)
        env = source.env(work / "lake", LAKE_ROLL_MAX_RECORDS="20000",
                         LAKE_IDLE_FLUSH_SECONDS="30", LOG_LEVEL="INFO")
        wall = time.monotonic()
        done = run_writer(env, "--stop-when-idle", "1", timeout=900)
        wall = time.monotonic() - wall
        assert done.returncode == 0, done.stderr[-3000:]
        events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
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
