"""``airline-etl``: load new lake files into gold parquet and the Postgres warehouse.

Exit codes (for a CronJob): 0 loaded or nothing new; 1 failed (database, lake or unexpected
error; the warehouse and gold are unchanged) or, after the commit, gold CURRENT not switched
(the warehouse holds the run; the next run switches CURRENT; the log says which); 2
configuration error; 3 too many invalid lines (over ETL_MAX_REJECT_SHARE: nothing loaded, the
rejects are recorded in etl_rejects).

A run loads at most ``ETL_MAX_RECORDS_PER_RUN`` records, which bounds its memory whatever the
lake holds; while new entries are left the command starts the next run at once
(``ETL_CATCH_UP``), each run its own commit, so a failure stops with the runs before it
committed and the exit code is that run's.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import psycopg2
from airline_core import config
from airline_core.config import redact_url
from airline_core.logging import configure_logging, get_logger, uses_json

from airline_etl import metrics
from airline_etl.app import RunSummary, run
from airline_etl.errors import EtlError, PostCommitError, RejectLimitError
from airline_etl.settings import Settings

log = get_logger(__name__)
EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_REJECTS = 0, 1, 2, 3

_DESCRIPTION = (
    "Turn the raw lake (LAKE_DIR/raw) into gold parquet (LAKE_DIR/gold) and the Postgres "
    "warehouse (DATABASE_URL). Incremental: only lake files not loaded before are read; "
    "--full rebuilds everything. Exit codes: 0 ok (loaded or nothing new), 1 failed (nothing "
    "changed; or loaded but gold CURRENT not switched, repaired by the next run), 2 "
    "configuration error, 3 too many invalid lines (nothing loaded). A run loads at most "
    "ETL_MAX_RECORDS_PER_RUN records (bounded memory); runs follow each other until the lake "
    "is caught up (ETL_CATCH_UP), each its own commit.")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``airline-etl``; returns the exit code (the last run's)."""
    try:
        settings = config.load(Settings, argv, prog="airline-etl", description=_DESCRIPTION)
    except SystemExit as e:  # --help (0) or a configuration error (2, already printed)
        return int(e.code or 0)
    configure_logging(settings.log, component="airline-etl")
    log.info("starting", lake_dir=str(settings.lake_dir), full=settings.full,
             database=redact_url(settings.database_url.reveal()))
    runs = 0
    horizon_ns = time.time_ns()  # what the lake held at the start: the catch-up ends
    while True:
        code, summary = _one_run(settings, horizon_ns)
        runs += 1
        if not (code == EXIT_OK and settings.catch_up and summary is not None
                and summary.status == "loaded" and summary.files_left):
            return code
        # A capped run left new entries: the next run loads the oldest of them (incremental,
        # also after --full, which emptied the warehouse once).
        log.info("catching up", runs=runs, files_left=summary.files_left)
        settings = dataclasses.replace(settings, full=False)


def _one_run(settings: Settings, horizon_ns: int) -> tuple[int, RunSummary | None]:
    """One run with its summary, log line and metrics; the exit code it earns."""
    code = EXIT_FAILED
    summary: RunSummary | None = None
    clock = time.monotonic()
    try:
        summary = run(settings, horizon_ns=horizon_ns)
        code = EXIT_OK
    except RejectLimitError as e:
        log.error("too many invalid lines", error=str(e))
        summary = e.summary
        code = EXIT_REJECTS
    except PostCommitError as e:  # committed: say so, never "unchanged"
        log.error("loaded; gold pointer not switched, the next run repairs it", error=str(e))
        summary = e.summary
    except (EtlError, psycopg2.Error, OSError) as e:
        log.error("run failed; the warehouse and gold are unchanged", error=str(e),
                  error_type=type(e).__name__)
    except Exception:  # a bug: still exit 1 (not a traceback-only crash) with the details
        log.exception("run failed unexpectedly; the warehouse and gold are unchanged")
    if summary is not None:
        if not uses_json(settings.log):
            print(summary.render())
        log.info("run finished", status=summary.status, run_id=summary.run_id,
                 files=summary.files, files_left=summary.files_left,
                 events=summary.total_events, rejects=summary.rejects,
                 events_by_topic=summary.events, rows_changed=summary.changed,
                 gold_pointer_recovered=summary.pointer_recovered,
                 seconds=round(time.monotonic() - clock, 3))
    metrics.DURATION.set(time.monotonic() - clock)
    metrics.EXIT_CODE.set(code)
    metrics.RUNS.labels(outcome={0: "ok", 1: "failed", 3: "rejected"}.get(code, "other")).inc()
    if code == EXIT_OK:
        metrics.LAST_SUCCESS.set_to_current_time()
    if settings.pushgateway_url:  # after each run: a long catch-up shows its progress
        try:
            metrics.push(settings.pushgateway_url, succeeded=code == EXIT_OK,
                         namespace=settings.pushgateway_namespace)
        except OSError as e:
            log.warning("metrics push failed", error=str(e))
    return code, summary


if __name__ == "__main__":
    raise SystemExit(main())
