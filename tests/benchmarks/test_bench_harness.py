"""The benchmark harness: rounds in rotated order, medians, ratios against the peer, results.

Numbers are never asserted (speed is measured by ``make bench``, not tested); what is tested
is that the harness reports what it measured, and that the whole run works end to end in its
quick mode on the session's broker and Postgres.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import psycopg2
import pytest

from benchmarks import etl
from benchmarks.__main__ import STAGES
from benchmarks.harness import ROOT, Result, alternate, markdown, write


def test_alternate_rotates_the_order_every_round() -> None:
    calls: list[tuple[int, str]] = []

    def subject(name: str):
        def measure(r: int) -> float:
            calls.append((r, name))
            return float(len(calls))
        return measure

    values = alternate(3, {n: subject(n) for n in ("ours", "peer", "other")},
                       progress=lambda _line: None)
    assert [name for _, name in calls] == ["ours", "peer", "other", "peer", "other", "ours",
                                           "other", "ours", "peer"]
    assert values == {"ours": [1.0, 6.0, 8.0], "peer": [2.0, 4.0, 9.0],
                      "other": [3.0, 5.0, 7.0]}


def test_result_statistics_and_the_ratio_against_the_peer() -> None:
    ours = Result("engine", "airline-engine", "events/s", [30.0, 10.0, 20.0])
    peer = Result("engine", "quix", "events/s", [5.0, 10.0, 15.0], peer_of="airline-engine")
    slow = Result("latency", "ours p99", "ms", [100.0, 200.0], higher_is_better=False)
    slow_peer = Result("latency", "theirs p99", "ms", [400.0], higher_is_better=False,
                       peer_of="ours p99")
    assert (ours.median, ours.low, ours.high) == (20.0, 10.0, 30.0)
    table = markdown([ours, peer, slow, slow_peer], {"cores": 2, "rounds": 3}, "make bench")
    rows = {line.split("|")[2].strip(): line for line in table.splitlines() if "|" in line}
    assert "x2.00 vs quix" in rows["airline-engine"]
    assert "x2.67 vs theirs p99" in rows["ours p99"]  # lower is better: 400 / 150
    assert "vs" not in rows["quix"].split("|")[6]
    assert "| 20 | [10, 30] |" in rows["airline-engine"]


def test_write_keeps_every_round_and_the_machine(tmp_path: Path) -> None:
    ours = Result("etl", "airline-etl", "events/s", [1.0, 2.0, 3.0], extra={"peak_rss_mib": 9})
    as_json, as_md = write([ours], {"cores": 2, "rounds": 3}, "make bench", tmp_path, "run")
    saved = json.loads(as_json.read_text())
    assert saved["command"] == "make bench"
    assert saved["machine"]["cores"] == 2
    (only,) = saved["results"]
    assert only["values"] == [1.0, 2.0, 3.0]
    assert (only["median"], only["min"], only["max"]) == (2.0, 1.0, 3.0)
    assert only["extra"] == {"peak_rss_mib": 9}
    assert "| etl | airline-etl | events/s |" in as_md.read_text()


def test_unknown_stage_is_refused_naming_the_flag() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--stages", "engin"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "--stages: unknown stage(s) ['engin']" in done.stderr


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.postgres
def test_quick_run_of_every_stage(kafka_bootstrap: str, database_url: str,
                                  tmp_path: Path) -> None:
    """``make bench``'s code path with tiny inputs: every stage reports its subjects."""
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "DATABASE_URL": database_url, "BENCH_WORK_DIR": str(tmp_path)}
    out = tmp_path / "quick"
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--rounds", "1",
                           "--out", str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["machine"]["quick"] is True
    stages = {r["stage"] for r in saved["results"]}
    assert stages == set(STAGES)
    for result in saved["results"]:
        assert len(result["values"]) == 1 and result["values"][0] > 0, result
    peers = {r["peer_of"] for r in saved["results"] if r["peer_of"]}
    subjects = {r["subject"] for r in saved["results"]}
    assert peers <= subjects, "every peer names a subject of the run"
    assert "| stage | subject |" in done.stdout


def test_a_load_past_its_budget_is_stopped_and_says_so(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The 10M-event ETL load is killed at its budget (make bench must end in time), and a
    load that ends in time is reported as finished; a failing one still raises."""
    def script(body: str) -> Path:
        path = tmp_path / f"fake-etl-{len(list(tmp_path.iterdir()))}"
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
        return path

    monkeypatch.setattr(etl, "ETL", script("exec sleep 30"))
    stopped = etl.etl("postgresql://unused", tmp_path, tmp_path, budget_s=0.5)
    assert not stopped.finished and 0.5 <= stopped.seconds < 10
    monkeypatch.setattr(etl, "ETL", script("exit 0"))
    assert etl.etl("postgresql://unused", tmp_path, tmp_path, budget_s=30).finished
    monkeypatch.setattr(etl, "ETL", script("echo broken; exit 3"))
    with pytest.raises(RuntimeError, match="failed \\(3\\): broken"):
        etl.etl("postgresql://unused", tmp_path, tmp_path)


def test_a_stopped_loads_session_is_ended(database_url: str) -> None:
    """A killed client's backend would run its statement to the end holding its locks; the
    bench ends it by its application name."""
    outcome: list[BaseException | None] = []
    sep = "&" if "?" in database_url else "?"

    def sleeper() -> None:
        conn = psycopg2.connect(f"{database_url}{sep}application_name=bench-test-sleeper")
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_sleep(60)")
            outcome.append(None)
        except psycopg2.Error as e:
            outcome.append(e)
        finally:
            conn.close()

    worker = threading.Thread(target=sleeper)
    worker.start()
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        for _ in range(100):
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                        "'bench-test-sleeper' AND state = 'active'")
            if cur.fetchone() == (1,):
                break
            threading.Event().wait(0.1)
    conn.close()
    etl.end_sessions(database_url, "bench-test-sleeper")
    worker.join(timeout=20)
    assert not worker.is_alive()
    assert isinstance(outcome[0], psycopg2.OperationalError)
