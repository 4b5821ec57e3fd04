"""``airline-report``: the review of the warehouse as a self-contained HTML page (and PNGs).

Exit codes: 0 written; 1 failed (the database, the browser or the folder); 2 configuration
error (a missing browser included, when PNGs are asked for).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import psycopg2
from airline_core import config
from airline_core.config import redact_url
from airline_core.errors import ConfigError
from airline_core.logging import configure_logging, get_logger

from airline_review import browser, report, warehouse
from airline_review.settings import ReportSettings

log = get_logger(__name__)
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2

_DESCRIPTION = (
    "Write REPORT_DIR/report.html from the warehouse: the inventory trend with promotion "
    "annotations, booking pressure as departure approaches, promotion outcomes against the "
    "engine's forecast without them, and a searchable table of every decision with its reason "
    "and inputs; each chart also as .svg and (REPORT_PNG) .png. The page is self-contained: "
    "open it in any browser, mail it, commit it. Reads as the read-only BI role by default. "
    "Exit codes: 0 written, 1 failed, 2 configuration error.")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``airline-report``; returns the exit code."""
    try:
        settings = config.load(ReportSettings, argv, prog="airline-report",
                               description=_DESCRIPTION)
    except SystemExit as e:
        return int(e.code or 0)
    configure_logging(settings.log, component="airline-report")
    render = None
    if settings.png:
        try:
            found = browser.find(settings.browser)
        except ConfigError as e:
            log.error("configuration error", error=str(e), setting="REPORT_BROWSER")
            return EXIT_CONFIG

        def render(svg_file: Path, png_file: Path, width: int, height: int) -> None:
            browser.screenshot(found, svg_file, png_file, width, height)

    routes = [r.strip() for r in settings.routes.split(",") if r.strip()]
    log.info("starting", out_dir=str(settings.out_dir), routes=routes or "all",
             database=redact_url(settings.database_url.reveal()))
    clock = time.monotonic()
    conn = warehouse.connect_or_log(settings.database_url, log)
    if conn is None:
        return EXIT_FAILED
    try:
        review = report.read(conn, routes, settings.flights)
    except psycopg2.Error as e:
        log.error("cannot read the warehouse (run airline-etl once; check DATABASE_URL's user)",
                  error=str(e).strip(), error_type=type(e).__name__)
        return EXIT_FAILED
    finally:
        conn.close()
    log.info("read the warehouse", flights=len(review.flights), drawn=len(review.drawn),
             promotions=len(review.outcomes), decisions=len(review.decisions))
    try:
        written = report.write(review, settings.out_dir, routes, render)
    except (OSError, RuntimeError) as e:
        log.error("cannot write the report", error=str(e), error_type=type(e).__name__)
        return EXIT_FAILED
    log.info("report written", page=str(settings.out_dir / "report.html"), files=len(written),
             seconds=round(time.monotonic() - clock, 3))
    return EXIT_OK
