"""The run: lake → engine verdicts → retractions → validate → staging COPY → upserts → gold →
one commit → CURRENT switch.

The thin shell around the functional core (:mod:`lake`, :mod:`transform`, :mod:`tables`):
it owns the connection, the order of effects and the crash points the kill -9 tests use.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import psycopg2
import psycopg2.extensions
from airline_core.crash import crash_point
from airline_core.lake.layout import RAW
from airline_core.logging import get_logger
from airline_core.topics import Topic

from airline_etl import gold, lake, metrics, tables, transform, verdicts, warehouse
from airline_etl.errors import PostCommitError, RejectLimitError
from airline_etl.settings import Settings

log = get_logger(__name__)


@dataclass
class RunSummary:
    """What a run did (printed at the end, pushed as metrics, returned to tests)."""

    status: str = "nothing new"  # "loaded", "nothing new", "rejected"
    run_id: str | None = None
    mode: str = "incremental"
    files: int = 0
    lines: int = 0
    events: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    rejects: int = 0
    staged: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    gold_dir: str | None = None
    pointer_recovered: str | None = None
    files_left: int = 0  # new entries left for the next runs (the per-run caps)
    gold_deferred: bool = False  # a catch-up run: gold is left to the last run of it
    gold_pending: str | None = None  # committed, but CURRENT not switched: why
    verdicts: int = 0  # engine verdicts read in this run (dead letters naming a record)
    retracted: int = 0  # lines loaded by earlier runs that this run's verdicts reject
    reloaded_files: int = 0  # lake entries loaded before, read again for the retractions
    reloaded_lines: int = 0

    @property
    def reject_share(self) -> float:
        """Invalid lines / lines read."""
        return self.rejects / self.lines if self.lines else 0.0

    @property
    def total_events(self) -> int:
        """Distinct new events over all topics."""
        return sum(self.events.values())

    def render(self) -> str:
        """A human summary: files, rows per table, rejects, seconds."""
        out = [f"airline-etl: {self.status}"
               + (f" (run {self.run_id}, {self.mode})" if self.run_id else "")]
        out.append(f"  files {self.files}  lines {self.lines}  distinct events "
                   f"{self.total_events}  duplicates {self.duplicates}  rejects {self.rejects} "
                   f"({self.reject_share:.2%})")
        for topic, n in sorted(self.events.items()):
            out.append(f"    events {topic:<20} {n:>12}")
        if self.verdicts or self.retracted:
            out.append(f"  engine verdicts read {self.verdicts}; lines loaded earlier and now "
                       f"rejected by them {self.retracted} (their rows retracted; "
                       f"{self.reloaded_files} lake entries, {self.reloaded_lines} lines, "
                       "read again)")
        for stage, n in self.staged.items():
            target = warehouse.TARGETS[stage][0]
            out.append(f"    rows {target:<26} staged {n:>12}  changed "
                       f"{self.changed.get(target, 0):>12}")
        for name in ("dim_flight", "fact_flight_outcome", "dim_date",
                     "fact_booking.cancellation_time", "fact_promotions.end_time"):
            if name in self.changed:
                out.append(f"    rows {name:<53} changed {self.changed[name]:>12}")
        if self.files_left:
            out.append(f"  {self.files_left} more new lake entries left for the next runs "
                       "(ETL_MAX_RECORDS_PER_RUN, ETL_MAX_FILES_PER_RUN)")
        if self.gold_dir:
            out.append(f"  gold {self.gold_dir}")
        if self.gold_deferred:
            out.append("  gold left to the last run of this catch-up (ETL_CATCH_UP)")
        if self.gold_pending:
            out.append(f"  gold CURRENT NOT switched to this run ({self.gold_pending}); the "
                       "warehouse holds it, the next run switches CURRENT")
        if self.pointer_recovered:
            out.append(f"  gold CURRENT recovered to {self.pointer_recovered}")
        out.append("  seconds " + "  ".join(f"{k} {v:.2f}" for k, v in self.seconds.items()))
        return "\n".join(out)


class Progress:
    """One updating line on stderr when it is a terminal; silent otherwise (logs suffice)."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()

    def show(self, text: str) -> None:
        """Replace the progress line."""
        if self.enabled:
            sys.stderr.write("\r\033[K" + text)
            sys.stderr.flush()

    def done(self) -> None:
        """End the progress line."""
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def make_run_id(entries: Sequence[lake.LakeEntry], now: datetime) -> str:
    """``<UTC time>-<hash of the input files>``: sortable, and names what the run read."""
    digest = hashlib.sha256(
        "\n".join(f"{e.key} {e.sha256}" for e in sorted(entries, key=lambda e: e.key)).encode())
    return f"{now:%Y%m%dT%H%M%S%fZ}-{digest.hexdigest()[:8]}"


