"""``airline-demo``: the whole pipeline on real infrastructure, from a fresh clone, with a
reconciled summary.

It starts what is missing (Apache Kafka in KRaft mode, Postgres, Redis when installed), creates
the topics, injects one malformed booking (to show the dead-letter path), runs producer, engine and
lake writer as separate processes over a bounded closed-loop simulation, then the ETL, and prints
per topic the Kafka records and event ids, the lake lines and the warehouse rows they became. It
exits 0 only if every stage did its part and the counts agree, and stops what it started, also
when a step fails or it is interrupted (Ctrl-C, SIGTERM). A run that agrees then writes what the
users review into ./report: report.html (airline-report) and the Tableau extract
airline_dw.hyper (airline-extract), both read as the BI role.

Each run uses a fresh broker (new cluster id) and a new seed, so a second run shows that the lake
and warehouse keep earlier runs and never mistake new offsets for old ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg2
from airline_core.config import redact_url
from airline_core.logging import configure_logging, get_logger

from airline_devstack import cli as stack
from airline_devstack.lifecycle import signals_unwind
from airline_devstack.paths import repo_root, stack_dir
from airline_devstack.pipeline import PipelineSpec, Processes, run_bounded
from airline_devstack.postgres import BI_READER, as_bi_reader
from airline_devstack.reconcile import format_table, reconcile, reject_counts

log = get_logger(__name__)


FIRST_DEPARTURE = date(2025, 11, 28)  # the user's example flight BA210_2025-11-28


def _next_run() -> int:
    """The number of this demo run in this clone (1, 2, ...), kept in ``.stack/demo-runs``."""
    counter = stack_dir() / "demo-runs"
    runs = int(counter.read_text()) + 1 if counter.is_file() else 1
    counter.parent.mkdir(parents=True, exist_ok=True)
    counter.write_text(f"{runs}\n")
    return runs


def _run_identity(args: argparse.Namespace) -> tuple[int, date]:
    """Seed and first departure date of this run.

    Run n simulates the n-th block of ``--days`` departure days with seed 1000 + n, so the
    flights of successive runs are different flights (flight ids carry the date) and the
    warehouse accumulates runs the way it would accumulate days in production.
    """
    run = _next_run()
    seed = args.seed if args.seed is not None else 1000 + run
    return seed, FIRST_DEPARTURE + timedelta(days=(run - 1) * args.days)


def _ensure_stack(started: ExitStack) -> dict[str, Any]:
    """The stack's endpoints; what this call starts is stopped when `started` unwinds."""
    state_file = stack_dir() / "state.json"
    if state_file.is_file() and stack.cmd_status(argparse.Namespace()) == 0:
        state: dict[str, Any] = json.loads(state_file.read_text())
        return state
    print(
        "starting the local stack (first run resolves the Kafka jars, about a minute)…", flush=True
    )
    return stack.start_stack(started, redis=True)


def _warehouse_summary(database_url: str) -> str:
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("""
            SELECT (SELECT count(*) FROM dim_flight),
                   (SELECT count(*) FROM fact_booking),
                   (SELECT count(*) FROM fact_promotions),
                   (SELECT count(*) FROM fact_flight_outcome),
                   (SELECT round(avg(final_load_factor), 3) FROM fact_flight_outcome)""")
        flights, passengers, promotions, departed, mean_lf = cur.fetchall()[0]
    return (
        f"warehouse totals: {flights} flights, {passengers} booked passengers, "
        f"{promotions} promotions fired, {departed} departed flights with mean final "
        f"load factor {mean_lf}"
    )


def run_demo(args: argparse.Namespace) -> int:
    """One bounded demo run; 0 only if every stage did its part and the counts agree."""
    with ExitStack() as started:
        state = _ensure_stack(started)
        if args.keep_stack:
            started.pop_all()  # the stack is whole: it stays for later runs, until `make down`
        return _run_bounded_demo(args, state)


def _run_bounded_demo(args: argparse.Namespace, state: dict[str, Any]) -> int:
    """The pipeline and its reconciliation, on a stack that is up."""
    seed, start_date = _run_identity(args)
    cluster_id = state["kafka"]["cluster_id"]
    database_url = state["postgres"]["url"]
    log_dir = stack_dir() / "demo" / f"seed-{seed}"
    spec = PipelineSpec(
        bootstrap=state["kafka"]["bootstrap"],
        database_url=database_url,
        lake_dir=args.lake_dir.resolve(),
        log_dir=log_dir,
        seed=seed,
        flights=args.flights,
        days=args.days,
        start_date=start_date.isoformat(),
        redis_url=(state.get("redis") or {}).get("url", ""),
    )
    pg_dir = state["postgres"].get("data_dir")
    print(
        f"demo: seed {seed}, {args.flights} flights over {args.days} days from "
        f"{start_date}, broker "
        f"{spec.bootstrap} (cluster {cluster_id}), warehouse {redact_url(database_url)}"
        + (f" (private cluster in {pg_dir})" if pg_dir else "")
        + f", lake {spec.lake_dir}, logs {log_dir}",
        flush=True,
    )
    rejects_before = reject_counts(database_url)
    outcome = run_bounded(spec)
    print(
        f"pipeline finished in {outcome.seconds:.0f}s; exit codes: "
        + ", ".join(f"{k}={v}" for k, v in outcome.exit_codes.items())
        + (
            f"; final passes after the upstream ended: {outcome.restarts}"
            if outcome.restarts
            else ""
        ),
        flush=True,
    )
    if not outcome.ok:
        print(f"demo FAILED: a component did not finish cleanly; see the logs in {log_dir}")
        return 1
    counts = reconcile(spec.bootstrap, "", spec.lake_dir, cluster_id, database_url, rejects_before)
    print()
    print(format_table(counts))
    print()
    print(_warehouse_summary(database_url))
    empty = [c.topic for c in counts if c.kafka_records == 0]
    disagree = [c.topic for c in counts if not c.agrees]
    if empty or disagree:
        print(f"demo FAILED: topics without events {empty}, counts disagree on {disagree}")
        return 1
    print("demo OK: every topic has events and Kafka = lake = warehouse for each of them.")
    write_review(spec, args.report_dir.resolve())
    return 0


