"""Load-rate benchmark (not a test): build a lake of about N events, then time a full load.

    .venv/bin/python tests/etl/bench_etl_load.py --flights 1000 --bookings 200 \
        --lake /tmp/etl-bench-lake --database-url postgresql://...

Prints distinct events per second end to end and per phase, and a raw COPY baseline (the same
ledger rows COPYed into an unindexed table) for comparison.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import polars as pl
import psycopg2
from airline_core.config import from_values

sys.path.insert(0, str(Path(__file__).parent))
from airline_etl import app, lake, tables, transform
from airline_etl.settings import Settings
from etl_lake_fixtures import make_world, write_world


def main() -> None:
    """Build (once) and load the benchmark lake."""
    p = argparse.ArgumentParser()
    p.add_argument("--flights", type=int, default=1000)
    p.add_argument("--bookings", type=int, default=200)
    p.add_argument("--lake", type=Path, required=True)
    p.add_argument("--database-url", required=True)
    p.add_argument("--incremental-flights", type=int, default=0,
                   help="after the full load, add this many flights and time an incremental run")
    args = p.parse_args()
    if not (args.lake / "raw").exists():
        t = time.monotonic()
        total = 0
        for chunk in range(0, args.flights, 100):
            world = make_world(flights=min(100, args.flights - chunk),
                               bookings_per_flight=args.bookings, tag=f"c{chunk}")
            write_world(args.lake, world, partition=chunk // 100, roll_size=50_000)
            total += sum(len(v) for v in world.by_topic.values())
        print(f"lake: {total} events written in {time.monotonic() - t:.1f}s")
    given = {"DATABASE_URL": args.database_url, "LAKE_DIR": str(args.lake), "ETL_FULL": "true",
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