def _recover_pointer(conn: psycopg2.extensions.connection, lake_dir: Path,
                     latest: warehouse.CommittedRun | None) -> str | None:
    """Make gold CURRENT name the newest committed run (called under the load lock).

    A run that died after its commit but before switching CURRENT left its folder: finish the
    switch. If that folder is gone (gold deleted by hand), export it again from the warehouse,
    which under the lock is exactly the state that run committed.
    """
    if latest is None or latest.gold_deferred:  # the run after it exports every table
        return None
    run_id = latest.run_id
    folder = gold.run_dir(lake_dir, run_id)
    if gold.current_run(lake_dir) == run_id and folder.is_dir():
        return None
    if not folder.is_dir():
        _write_gold(conn, folder)
    gold.switch(lake_dir, run_id)
    log.warning("gold CURRENT recovered", run_id=run_id)
    return run_id


@dataclass(frozen=True)
class _Judged:
    """What every topic of the run is judged against: the engine's verdicts (known and read
    in this run), the entries read again for retractions, and which of their lines count."""

    engine: pl.DataFrame  # transform.VERDICT_SCHEMA
    again: frozenset[str] = frozenset()  # keys of the entries read again
    plan: verdicts.Plan = field(default_factory=verdicts.Plan)
    preread: dict[str, pl.DataFrame] = field(default_factory=dict)  # topic → its lines


def _prepare(lake_dir: Path, topic: str, entries: Sequence[lake.LakeEntry], judged: _Judged
             ) -> tuple[transform.TopicEvents, dict[str, pl.DataFrame], float]:
    """Read and validate one topic and build its staging frames (pure Polars: runs in a
    worker thread while the previous topic is being COPYed)."""
    t0 = time.monotonic()
    lines = judged.preread.get(topic)
    if lines is None:
        lines = pl.concat([lake.read_entry(lake_dir, e).with_columns(
            pl.lit(e.key in judged.again).alias(transform.RELOAD)) for e in entries])
    result = transform.validate(lines, topic, judged.engine, judged.plan.keep(topic))
    return result, tables.staging_rows(result), time.monotonic() - t0


