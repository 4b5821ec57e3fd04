"""Scale-out by partitions: two instances share the group and the lake, and partitions move
between them mid-stream (an instance joins, later one leaves) without loss or duplicates."""

import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from airline_core.lake import manifest as mf
from lake_writer_support import (
    Source,
    assert_exactly_once,
    log_events,
    read_topics,
    start_writer,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
TOPICS = ["flight_lifecycle", "bookings", "seat_inventory", "seat_map", "inventory_metrics",
          "promo_decisions", "dead_letter"]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.2)


def landed(lake: Path) -> int:
    return mf.audit(lake, TOPICS, check_hashes=False).records


def assigned_counts(log: Path) -> list[int]:
    events = log_events(log.read_text(errors="replace"))
    return [int(str(e["count"])) for e in events if e.get("event") == "partitions assigned"]


def stop(process: "subprocess.Popen[bytes]", log: Path) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"writer ignored SIGTERM:\n{log.read_text()[-3000:]}") from None
    assert code == 0, log.read_text()[-3000:]


def test_two_instances_and_rebalances_mid_stream(source: Source, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    env = source.env(lake, LAKE_ROLL_MAX_RECORDS="25", LAKE_IDLE_FLUSH_SECONDS="0.5")
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    a = start_writer(env, log=log_a)
    b = None
    try:
        wait_for(lambda: assigned_counts(log_a) == [21], "instance A to own all 21 partitions")
        source.produce(700, seed=1)
        wait_for(lambda: landed(lake) > 0, "A to land its first rolls")

        # B joins while records keep arriving: a rebalance in the middle of the stream.
        halfway = threading.Event()

        def keep_producing() -> None:
            for batch in range(30):
                source.produce(35, seed=10 + batch, transactional=batch % 3 == 0)
                if batch == 5:
                    halfway.set()
                time.sleep(0.1)

        producer = threading.Thread(target=keep_producing)
        producer.start()
        assert halfway.wait(60), "the background producer stalled"
        b = start_writer(env, log=log_b)
        wait_for(lambda: bool(assigned_counts(log_b)), "instance B to get partitions")
        producer.join(120)
        wait_for(lambda: landed(lake) == source.produced, "both instances to land everything")
        assert 0 < assigned_counts(log_b)[-1] < 21
        assert 0 < assigned_counts(log_a)[-1] < 21

        # B leaves: its partitions move back to A, which resumes them from the lake.
        stop(b, log_b)
        b = None
        source.produce(350, seed=99)
        wait_for(lambda: assigned_counts(log_a)[-1] == 21, "A to take all partitions back")
        wait_for(lambda: landed(lake) == source.produced, "A to land the rest")
    finally:
        for process, log in ((b, log_b), (a, log_a)):
            if process is not None:
                stop(process, log)
    assert_exactly_once(lake, read_topics(source))
    for log in (log_a, log_b):
        assert any(e.get("event") == "roll landed" for e in log_events(log.read_text())), \
            f"{log.name} landed no roll"