def _reader_url(database_url: str) -> str:
    """The warehouse as the BI tools read it: the read-only role where the server has it."""
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (BI_READER,))
        found = bool(cur.fetchall())
    conn.close()
    return as_bi_reader(database_url) if found else database_url


def write_review(spec: PipelineSpec, out_dir: Path) -> None:
    """What the users open after a run: the HTML report and the Tableau extract, read as the BI
    role. A failure here is reported, not a failed demo: the pipeline itself was proven."""
    reader = dataclasses.replace(spec, extra_env={**spec.extra_env,
                                                  "DATABASE_URL": _reader_url(spec.database_url)})
    processes = Processes(reader)
    png = "true" if shutil.which("chromium") else "false"
    report = processes.run("report", "airline-report", "--out-dir", str(out_dir), "--png", png)
    extract = processes.run("extract", "airline-extract", "--out",
                            str(out_dir / "airline_dw.hyper"))
    if report == 0 and extract == 0:
        print(f"review: open {out_dir / 'report.html'}; in Tableau, tableau/airline.twb (live, "
              f"user {BI_READER}) or the extract {out_dir / 'airline_dw.hyper'}"
              + ("" if png == "true" else " (no chromium: no PNGs)"))
    else:
        print(f"review: report exit {report}, extract exit {extract}; see the logs in "
              f"{spec.log_dir}")


def run_watch(args: argparse.Namespace) -> int:
    """``make up``: the same pipeline at a watchable speed until Ctrl-C, ETL every minute."""
    with ExitStack() as started:
        state = _ensure_stack(started)
        started.pop_all()  # the stack stays until `make down`
    seed, start_date = _run_identity(args)
    spec = PipelineSpec(
        bootstrap=state["kafka"]["bootstrap"],
        database_url=state["postgres"]["url"],
        lake_dir=args.lake_dir.resolve(),
        log_dir=stack_dir() / "watch" / f"seed-{seed}",
        seed=seed,
        flights=args.flights,
        days=args.days,
        start_date=start_date.isoformat(),
        inject_malformed=False,
        free_metrics_ports=False,
        redis_url=(state.get("redis") or {}).get("url", ""),
    )
    processes = Processes(spec)
    stop = {"now": False}
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        if processes.run("topics", "airline-topics", "create") != 0:
            return 1
        processes.start("engine", "airline-engine")
        processes.start("lake-writer", "airline-lake-writer", "--new-source")
        processes.start(
            "producer",
            "airline-producer",
            "--speed",
            str(args.speed),
            "--seed",
            str(seed),
            "--flights",
            str(args.flights),
            "--days",
            str(args.days),
            "--start-date",
            start_date.isoformat(),
            "--promotions",
            "topic",
        )
        print(
            f"running at {args.speed:g}x simulated speed (a simulated day every "
            f"{86400 / args.speed:.0f}s); logs in {spec.log_dir}; metrics and probes on "
            "http://localhost:8001 (producer), :8002 (engine), :8003 (lake writer) "
            "/metrics /healthz /readyz; Ctrl-C stops (then `make down`).",
            flush=True,
        )
        next_etl = time.monotonic() + args.etl_every
        while not stop["now"]:
            time.sleep(1)
            if time.monotonic() >= next_etl:
                code = processes.run("etl", "airline-etl")
                print(f"ETL run exit {code}", flush=True)
                next_etl = time.monotonic() + args.etl_every
        return 0
    finally:
        processes.stop_all()


def build_parser() -> argparse.ArgumentParser:
    """The ``airline-demo`` command line."""
    parser = argparse.ArgumentParser(
        prog="airline-demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--flights", type=int, default=40, help="flights in the simulated schedule (default 40)"
    )
    parser.add_argument("--days", type=int, default=2, help="days of departures (default 2)")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="simulation seed (default: a new one per run, 1001, 1002, ...)",
    )
    parser.add_argument(
        "--lake-dir",
        type=Path,
        default=repo_root() / "lake",
        help="data lake root (default ./lake)",
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=repo_root() / "report",
        help="where the run's review goes: report.html, its charts, the Tableau extract "
        "airline_dw.hyper (default ./report)",
    )
    parser.add_argument(
        "--keep-stack",
        action="store_true",
        help="leave the stack running after a bounded run (stop: make down)",
    )
    parser.add_argument(
        "--watch",
        action="store_true",
        help="run at a watchable speed until Ctrl-C (what `make up` runs)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=8640.0,
        help="with --watch: simulated seconds per real second (default 8640: "
        "a simulated day every 10 s, a flight's 90-day sale in 15 min)",
    )
    parser.add_argument(
        "--etl-every",
        type=float,
        default=60.0,
        help="with --watch: seconds between ETL runs (default 60)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``airline-demo``."""
    configure_logging(component="airline-demo")
    args = build_parser().parse_args(argv)
    with signals_unwind():
        return run_watch(args) if args.watch else run_demo(args)


if __name__ == "__main__":
    sys.exit(main())