def _stage_topics(conn: psycopg2.extensions.connection, settings: Settings,
                  todo: Sequence[lake.LakeEntry], summary: RunSummary, progress: Progress,
                  run_id: str, bulk: AbstractSet[str], judged: _Judged
                  ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read, validate and COPY every topic in turn; the next topic is prepared while the
    current one is COPYed (two topics in memory at most). Stages loaded in bulk go straight
    into their tables. ``todo`` holds the new entries and those read again, in lake order.
    Returns the rejects of the new lines, and those of the lines read again (retractions)."""
    rejects: list[pl.DataFrame] = []
    retracted: list[pl.DataFrame] = []
    seen_ids: list[pl.Series] = []  # ledger ids of earlier topics: an id is recorded once
    topics = sorted({e.topic for e in todo})
    by_topic = {t: [e for e in todo if e.topic == t] for t in topics}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="etl-prepare") as pool:
        pending = (pool.submit(_prepare, settings.lake_dir, topics[0], by_topic[topics[0]],
                               judged) if topics else None)
        for i, topic in enumerate(topics, 1):
            progress.show(f"[{i}/{len(topics)}] {topic}: reading and validating "
                          f"{len(by_topic[topic])} files")
            assert pending is not None
            result, frames, seconds = pending.result()
            pending = (pool.submit(_prepare, settings.lake_dir, topics[i], by_topic[topics[i]],
                                   judged) if i < len(topics) else None)
            summary.seconds["read+validate"] = summary.seconds.get("read+validate", 0.0) + seconds
            summary.lines += result.lines
            summary.reloaded_lines += result.reloaded
            summary.duplicates += result.duplicates
            summary.events[topic] = result.events.height
            rejects.append(result.rejects)
            retracted.append(result.retracted)
            t1 = time.monotonic()
            progress.show(f"[{i}/{len(topics)}] {topic}: copying {result.events.height} events")
            if seen_ids:
                ledger = frames["ledger"]
                earlier = pl.concat(seen_ids).implode()
                frames["ledger"] = ledger.filter(~pl.col("event_id").is_in(earlier))
            seen_ids.append(frames["ledger"]["event_id"])
            for stage, frame in frames.items():
                table = f"stg_{stage}"
                if stage in bulk:
                    table = warehouse.TARGETS[stage][0]
                    if stage == "ledger":
                        frame = frame.with_columns(pl.lit(run_id).alias("loaded_run_id"))
                summary.staged[stage] = summary.staged.get(stage, 0) + warehouse.copy_frame(
                    conn, table, frame)
            summary.seconds["copy"] = summary.seconds.get("copy", 0.0) + time.monotonic() - t1
            log.info("topic staged", topic=topic, files=len(by_topic[topic]),
                     lines=result.lines, events=result.events.height,
                     duplicates=result.duplicates, rejects=result.rejects.height)
            del result, frames
    empty = pl.DataFrame(schema=transform.REJECT_SCHEMA)
    all_rejects = pl.concat(rejects) if rejects else empty
    summary.rejects = all_rejects.height
    return all_rejects, pl.concat(retracted) if retracted else empty


def _judge(conn: psycopg2.extensions.connection, settings: Settings,
           entries: Sequence[lake.LakeEntry], todo: Sequence[lake.LakeEntry],
           summary: RunSummary) -> tuple[list[lake.LakeEntry], _Judged]:
    """Read the engine's verdicts of this run's ``dead_letter`` entries, retract what they
    reject among the lines loaded by earlier runs, and gather every verdict the run's lines
    are judged against. Returns the entries to read (the new ones and those read again, in
    lake order) and the judgement."""
    t0 = time.monotonic()
    dead = [e for e in todo if e.topic == Topic.DEAD_LETTER]
    preread: dict[str, pl.DataFrame] = {}
    run_verdicts = pl.DataFrame(schema=transform.VERDICT_SCHEMA)
    if dead:
        preread[str(Topic.DEAD_LETTER)] = lines = pl.concat(
            [lake.read_entry(settings.lake_dir, e) for e in dead])
        run_verdicts = transform.engine_verdicts(lines)
    verdicts.stage(conn, run_verdicts)
    plan = verdicts.retract(conn)
    new_keys = {e.key for e in todo}
    again = {e.key for e in plan.entries(lake.EntryIndex(entries))} - new_keys
    chosen = [e for e in entries if e.key in new_keys or e.key in again]
    known = verdicts.known(conn, chosen)
    engine = pl.concat([known, run_verdicts]).unique(
        subset=list(transform.VERDICT_KEY), keep="first", maintain_order=True)
    summary.verdicts = run_verdicts.height
    summary.retracted = plan.lines
    summary.reloaded_files = len(again)
    summary.seconds["verdicts"] = time.monotonic() - t0
    return chosen, _Judged(engine=engine, again=frozenset(again), plan=plan, preread=preread)


def _files_frame(todo: Sequence[lake.LakeEntry]) -> pl.DataFrame:
    return pl.DataFrame(
        {"file_key": [e.key for e in todo], "sha256": [e.sha256 for e in todo],
         "kind": [e.kind for e in todo], "topic": [e.topic for e in todo],
         "records": [e.records for e in todo]},
        schema={"file_key": pl.String, "sha256": pl.String, "kind": pl.String,
                "topic": pl.String, "records": pl.Int64})


def _record_rejects_only(conn: psycopg2.extensions.connection, rejects: pl.DataFrame,
                         run_id: str) -> None:
    """Over the reject limit nothing is loaded, but the rejects are kept for inspection."""
    conn.rollback()
    warehouse.begin_load(conn, full=False)
    warehouse.create_staging(conn)
    warehouse.copy_frame(conn, "stg_rejects", rejects)
    with conn.cursor() as cur:
        cur.execute(warehouse.REJECTS_UPSERT, (run_id,))
    conn.commit()


#: The change counters (``warehouse.apply``, ``verdicts.retract``) that can alter each gold
#: table.
_CHANGED_BY: dict[str, tuple[str, ...]] = {
    "fact_booking": ("fact_booking", "fact_booking.cancellation_time",
                     "fact_booking.cancellation_reset", "fact_booking.retracted"),
    "fact_booking_cancellation": ("fact_booking_cancellation",
                                  "fact_booking_cancellation.retracted"),
    "fact_flight_event": ("fact_flight_event", "fact_flight_event.retracted"),
    "dim_flight_cabin": ("dim_flight_cabin", "dim_flight_cabin.retracted"),
    "dim_flight": ("dim_flight", "dim_flight.retracted"),
    "fact_flight_outcome": ("fact_flight_outcome", "fact_flight_outcome.retracted"),
    "dim_date": ("dim_date", "dim_date.retracted"),
    "fact_promotions": ("fact_promotions", "fact_promotions.end_time"),
}


def _write_gold(conn: psycopg2.extensions.connection, folder: Path,
                changed: dict[str, int] | None = None, previous: Path | None = None) -> None:
    """Every gold table, exported from the warehouse inside the run's transaction (so gold is
    exactly what is about to be committed). A table this run did not change is hard-linked
    from the previous run's folder (which equals the warehouse before this run) instead."""
    folder.mkdir(parents=True, exist_ok=True)
    for table in warehouse.GOLD_TABLES:
        source = previous / f"{table}.parquet" if previous is not None else None
        untouched = changed is not None and not any(
            changed.get(name, 1) for name in _CHANGED_BY.get(table, (table,)))
        if untouched and source is not None and source.is_file():
            try:
                os.link(source, folder / f"{table}.parquet")
            except OSError:  # a file system without hard links
                shutil.copy2(source, folder / f"{table}.parquet")
            continue
        warehouse.export_table(conn, table, folder / f".{table}.csv",
                               folder / f"{table}.parquet")
    gold.seal(folder)


