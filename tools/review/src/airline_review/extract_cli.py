"""``airline-extract``: the warehouse's review relations as a Tableau ``.hyper`` file.

Exit codes: 0 written; 1 failed (the database or the file; a previous extract is left as it
was); 2 configuration error.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import psycopg2
from airline_core import config
from airline_core.config import redact_url
from airline_core.logging import configure_logging, get_logger
from tableauhyperapi import HyperException

from airline_review import warehouse
from airline_review.extract import RELATIONS, write_extract
from airline_review.settings import ExtractSettings

log = get_logger(__name__)
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2

_DESCRIPTION = (
    "Write a Tableau extract (.hyper) of the warehouse's review relations ("
    + ", ".join(RELATIONS) + "), for Tableau users who cannot reach Postgres: open it in "
    "Tableau, or swap it in for the live data source of tableau/airline.twb (Data > Replace "
    "Data Source). Reads as the read-only BI role by default. Exit codes: 0 written, 1 failed "
    "(a previous extract is left as it was), 2 configuration error.")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``airline-extract``; returns the exit code."""
    try:
        settings = config.load(ExtractSettings, argv, prog="airline-extract",
                               description=_DESCRIPTION)
    except SystemExit as e:
        return int(e.code or 0)
    configure_logging(settings.log, component="airline-extract")
    log.info("starting", out=str(settings.out),
             database=redact_url(settings.database_url.reveal()))
    clock = time.monotonic()
    conn = warehouse.connect_or_log(settings.database_url, log)
    if conn is None:
        return EXIT_FAILED
    try:
        written = write_extract(
            conn, settings.out, batch_rows=settings.batch_rows,
            progress=lambda relation, n: log.info("relation written", relation=relation, rows=n))
    except (psycopg2.Error, HyperException, LookupError, OSError) as e:
        log.error("extract failed; a previous extract is unchanged", error=str(e).strip(),
                  error_type=type(e).__name__)
        return EXIT_FAILED
    finally:
        conn.close()
    log.info("extract written", out=str(settings.out), rows=sum(written.values()),
             seconds=round(time.monotonic() - clock, 3))
    return EXIT_OK
