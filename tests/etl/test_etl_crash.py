"""kill -9 at each crash point of a load: the warehouse and gold CURRENT stay as they were (or,
after the commit, consistent once the next run finishes the pointer switch)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from airline_core.topics import LAKE_TOPICS
from airline_etl import gold, warehouse
from airline_testkit.events import make_world
from airline_testkit.lake import write_world

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def etl(url: str, lake_dir: Path, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "LAKE_DIR": str(lake_dir), "LOG_FORMAT": "json"}
    env.pop("AIRLINE_CRASH_AT", None)
    if crash_at:
        env["AIRLINE_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-m", "airline_etl.cli"], env=env, text=True,
                          capture_output=True, timeout=120, check=False)


@pytest.mark.parametrize("point", ["etl.after_copy", "etl.before_commit",
                                   "etl.after_commit_before_pointer"])
def test_kill_9_during_a_load(point: str, etl_database_url: str, lake_dir: Path,
                              db: Any) -> None:
    first = make_world(flights=2, tag="before")
    write_world(lake_dir, first)
    assert etl(etl_database_url, lake_dir).returncode == 0
    before_counts = warehouse.ledger_counts(db)
    before_tables = warehouse.table_counts(db)
    before_pointer = gold.current_run(lake_dir)
    second = make_world(flights=3, tag="after")
    write_world(lake_dir, second, partition=1)

    crashed = etl(etl_database_url, lake_dir, crash_at=point)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert gold.current_run(lake_dir) == before_pointer  # CURRENT never moved
    committed = point == "etl.after_commit_before_pointer"
    if committed:
        assert warehouse.ledger_counts(db) != before_counts
    else:
        assert warehouse.ledger_counts(db) == before_counts
        assert warehouse.table_counts(db) == before_tables

    rerun = etl(etl_database_url, lake_dir)
    assert rerun.returncode == 0, rerun.stderr
    expected = {t: len(first.by_topic.get(t, [])) + len(second.by_topic.get(t, []))
                for t in LAKE_TOPICS}
    assert warehouse.ledger_counts(db) == expected
    if committed:
        assert '"status": "nothing new"' in rerun.stderr  # LOG_FORMAT=json: one event a line
        assert "gold CURRENT recovered" in rerun.stderr
    assert gold.current_run(lake_dir) != before_pointer
    for table in warehouse.GOLD_TABLES:
        assert gold.read_current(lake_dir, table).equals(warehouse.read_table(db, table)), table


def test_kill_9_during_a_first_bulk_load(etl_database_url: str, lake_dir: Path,
                                         db: Any) -> None:
    """The first load drops and rebuilds indexes (bulk): a crash rolls that back too."""
    world = make_world(flights=2)
    write_world(lake_dir, world)
    crashed = etl(etl_database_url, lake_dir, crash_at="etl.before_commit")
    assert crashed.returncode == -signal.SIGKILL
    assert sum(warehouse.ledger_counts(db).values()) == 0
    assert gold.current_run(lake_dir) is None
    assert etl(etl_database_url, lake_dir).returncode == 0
    assert warehouse.ledger_counts(db) == {t: len(world.by_topic.get(t, [])) for t in LAKE_TOPICS}
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() "
                    "AND tablename = 'fact_booking'")
        assert cur.fetchone()[0] == 2  # primary key and the flight index are back
    assert list((lake_dir / "gold" / "runs").iterdir()) == [gold.current_dir(lake_dir)]