def run(settings: Settings, *, now: datetime | None = None,
        horizon_ns: int | None = None) -> RunSummary:
    """One ETL run. ``horizon_ns``: load only lake entries completed by then (a catch-up's
    start, so it ends even while the writer keeps adding entries). Raises
    :class:`RejectLimitError` (exit 3), :class:`PostCommitError` (exit 1, but the run is
    committed) or another error (exit 1, nothing changed)."""
    started = now or datetime.now(UTC)
    clock = time.monotonic()
    summary = RunSummary(mode="full" if settings.full else "incremental")
    progress = Progress()
    committed = False
    conn = warehouse.connect(settings.database_url.reveal())
    try:
        warehouse.migrate(conn)
        loaded = warehouse.begin_load(conn, settings.full)
        latest = warehouse.latest_run(conn)
        summary.pointer_recovered = _recover_pointer(conn, settings.lake_dir, latest)
        # A migration applied since the latest run may have changed data its gold folder holds,
        # or the latest run left gold to a later one: run even without new lake entries, and
        # export every table again.
        refresh_gold = latest is not None and (latest.migrated_since or latest.gold_deferred)
        if not (settings.lake_dir / RAW).is_dir():
            log.warning("the lake has no raw/ directory yet", lake_dir=str(settings.lake_dir))
        entries = lake.discover(settings.lake_dir)
        new = entries if settings.full else lake.new_entries(entries, loaded)
        if horizon_ns is not None:
            new = [e for e in new if e.mtime_ns <= horizon_ns]
        todo = lake.oldest_first(new, settings.max_files_per_run, settings.max_records_per_run)
        summary.files = len(todo)
        summary.files_left = len(new) - len(todo)
        # Exporting every changed table after each piece of a backlog would repeat the export
        # of ever larger tables: a run the catch-up follows leaves gold to the last one.
        summary.gold_deferred = settings.catch_up and summary.files_left > 0
        if not todo and not settings.full and not refresh_gold:
            conn.rollback()
            summary.seconds["total"] = time.monotonic() - clock
            _observe(summary)
            return summary
        run_id = make_run_id(todo, started)
        summary.run_id = run_id
        log.info("run started", run_id=run_id, mode=summary.mode, files=len(todo),
                 files_left=summary.files_left, gold_refresh=refresh_gold)
        # Retractions delete rows before anything is staged (a table they empty is then loaded
        # in bulk like any empty table).
        chosen, judged = _judge(conn, settings, entries, todo, summary)
        bulk = warehouse.bulk_candidates(conn)
        warehouse.create_staging(conn, bulk)
        rebuild = warehouse.drop_indexes(conn, bulk)
        rejects, retracted = _stage_topics(conn, settings, chosen, summary, progress, run_id,
                                           bulk, judged)
        warehouse.copy_frame(conn, "stg_rejects", rejects)
        warehouse.copy_frame(conn, "stg_rejects", retracted)
        warehouse.copy_frame(conn, "stg_files", _files_frame(todo))
        crash_point("etl.after_copy")
        if summary.reject_share > settings.max_reject_share:
            progress.done()
            _record_rejects_only(conn, rejects, run_id)
            summary.status = "rejected"
            summary.seconds["total"] = time.monotonic() - clock
            _observe(summary)
            raise RejectLimitError(
                f"{summary.rejects} of {summary.lines} lines invalid "
                f"({summary.reject_share:.2%} > ETL_MAX_REJECT_SHARE "
                f"{settings.max_reject_share:.2%}); nothing loaded, rejects recorded in "
                "etl_rejects", summary)
        t = time.monotonic()
        progress.show("upserting")
        summary.changed = {**judged.plan.deleted, **warehouse.apply(conn, run_id, bulk, rebuild)}
        summary.seconds["upsert"] = time.monotonic() - t
        t = time.monotonic()
        if not summary.gold_deferred:
            progress.show("writing gold")
            folder = gold.run_dir(settings.lake_dir, run_id)
            # A table this run did not change is linked from the warehouse's own latest run
            # (its folder equals the warehouse before this run), never from whatever CURRENT
            # names: a fresh warehouse over an old lake has no run, and CURRENT is another
            # warehouse's. After --full, a migration or a deferred run every table is exported
            # again.
            previous = (None if latest is None or refresh_gold or settings.full
                        else gold.run_dir(settings.lake_dir, latest.run_id))
            _write_gold(conn, folder, None if previous is None else summary.changed, previous)
            summary.gold_dir = str(folder)
            summary.seconds["gold"] = time.monotonic() - t
        warehouse.record_run(conn, {
            "run_id": run_id, "mode": summary.mode, "started_at": started,
            "files": summary.files, "lines": summary.lines, "events": summary.total_events,
            "duplicates": summary.duplicates, "rejects": summary.rejects,
            "gold_dir": summary.gold_dir, "table_rows": json.dumps(summary.staged)})
        crash_point("etl.before_commit")
        t = time.monotonic()
        conn.commit()
        committed = True  # from here on the run folder is the warehouse's: never delete it
        summary.status = "loaded"
        summary.seconds["commit"] = time.monotonic() - t
        if not summary.gold_deferred:
            _after_commit(conn, settings, summary, run_id)
        summary.seconds["total"] = time.monotonic() - clock
        progress.done()
        _observe(summary)
        if summary.gold_pending:
            raise PostCommitError(
                f"run {run_id} is committed to the warehouse, but gold CURRENT was not "
                f"switched to it ({summary.gold_pending}); gold still shows the previous run "
                "until the next run switches it", summary)
        return summary
    except BaseException:
        progress.done()
        if not conn.closed:
            # A broken connection: the server rolls back (or has already committed).
            with contextlib.suppress(psycopg2.Error):
                conn.rollback()
        if summary.run_id and not committed:  # nothing refers to its gold folder
            shutil.rmtree(gold.run_dir(settings.lake_dir, summary.run_id), ignore_errors=True)
        raise
    finally:
        conn.close()


