"""``python -m benchmarks.etl``: the ETL's full load against a raw ``COPY`` of the same rows.

The lake is the testkit's world (every event type, no rejects) copied with distinct ids
(:func:`airline_testkit.lake.write_copies`) in the lake writer's layout, built once per size.
Each round loads it into a fresh schema of the run's Postgres:

- ``airline-etl`` (``ETL_FULL=true``, its console script): lake → validated, deduplicated gold
  parquet and the typed warehouse; events/s over the process's wall time, and its peak RSS
  (``wait4``'s ``ru_maxrss``);
- the peers: every warehouse table the ETL just filled, dumped (``COPY TO``) and loaded again
  with ``COPY FROM`` into an empty copy of itself, once with the same indexes and constraints
  (``LIKE … INCLUDING ALL``) and once bare; the same rows in the same tables with none of the
  reading, validating and transforming, so its rate (lake events per second of COPY) is the
  ceiling of the load step.

The 10M-event lake is loaded once, within :data:`LARGE_BUDGET_S`: stopped there, its row says
so and gives the rate it stayed below and the memory it had reached.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple
from urllib.parse import quote

import psycopg2
from airline_testkit.lake import write_copies
from psycopg2 import sql

from benchmarks.harness import Bench, Result, alternate, say, standalone

ETL = Path(sys.executable).with_name("airline-etl")


@contextlib.contextmanager
def fresh_schema(database_url: str, name: str) -> Iterator[tuple[str, str]]:
    """A new schema and ``database_url`` with its ``search_path`` on it, dropped afterwards."""
    schema = f"bench_{name}_{time.time_ns()}"
    with contextlib.closing(psycopg2.connect(database_url)) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.commit()
    sep = "&" if "?" in database_url else "?"
    try:
        yield schema, f"{database_url}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with contextlib.closing(psycopg2.connect(database_url)) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
            conn.commit()


#: Wall seconds the single 10M-event load may take before it is stopped (its figure is then an
#: upper bound): ``make bench`` must finish within its 30 minutes whatever the ETL does.
LARGE_BUDGET_S: Final = 420.0


class Load(NamedTuple):
    """One ETL run: wall seconds, peak RSS in MiB, and whether it finished within its budget."""

    seconds: float
    peak_rss_mib: int
    finished: bool


def etl(url: str, lake: Path, work: Path, budget_s: float | None = None) -> Load:
    """One full load, stopped (SIGKILL) once it has run ``budget_s`` seconds."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DATABASE_URL": url,
           "LAKE_DIR": str(lake), "ETL_FULL": "true", "LOG_FORMAT": "json",
           "LOG_LEVEL": "WARNING", "HOME": str(work)}
    log = work / "etl.log"
    started = time.monotonic()
    with log.open("wb") as out:
        child = subprocess.Popen([str(ETL)], env=env, stdout=out, stderr=subprocess.STDOUT)
        finished = True
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if budget_s is not None and time.monotonic() - started > budget_s:
                child.kill()
                finished = False
                _, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(0.2)
        child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    if finished and child.returncode != 0:
        raise RuntimeError(f"airline-etl failed ({child.returncode}): "
                           f"{log.read_text()[-3000:]}")
    return Load(seconds, usage.ru_maxrss // 1024, finished)


#: ``application_name`` of the big load's connection, so its session can be ended when stopped.
LARGE_APPLICATION: Final = "bench-etl-large"


def end_sessions(database_url: str, application_name: str) -> None:
    """End the server sessions of a killed client: a backend runs its statement to the end
    before it notices the client is gone, holding its locks (the schema's DROP would wait)."""
    with contextlib.closing(psycopg2.connect(database_url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s AND pid <> pg_backend_pid()",
                    (application_name,))
        conn.commit()


def tables(conn: psycopg2.extensions.connection) -> list[str]:
    """The base tables of the connection's schema (the warehouse the ETL built)."""
    with conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' "
                    "ORDER BY table_name")
        return [name for (name,) in cur.fetchall()]


def dump(url: str) -> dict[str, bytes]:
    """Every warehouse table's rows, as ``COPY TO`` writes them."""
    out: dict[str, bytes] = {}
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        for table in tables(conn):
            buf = io.BytesIO()
            cur.copy_expert(sql.SQL("COPY {} TO STDOUT").format(
                sql.Identifier(table)).as_string(conn), buf)
            out[table] = buf.getvalue()
    return out


def raw_copy(url: str, template: str, rows: dict[str, bytes], indexed: bool) -> float:
    """COPY the dumped rows into empty copies of ``template``'s tables; seconds of COPY."""
    like = sql.SQL("INCLUDING ALL" if indexed else "INCLUDING DEFAULTS")
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        for table in rows:
            cur.execute(sql.SQL("CREATE TABLE {} (LIKE {} {})").format(
                sql.Identifier(table), sql.Identifier(template, table), like))
        conn.commit()
        started = time.monotonic()
        for table, data in rows.items():
            cur.copy_expert(sql.SQL("COPY {} FROM STDIN").format(
                sql.Identifier(table)).as_string(conn), io.BytesIO(data))
        conn.commit()
        return time.monotonic() - started


def build_lake(bench: Bench, copies: int) -> tuple[Path, int, str]:
    """A lake of ``copies`` template worlds: its directory, events and size label."""
    lake = bench.scratch(f"etl-lake-{copies}") / "lake"
    started = time.monotonic()
    events = write_copies(lake, copies)
    say(f"  lake: {events:,} events in {time.monotonic() - started:.0f} s")
    label = f"{events / 1e6:.0f}M events" if events >= 1e6 else f"{events:,} events"
    return lake, events, label


def compared(label: str, ours: list[float], indexed: list[float], bare: list[float],
             ours_notes: str, extra: dict[str, Any]) -> list[Result]:
    """The ETL's row and its two raw ``COPY`` peers' rows, for a lake of ``label``."""
    ours_name = f"airline-etl, {label}"
    return [Result("etl", ours_name, "events/s", ours, notes=ours_notes, extra=extra),
            Result("etl", f"raw COPY, {label}, indexed", "events/s", indexed,
                   peer_of=ours_name,
                   notes="the ETL's rows COPYed into the same tables, indexes and constraints"),
            Result("etl", f"raw COPY, {label}, no indexes", "events/s", bare,
                   notes="the same rows into the tables without indexes or constraints")]


def one_size(bench: Bench, copies: int, rounds: int) -> list[Result]:
    """Build a lake of ``copies`` template worlds, then alternate the ETL and the COPYs."""
    database_url = bench.database_url or ""
    lake, events, label = build_lake(bench, copies)
    ours_name, indexed_name, bare_name = (f"airline-etl, {label}", f"raw COPY, {label}, indexed",
                                          f"raw COPY, {label}, no indexes")
    rss: list[int] = []
    rows: dict[str, bytes] = {}
    template: list[str] = []  # the schema of the first load, kept for the COPYs' tables

    with contextlib.ExitStack() as keep:

        def ours(r: int) -> float:
            with contextlib.ExitStack() as stack:
                schema, url = stack.enter_context(fresh_schema(database_url, "etl"))
                load = etl(url, lake, bench.scratch(f"etl-run-{r}"))
                rss.append(load.peak_rss_mib)
                if not template:
                    rows.update(dump(url))
                    template.append(schema)
                    keep.push(stack.pop_all())
            return events / load.seconds

        def copy(indexed: bool) -> float:
            assert template, "the first round loads with the ETL first"
            with fresh_schema(database_url, "copy") as (_, url):
                return events / raw_copy(url, template[0], rows, indexed)

        measured = alternate(rounds, {ours_name: ours, indexed_name: lambda _: copy(True),
                                      bare_name: lambda _: copy(False)})
    total_rows = sum(data.count(b"\n") for data in rows.values())
    return compared(label, measured[ours_name], measured[indexed_name], measured[bare_name],
                    f"full load, lake → gold + Postgres ({total_rows:,} rows); peak RSS "
                    f"{max(rss)} MiB", {"peak_rss_mib": rss, "events": events})


def large(bench: Bench, copies: int) -> list[Result]:
    """One load of a big lake within :data:`LARGE_BUDGET_S`: its rate and peak memory, or,
    stopped at the budget, the rate it stayed below and the memory it had reached."""
    lake, events, label = build_lake(bench, copies)
    database_url = bench.database_url or ""
    with fresh_schema(database_url, "etl") as (schema, url):
        load = etl(f"{url}&application_name={LARGE_APPLICATION}", lake,
                   bench.scratch("etl-run-large"), LARGE_BUDGET_S)
        if not load.finished:
            end_sessions(database_url, LARGE_APPLICATION)
        say(f"  airline-etl, {label}: {load.seconds:.0f} s, peak RSS {load.peak_rss_mib} MiB"
            + ("" if load.finished else " (stopped at the budget)"))
        extra = {"peak_rss_mib": [load.peak_rss_mib], "events": events,
                 "finished": load.finished, "budget_s": LARGE_BUDGET_S}
        if load.finished:
            rows = dump(url)
            rates = {}
            for indexed in (True, False):
                with fresh_schema(database_url, "copy") as (_, copy_url):
                    rates[indexed] = events / raw_copy(copy_url, schema, rows, indexed)
            return compared(label, [events / load.seconds], [rates[True]], [rates[False]],
                            f"full load, one round: {load.seconds:.0f} s; peak RSS "
                            f"{load.peak_rss_mib} MiB", extra)
    return [Result("etl", f"airline-etl, {label}, stopped at {LARGE_BUDGET_S:.0f} s",
                   "events/s (upper bound)", [events / load.seconds],
                   notes=f"did not finish within the {LARGE_BUDGET_S:.0f} s budget, so below "
                         f"this rate; peak RSS {load.peak_rss_mib} MiB when stopped",
                   extra=extra)]


def run(bench: Bench) -> list[Result]:
    """1M events over the rounds (against the COPYs), and 10M once within a budget (its lake
    alone takes a minute to write)."""
    assert bench.database_url, "the ETL stage needs Postgres"
    results = one_size(bench, bench.scale(12, 1), bench.rounds)
    if not bench.quick:
        results += large(bench, 118)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    return standalone("etl", run, kafka=False, postgres=True, argv=argv, doc=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
