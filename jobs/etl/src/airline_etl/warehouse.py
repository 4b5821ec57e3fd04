"""Postgres side: migrations, COPY into TEMP staging tables, set-based upserts, derived tables,
bookkeeping (loaded files, ledger, rejects, runs) and export for gold — all inside the caller's
single transaction, so a run that dies midway leaves the warehouse exactly as it was.

Every statement is replay-safe: facts are keyed (event id, or booking and passenger), updates
carry ``IS DISTINCT FROM`` guards so re-applying the same rows changes nothing, and the tables
that depend on several events (cancellation time, promotion end time, ``dim_flight``,
``fact_flight_outcome``) are recomputed from the warehouse for what the run touched, so loading
the lake in several runs gives the same warehouse as loading it in one.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import IO, Any, Final

import polars as pl
import psycopg2
import psycopg2.extensions
from airline_core.logging import get_logger
from airline_core.topics import LAKE_TOPICS
from psycopg2 import sql

from airline_etl import derived
from airline_etl.errors import MigrationError
from airline_etl.tables import STAGING_COLUMNS

log = get_logger(__name__)

#: pg advisory lock keys (arbitrary constants, one per purpose).
MIGRATION_LOCK: Final = 7_406_111_001
LOAD_LOCK: Final = 7_406_111_002
_COPY_CHUNK_ROWS: Final = 500_000
_CSV_TIME: Final = "%Y-%m-%dT%H:%M:%S%.6f%:z"

#: staging name → (target table, primary key columns).
TARGETS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "ledger": ("etl_event_ledger", ("event_id",)),
    "flight_event": ("fact_flight_event", ("event_id",)),
    "flight_cabin": ("dim_flight_cabin", ("flight_id", "cabin_code")),
    "booking": ("fact_booking", ("booking_id", "passenger_id")),
    "booking_cancellation": ("fact_booking_cancellation", ("booking_id", "passenger_id")),
    "inventory_metrics": ("fact_inventory_metrics", ("event_id",)),
    "promotion": ("fact_promotions", ("event_id",)),
    "promotion_end": ("fact_promotion_end", ("promo_id",)),
    "dead_letter": ("dead_letters", ("event_id",)),
    "input_position": ("etl_input_positions",
                       ("generation", "topic", "kafka_partition", "kafka_offset")),
}

#: Tables written to gold parquet (every user-facing table), with their sort key.
GOLD_TABLES: Final[dict[str, tuple[str, ...]]] = {
    "dim_flight": ("flight_id",),
    "dim_flight_cabin": ("flight_id", "cabin_code"),
    "dim_date": ("date_key",),
    "fact_booking": ("booking_id", "passenger_id"),
    "fact_booking_cancellation": ("booking_id", "passenger_id"),
    "fact_inventory_metrics": ("event_id",),
    "fact_promotions": ("event_id",),
    "fact_promotion_end": ("promo_id",),
    "fact_flight_event": ("event_id",),
    "fact_flight_outcome": ("flight_id",),
    "dead_letters": ("event_id",),
}

#: Emptied by ``--full`` (history of runs is kept).
DATA_TABLES: Final = (*GOLD_TABLES, "etl_event_ledger", "etl_loaded_files", "etl_rejects",
                      "etl_input_positions", "etl_engine_verdicts")


# --------------------------------------------------------------------------- connection
def connect(url: str) -> psycopg2.extensions.connection:
    """A connection in UTC with autocommit off (the run's one transaction starts implicitly)."""
    conn = psycopg2.connect(url, connect_timeout=10, application_name="airline-etl")
    with conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
    conn.commit()
    return conn


#: Staged rejects into ``etl_rejects`` (a line rejected again keeps one row, the newest run's).
REJECTS_UPSERT: Final = (
    "INSERT INTO etl_rejects (source_file, line_number, topic, reason, raw_line, event_id, "
    "reason_code, run_id) SELECT source_file, line_number, topic, reason, raw_line, event_id, "
    "reason_code, %s FROM stg_rejects ON CONFLICT (source_file, line_number) DO UPDATE SET "
    "reason = EXCLUDED.reason, raw_line = EXCLUDED.raw_line, event_id = EXCLUDED.event_id, "
    "topic = EXCLUDED.topic, reason_code = EXCLUDED.reason_code, run_id = EXCLUDED.run_id")

#: The run's engine verdicts (``stg_verdicts``, :mod:`airline_etl.verdicts`) into
#: ``etl_engine_verdicts``; a verdict already known stands.
VERDICTS_UPSERT: Final = (
    "INSERT INTO etl_engine_verdicts (generation, source_topic, source_partition, "
    "source_offset, reason_code, reason, dead_letter_event_id, run_id) SELECT generation, "
    "source_topic, source_partition, source_offset, reason_code, reason, dead_letter_event_id, "
    "%s FROM stg_verdicts ON CONFLICT DO NOTHING")


# --------------------------------------------------------------------------- migrations
@dataclass(frozen=True)
class Migration:
    """One versioned SQL file ``NNN_name.sql``."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """sha256 of the file: an applied migration must never change."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations() -> list[Migration]:
    """The packaged migrations, in version order."""
    found = []
    for entry in resources.files("airline_etl.migrations").iterdir():
        match = re.match(r"^(\d{3})_(\w+)\.sql$", entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def migrate(conn: psycopg2.extensions.connection) -> list[int]:
    """Apply missing migrations in one transaction under an advisory lock; returns versions
    applied. Raises :class:`MigrationError` when an applied file was edited."""
    applied_now: list[int] = []
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            cur.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())""")
            cur.execute("SELECT version, checksum FROM schema_migrations")
            applied = dict(cur.fetchall())
            for m in migrations():
                if m.version in applied:
                    if applied[m.version] != m.checksum:
                        raise MigrationError(
                            f"migration {m.version:03d}_{m.name} changed after it was applied; "
                            "add a new migration instead")
                    continue
                cur.execute(m.sql)
                # clock_timestamp(): compared with etl_runs.committed_at (latest_run).
                cur.execute("INSERT INTO schema_migrations (version, name, checksum, applied_at) "
                            "VALUES (%s, %s, %s, clock_timestamp())",
                            (m.version, m.name, m.checksum))
                applied_now.append(m.version)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    if applied_now:
        log.info("migrations applied", versions=applied_now)
    return applied_now


# --------------------------------------------------------------------------- run transaction
def begin_load(conn: psycopg2.extensions.connection, full: bool) -> set[tuple[str, str]]:
    """Start the run's transaction: take the load lock (one run at a time), empty the tables
    for ``--full``, and return the (file key, sha256) pairs already loaded."""
    with conn.cursor() as cur:
        cur.execute("SET LOCAL lock_timeout = '60s'")
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOAD_LOCK,))
        cur.execute("SET LOCAL lock_timeout = 0")
        # Bulk loads rebuild indexes by sorting; derived tables hash-join whole facts.
        cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
        cur.execute("SET LOCAL work_mem = '64MB'")
        if full:
            cur.execute("TRUNCATE " + ", ".join(DATA_TABLES))
        cur.execute("SELECT file_key, sha256 FROM etl_loaded_files")
        return {(k, s) for k, s in cur.fetchall()}


def bulk_candidates(conn: psycopg2.extensions.connection) -> set[str]:
    """Stages whose target table is empty now (a first load, or ``--full`` after TRUNCATE).

    Those are loaded in bulk: indexes dropped, COPY straight into the table, indexes rebuilt
    (sorting once is much faster than inserting keys one by one), and ``stg_<stage>`` becomes a
    view of the table, which then holds exactly this run's rows.
    """
    bulk = set()
    with conn.cursor() as cur:
        for stage, (target, _) in TARGETS.items():
            cur.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(
                sql.Identifier(target)))
            if cur.fetchone()[0]:  # type: ignore[index]
                bulk.add(stage)
    return bulk


def create_staging(conn: psycopg2.extensions.connection,
                   bulk: AbstractSet[str] = frozenset()) -> None:
    """One TEMP table per staging frame, typed like its target and dropped at commit (a TEMP
    view of the target for stages loaded in bulk)."""
    with conn.cursor() as cur:
        for stage, (target, _) in TARGETS.items():
            names = {"stage": sql.Identifier(f"stg_{stage}"), "target": sql.Identifier(target),
                     "cols": sql.SQL(", ").join(map(sql.Identifier, STAGING_COLUMNS[stage]))}
            if stage in bulk:
                cur.execute(sql.SQL("CREATE OR REPLACE TEMP VIEW {stage} AS "
                                    "SELECT {cols} FROM {target}").format(**names))
            else:
                cur.execute(sql.SQL("DROP VIEW IF EXISTS {stage}").format(**names))
                cur.execute(sql.SQL("CREATE TEMP TABLE {stage} ON COMMIT DROP AS "
                                    "SELECT {cols} FROM {target} WITH NO DATA").format(**names))
        cur.execute("CREATE TEMP TABLE stg_rejects ON COMMIT DROP AS SELECT source_file, "
                    "line_number, topic, reason, raw_line, event_id, reason_code FROM "
                    "etl_rejects WITH NO DATA")
        cur.execute("CREATE TEMP TABLE stg_files ON COMMIT DROP AS SELECT file_key, sha256, "
                    "kind, topic, records FROM etl_loaded_files WITH NO DATA")


def drop_indexes(conn: psycopg2.extensions.connection, bulk: AbstractSet[str]
                 ) -> list[sql.Composable]:
    """Drop the primary keys and indexes of the bulk targets; returns the DDL that rebuilds
    them (run by :func:`apply`, in the same transaction). The definitions are the server's own
    (``pg_get_constraintdef``, ``pg_indexes``), every name an identifier."""
    rebuild: list[sql.Composable] = []
    with conn.cursor() as cur:
        for stage in sorted(bulk):
            target = TARGETS[stage][0]
            cur.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                        "WHERE conrelid = %s::regclass AND contype = 'p'", (target,))
            for name, definition in cur.fetchall():
                rebuild.append(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                    sql.Identifier(target), sql.Identifier(name), sql.SQL(definition)))
                cur.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                    sql.Identifier(target), sql.Identifier(name)))
            cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s "
                        "AND schemaname = current_schema()", (target,))
            for name, definition in cur.fetchall():
                rebuild.append(sql.SQL(definition))
                cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
            rebuild.append(sql.SQL("ANALYZE {}").format(sql.Identifier(target)))
    return rebuild


def _csv_ready(frame: pl.DataFrame) -> pl.DataFrame:
    """Text without NUL bytes (Postgres text cannot hold them)."""
    strings = [n for n, t in frame.schema.items() if t == pl.String]
    if not strings:
        return frame
    return frame.with_columns(pl.col(strings).str.replace_all("\x00", "", literal=True))


def copy_frame(conn: psycopg2.extensions.connection, table: str, frame: pl.DataFrame) -> int:
    """COPY ``frame`` into ``table`` as CSV (null = unquoted empty, '' = quoted), in chunks."""
    if frame.height == 0:
        return 0
    copy = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, frame.columns)))
    with conn.cursor() as cur:
        for offset in range(0, frame.height, _COPY_CHUNK_ROWS):
            buf = io.BytesIO()
            _csv_ready(frame.slice(offset, _COPY_CHUNK_ROWS)).write_csv(
                buf, include_header=False, datetime_format=_CSV_TIME, null_value="")
            buf.seek(0)
            cur.copy_expert(copy, buf)
    return frame.height


def _upsert(stage: str, *, exclude: tuple[str, ...] = (), nothing: bool = False,
            extra: Mapping[str, str] | None = None, where: str = "") -> sql.Composed:
    """``INSERT ... SELECT FROM stg ON CONFLICT`` that changes a row only when it differs.
    Every name is an identifier; ``extra`` maps a column to its SQL value (a ``%s``
    placeholder or an expression of this module), ``where`` is a condition of this module."""
    target, key = TARGETS[stage]
    extra = dict(extra or {})
    cols = list(STAGING_COLUMNS[stage])
    ident = sql.Identifier

    def names(columns: list[str] | tuple[str, ...], prefix: str = "") -> sql.Composed:
        return sql.SQL(", ").join(
            sql.SQL(prefix) + ident(c) if prefix else ident(c) for c in columns)

    head = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) ").format(
        ident(target), names([*cols, *extra]),
        sql.SQL(", ").join([*map(ident, cols), *map(sql.SQL, extra.values())]),
        ident(f"stg_{stage}"), names(key))
    if nothing:
        return head + sql.SQL("DO NOTHING")
    updated = [c for c in [*cols, *extra] if c not in key and c not in exclude]
    sets = sql.SQL(", ").join(sql.SQL("{} = EXCLUDED.{}").format(ident(c), ident(c))
                              for c in updated)
    differs = sql.SQL("({}) IS DISTINCT FROM ({})").format(
        sql.SQL(", ").join(sql.SQL("{}.{}").format(ident(target), ident(c)) for c in updated),
        names(updated, "EXCLUDED."))
    statement = head + sql.SQL("DO UPDATE SET {} WHERE {}").format(sets, differs)
    return statement + sql.SQL(f" AND {where}") if where else statement


def apply(conn: psycopg2.extensions.connection, run_id: str,
          bulk: AbstractSet[str] = frozenset(), rebuild: list[sql.Composable] | None = None
          ) -> dict[str, int]:
    """Upsert staging into the warehouse and recompute what depends on it; returns the number
    of rows each statement inserted or changed (0 everywhere on a replay). Bulk stages are
    already in their tables: their indexes are rebuilt (``rebuild``) instead."""
    statements: list[tuple[str, str | sql.Composable, tuple[Any, ...]]] = [
        ("etl_event_ledger", _upsert("ledger", nothing=True, extra={"loaded_run_id": "%s"}),
         (run_id,)),
        ("etl_input_positions", _upsert("input_position", nothing=True), ()),
        ("fact_flight_event", _upsert("flight_event"), ()),
        ("dim_flight_cabin", _upsert(
            "flight_cabin",
            where="EXCLUDED.schedule_event_time >= dim_flight_cabin.schedule_event_time"), ()),
        ("fact_booking", _upsert("booking"), ()),
        ("fact_booking_cancellation", _upsert(
            "booking_cancellation",
            where="EXCLUDED.cancellation_time < fact_booking_cancellation.cancellation_time"),
         ()),
        ("fact_booking.cancellation_time", derived.APPLY_CANCELLATIONS, ()),
        ("fact_booking.cancellation_reset", derived.RESET_CANCELLATIONS, ()),
        ("fact_inventory_metrics", _upsert("inventory_metrics"), ()),
        ("fact_promotions", _upsert("promotion"), ()),
        ("fact_promotion_end", _upsert(
            "promotion_end", where="EXCLUDED.end_time < fact_promotion_end.end_time"), ()),
        ("fact_promotions.end_time", derived.APPLY_PROMOTION_ENDS, ()),
        ("dead_letters", _upsert("dead_letter"), ()),
        ("dim_flight", derived.DIM_FLIGHT, ()),
        ("dim_flight.retracted", derived.DIM_FLIGHT_GONE, ()),
        ("fact_flight_outcome", derived.FLIGHT_OUTCOME, ()),
        ("fact_flight_outcome.retracted", derived.OUTCOME_GONE, ()),
        ("dim_date", derived.DIM_DATE, ()),
        ("dim_date.retracted", derived.DIM_DATE_TRIM, ()),
        ("etl_rejects", REJECTS_UPSERT, (run_id,)),
        ("etl_engine_verdicts", VERDICTS_UPSERT, (run_id,)),
        ("etl_loaded_files", "INSERT INTO etl_loaded_files (file_key, sha256, kind, topic, "
         "records, run_id) SELECT file_key, sha256, kind, topic, records, %s FROM stg_files "
         "ON CONFLICT DO NOTHING", (run_id,)),
    ]
    changed: dict[str, int] = {}
    with conn.cursor() as cur:
        t = time.monotonic()
        for stage in [*TARGETS, "rejects", "files"]:
            if stage not in bulk:
                cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(f"stg_{stage}")))
        log.debug("statement done", statement="analyze", seconds=round(time.monotonic() - t, 3))
        for ddl in rebuild or []:
            t = time.monotonic()
            cur.execute(ddl)
            log.debug("statement done", statement=ddl.as_string(cur)[:60],
                      seconds=round(time.monotonic() - t, 3))
        bulk_targets = {TARGETS[stage][0]: stage for stage in bulk}
        for name, statement, params in statements:
            if name in bulk_targets:
                cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name)))
                changed[name] = int(cur.fetchone()[0])  # type: ignore[index]
                continue
            t = time.monotonic()
            cur.execute(statement, params or None)
            changed[name] = cur.rowcount
            log.debug("statement done", statement=name, rows=cur.rowcount,
                      seconds=round(time.monotonic() - t, 3))
    return changed


def record_run(conn: psycopg2.extensions.connection, run: Mapping[str, Any]) -> None:
    """Insert the run's row into ``etl_runs`` (same transaction as the data).

    ``committed_at`` is ``clock_timestamp()`` (now, under the load lock), not ``now()`` (the
    transaction's start): a run that waited for the lock started before the run it waited for
    committed, and "the latest run" must be the last one committed.
    """
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO etl_runs (run_id, mode, started_at, committed_at, files, lines, events, "
            "duplicates, rejects, gold_dir, table_rows) VALUES (%(run_id)s, %(mode)s, "
            "%(started_at)s, clock_timestamp(), %(files)s, %(lines)s, %(events)s, "
            "%(duplicates)s, %(rejects)s, %(gold_dir)s, %(table_rows)s)", run)


@dataclass(frozen=True)
class CommittedRun:
    """The newest committed run: its id (names its gold folder) and when it committed."""

    run_id: str
    gold_dir: str | None  # None: a catch-up run that left gold to a later run
    committed_at: datetime
    #: A migration was applied after this run committed: a migration may change data, so this
    #: run's gold folder may no longer equal the warehouse.
    migrated_since: bool

    @property
    def gold_deferred(self) -> bool:
        """The run wrote no gold folder: the next run exports every table."""
        return self.gold_dir is None


def latest_run(conn: psycopg2.extensions.connection) -> CommittedRun | None:
    """The newest committed run, or None (no run yet: no gold folder belongs to this
    warehouse, whatever ``gold/CURRENT`` says)."""
    with conn.cursor() as cur:
        cur.execute("SELECT r.run_id, r.gold_dir, r.committed_at, EXISTS ("
                    "SELECT 1 FROM schema_migrations m WHERE m.applied_at > r.committed_at) "
                    "FROM etl_runs r ORDER BY r.committed_at DESC, r.run_id DESC LIMIT 1")
        row = cur.fetchone()
    return CommittedRun(row[0], row[1], row[2], bool(row[3])) if row else None


def recent_runs(conn: psycopg2.extensions.connection, limit: int) -> list[str]:
    """Ids of the newest ``limit`` committed runs (their gold folders are kept)."""
    with conn.cursor() as cur:
        cur.execute("SELECT run_id FROM etl_runs ORDER BY committed_at DESC, run_id DESC "
                    "LIMIT %s", (limit,))
        return [r[0] for r in cur.fetchall()]


def ledger_counts(conn: psycopg2.extensions.connection) -> dict[str, int]:
    """Topic → distinct events in the ledger (for the demo's Kafka = lake = warehouse check):
    every lake topic, 0 when none loaded yet."""
    with conn.cursor() as cur:
        cur.execute("SELECT topic, count(*) FROM etl_event_ledger GROUP BY topic ORDER BY topic")
        counts = {str(topic): 0 for topic in LAKE_TOPICS}
        counts.update({topic: int(n) for topic, n in cur.fetchall()})
        return counts


def reject_counts(conn: psycopg2.extensions.connection) -> dict[str, int]:
    """Topic → invalid lines recorded in ``etl_rejects``."""
    with conn.cursor() as cur:
        cur.execute("SELECT topic, count(*) FROM etl_rejects GROUP BY topic ORDER BY topic")
        return {topic: int(n) for topic, n in cur.fetchall()}


def table_counts(conn: psycopg2.extensions.connection) -> dict[str, int]:
    """Rows in every gold table (for the summary and the tests)."""
    with conn.cursor() as cur:
        counts = {}
        for table in GOLD_TABLES:
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
            counts[table] = int(cur.fetchone()[0])  # type: ignore[index]
        return counts


# --------------------------------------------------------------------------- export
def _polars_type(data_type: str, precision: int | None, scale: int | None) -> pl.DataType:
    mapping: dict[str, pl.DataType] = {
        "text": pl.String(), "integer": pl.Int32(), "bigint": pl.Int64(),
        "double precision": pl.Float64(), "boolean": pl.Boolean(), "date": pl.Date(),
        "timestamp with time zone": pl.Datetime("us", "UTC"), "jsonb": pl.String(),
    }
    if data_type == "numeric":
        return pl.Decimal(precision or 38, scale or 0)
    return mapping[data_type]


def table_schema(conn: psycopg2.extensions.connection, table: str) -> dict[str, pl.DataType]:
    """Column → Polars type of a warehouse table, in column order."""
    with conn.cursor() as cur:
        cur.execute("SELECT column_name, data_type, numeric_precision, numeric_scale "
                    "FROM information_schema.columns WHERE table_name = %s "
                    "AND table_schema = current_schema() ORDER BY ordinal_position", (table,))
        return {name: _polars_type(t, p, s) for name, t, p, s in cur.fetchall()}


def _copy_out(conn: psycopg2.extensions.connection, table: str, target: IO[bytes]
              ) -> dict[str, pl.DataType]:
    """COPY the whole table, sorted by its key, as CSV with a header into ``target``; returns
    its schema."""
    schema = table_schema(conn, table)
    order = sql.SQL(", ").join(map(sql.Identifier, GOLD_TABLES.get(table, tuple(schema)[:1])))
    copy = sql.SQL("COPY (SELECT * FROM {} ORDER BY {}) TO STDOUT WITH (FORMAT csv, HEADER)"
                   ).format(sql.Identifier(table), order)
    with conn.cursor() as cur:
        cur.copy_expert(copy, target)
    return schema


def _typed(schema: dict[str, pl.DataType]) -> list[pl.Expr]:
    """The casts from COPY's CSV text to each column's type."""
    casts = []
    for name, dtype in schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            casts.append(col.str.to_datetime("%Y-%m-%d %H:%M:%S%.f%#z", time_zone="UTC",
                                             time_unit="us"))
        elif isinstance(dtype, pl.Boolean):
            casts.append(col == "t")
        elif isinstance(dtype, pl.Date):
            casts.append(col.str.to_date("%Y-%m-%d"))
        else:
            casts.append(col.cast(dtype))
    return casts


def read_table(conn: psycopg2.extensions.connection, table: str) -> pl.DataFrame:
    """The whole table, typed, sorted by its key (COPY TO as CSV, parsed by Polars)."""
    source = io.BytesIO()
    schema = _copy_out(conn, table, source)
    source.seek(0)
    return pl.read_csv(source, schema={c: pl.String for c in schema}).with_columns(
        _typed(schema))


def export_table(conn: psycopg2.extensions.connection, table: str, spool: Path,
                 target: Path) -> None:
    """The whole table, typed and sorted by its key, into the parquet file ``target``
    (zstd), streamed: COPY to the CSV file ``spool``, then Polars' streaming engine turns it
    into parquet a batch at a time, so memory stays bounded however big the table is (the
    same rows and types as :func:`read_table`)."""
    try:
        with spool.open("wb") as f:
            schema = _copy_out(conn, table, f)
        (pl.scan_csv(spool, schema={c: pl.String for c in schema})
         .with_columns(_typed(schema))
         .sink_parquet(target, compression="zstd", statistics=True))
    finally:
        spool.unlink(missing_ok=True)