def _after_commit(conn: psycopg2.extensions.connection, settings: Settings,
                  summary: RunSummary, run_id: str) -> None:
    """Switch CURRENT to the committed run and prune old folders. Nothing here may undo or
    deny the commit: a failure is recorded (``summary.gold_pending``) or logged, and the next
    run repairs it (``_recover_pointer``, ``gold.prune``)."""
    try:
        crash_point("etl.after_commit_before_pointer")
        gold.switch(settings.lake_dir, run_id)
    except Exception as e:  # reported truthfully, never as "unchanged"
        summary.status = "loaded (gold CURRENT not switched)"
        summary.gold_pending = f"{type(e).__name__}: {e}"
        log.error("run committed, gold CURRENT not switched; the next run switches it",
                  run_id=run_id, error=summary.gold_pending)
        return
    try:
        gold.prune(settings.lake_dir, warehouse.recent_runs(conn, settings.keep_gold_runs))
        conn.rollback()  # end the read-only transaction recent_runs opened
    except Exception as e:  # the run is committed and CURRENT switched
        log.warning("old gold run folders not pruned; the next run prunes them",
                    run_id=run_id, error=f"{type(e).__name__}: {e}")


def _observe(summary: RunSummary) -> None:
    """Set the run's gauges (pushed by the CLI when PUSHGATEWAY_URL is set)."""
    metrics.FILES.set(summary.files)
    metrics.REJECTS.set(summary.rejects)
    for topic, n in summary.events.items():
        metrics.EVENTS.labels(topic=topic).set(n)
    for stage, n in summary.staged.items():
        metrics.ROWS.labels(table=warehouse.TARGETS[stage][0]).set(n)
