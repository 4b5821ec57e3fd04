"""ETL load-rate benchmark: build a lake of about N events, then time a full load.

    .venv/bin/python -m benchmarks.etl --flights 1000 --bookings 200 \\
        --lake /tmp/etl-bench-lake --database-url postgresql://...

The lake is the testkit's world (:func:`airline_testkit.events.make_world`, every event type)
in the lake writer's layout, built once per ``--lake`` dir (without ``--lake``: in a temp dir,
removed afterwards). Without ``--database-url`` a throwaway Postgres is started (and removed),
as the lake writer's benchmark starts its own broker. Prints distinct events per second end to
end and per phase, and a raw COPY baseline (the same ledger rows COPYed into an unindexed
table) for comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import polars as pl
import psycopg2
from airline_core.config import from_values
from airline_devstack.postgres import DatabaseUrl, PostgresServer, provision
from airline_etl import app, lake, tables, transform
from airline_etl.settings import Settings
from airline_testkit.events import make_world
from airline_testkit.lake import write_world
from airline_testkit.net import free_port


@contextlib.contextmanager
def throwaway_database() -> Iterator[str]:
    """A private Postgres cluster with an empty warehouse database, removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="etl-bench-pg-"))
    base.chmod(0o755)  # the `postgres` OS user must enter it when run as root
    server = PostgresServer(base / "data", free_port())
    try:
        server.start()
        url = server.url("airline", "airline", "airline_dw")
        provision(server.admin, DatabaseUrl.parse(url))
        yield url
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Build (once) and load the benchmark lake."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.etl", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--flights", type=int, default=1000)
    p.add_argument("--bookings", type=int, default=200)
    p.add_argument("--lake", type=Path, help="lake dir (reused if built); default a temp dir")
    p.add_argument("--database-url", help="warehouse; default a throwaway Postgres")
    p.add_argument("--incremental-flights", type=int, default=0,
                   help="after the full load, add this many flights and time an incremental run")
    args = p.parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.lake is None:
            args.lake = Path(tempfile.mkdtemp(prefix="etl-bench-lake-"))
            stack.callback(shutil.rmtree, args.lake, ignore_errors=True)
        if args.database_url is None:
            args.database_url = stack.enter_context(throwaway_database())
        run(args)


def run(args: argparse.Namespace) -> None:
    """Build the lake unless it exists, load it in full (and incrementally), then COPY."""
    if not (args.lake / "raw").exists():
        t = time.monotonic()
        total = 0
        for chunk in range(0, args.flights, 100):
            world = make_world(flights=min(100, args.flights - chunk),
                               bookings_per_flight=args.bookings, tag=f"c{chunk}")
            write_world(args.lake, world, partition=chunk // 100, roll_size=50_000)
            total += sum(len(v) for v in world.by_topic.values())
        print(f"lake: {total} events written in {time.monotonic() - t:.1f}s")
    # With many bookings per flight the world books past departure (one booking every 10
    # hours), and the contract rejects those metrics: a load-rate benchmark counts them as
    # rejects (the summary shows how many) instead of stopping at the reject limit.
    given = {"DATABASE_URL": args.database_url, "LAKE_DIR": str(args.lake), "ETL_FULL": "true",
             "ETL_MAX_REJECT_SHARE": "1",
             "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING")}
    settings = from_values(Settings, given, environ={})
    t = time.monotonic()
    summary = app.run(settings)
    seconds = time.monotonic() - t
    print(summary.render())
    events = summary.total_events
    rows = sum(summary.staged.values())
    print(f"ETL full load: {events} events ({rows} staged rows) in {seconds:.1f}s = "
          f"{events / seconds:,.0f} events/s, {rows / seconds:,.0f} rows/s")
    # An incremental run on top: a further batch of flights in new rolls (upsert path).
    if args.incremental_flights:
        extra = make_world(flights=args.incremental_flights, bookings_per_flight=args.bookings,
                           tag=f"inc{time.time_ns()}")
        write_world(args.lake, extra, partition=999, first=time.time_ns() // 1000,
                    roll_size=50_000)
        inc_settings = from_values(Settings, {**given, "ETL_FULL": "false"}, environ={})
        t = time.monotonic()
        inc = app.run(inc_settings)
        inc_seconds = time.monotonic() - t
        print(inc.render())
        print(f"ETL incremental: {inc.total_events} events into a warehouse of {events} in "
              f"{inc_seconds:.1f}s = {inc.total_events / inc_seconds:,.0f} events/s")
    # Raw COPY baseline: the ledger rows of every topic into a bare table.
    entries = lake.discover(args.lake)
    ledgers = []
    for topic in sorted({e.topic for e in entries}):
        lines = pl.concat([lake.read_entry(args.lake, e) for e in entries if e.topic == topic])
        ledgers.append(tables.ledger(transform.validate(lines, topic)))
    frame = pl.concat(ledgers)
    buf = io.BytesIO()
    frame.write_csv(buf, include_header=False)
    conn = psycopg2.connect(args.database_url)
    with conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE raw_copy (event_id text, topic text, event_type text, "
                    "event_time timestamptz, flight_id text, source_file text)")
        buf.seek(0)
        t = time.monotonic()
        cur.copy_expert("COPY raw_copy FROM STDIN WITH (FORMAT csv)", buf)
        copy_seconds = time.monotonic() - t
    conn.rollback()
    print(f"raw COPY baseline: {frame.height} ledger rows in {copy_seconds:.1f}s = "
          f"{frame.height / copy_seconds:,.0f} rows/s")


if __name__ == "__main__":
    main()
