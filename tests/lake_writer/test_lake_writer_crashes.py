"""Seeded crashes (SIGKILL at named points) and restarts: every record still lands exactly once.

Each round produces a little more (plain and transactional, so offsets have gaps), then runs the
writer as a real process with ``AIRLINE_CRASH_AT=<point>@<n>``; the kill leaves whatever the
point leaves (temporary files, data files without a manifest, a manifest without a commit). The
next round starts from that lake. At the end a clean run drains the rest and the lake must equal
the topics exactly.
"""

import os
import random
from collections import Counter
from pathlib import Path

import pytest
from airline_lake_writer.store import CRASH_POINTS
from lake_writer_support import Source, assert_exactly_once, read_topics, run_writer

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
SEED = int(os.environ.get("LAKE_CRASH_SEED", "20251125"))  # vary to explore more schedules
MIN_CRASHES = 21


def test_seeded_crashes_then_restart_land_everything_exactly_once(source: Source,
                                                                  tmp_path: Path) -> None:
    rng = random.Random(SEED)
    lake = tmp_path / "lake"
    env = source.env(lake, LAKE_ROLL_MAX_RECORDS="20", LAKE_IDLE_FLUSH_SECONDS="0.5",
                     KAFKA_GROUP_INSTANCE_ID="crash-test")  # a restart replaces the dead member
    source.produce(560, seed=0)
    source.produce(140, seed=1, transactional=True, abort=True)  # never lands
    crashed: Counter[str] = Counter()
    runs = 0
    points = list(CRASH_POINTS)
    while sum(crashed.values()) < MIN_CRASHES:
        runs += 1
        assert runs <= 2 * MIN_CRASHES, f"only {dict(crashed)} crashes in {runs - 1} runs"
        source.produce(70, seed=100 + runs, transactional=runs % 2 == 0)
        # Visit every point first, then pick at random; the hit number varies the timing.
        point = points[runs - 1] if runs <= len(points) else rng.choice(points)
        nth = rng.randint(1, 150) if point == "lake.mid_buffer" else rng.randint(1, 8)
        done = run_writer({**env, "AIRLINE_CRASH_AT": f"{point}@{nth}"},
                          "--stop-when-idle", "1")
        assert done.returncode in (0, -9), f"{point}@{nth}: exit {done.returncode}\n" \
                                           f"{done.stderr[-3000:]}"
        if done.returncode == -9:
            crashed[point] += 1
    assert set(crashed) == set(CRASH_POINTS), crashed
    final = run_writer(env, "--stop-when-idle", "1")
    assert final.returncode == 0, final.stderr[-3000:]
    topics = read_topics(source)
    assert len(topics) == source.produced
    assert_exactly_once(lake, topics)
