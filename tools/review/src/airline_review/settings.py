"""Settings of ``airline-extract`` and ``airline-report`` (environment variables, each also a
command line option). Both read the warehouse as the read-only BI role by default."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from airline_core.config import LogSettings, Secret, group, positive, setting


@dataclasses.dataclass(frozen=True)
class ReaderSettings:
    """Logging, and the warehouse to read: as the BI role ``airline_bi`` by default."""

    log: LogSettings = group(LogSettings)
    database_url: Secret = setting(
        "DATABASE_URL", Secret("postgresql://airline_bi:airline_bi@localhost:5432/airline_dw"),
        "Postgres warehouse URL to read (secret; printed with the password masked). The "
        "read-only BI role is enough and is the default", flag=None)


@dataclasses.dataclass(frozen=True)
class ExtractSettings(ReaderSettings):
    """Which warehouse to read and where the extract goes."""

    out: Path = setting("EXTRACT_PATH", Path("airline_dw.hyper"),
                        "the .hyper file to write (replaced whole, never left half-written)")
    batch_rows: int = setting("EXTRACT_BATCH_ROWS", 10_000,
                              "rows read from Postgres and inserted at a time (bounds memory)",
                              check=positive)


def _routes(value: str) -> str | None:
    bad = [r for r in value.split(",") if r.strip() and "-" not in r]
    return f"has routes {bad} that are not ORIGIN-DESTINATION" if bad else None


@dataclasses.dataclass(frozen=True)
class ReportSettings(ReaderSettings):
    """Which warehouse to read, what to draw and where the report goes."""

    out_dir: Path = setting("REPORT_DIR", Path("report"),
                            "folder for report.html, its charts as .svg and .png")
    routes: str = setting("REPORT_ROUTES", "",
                          "comma-separated routes (e.g. LHR-JFK) the charts show (empty: all)",
                          check=_routes)
    flights: int = setting(
        "REPORT_FLIGHTS", 8, "flights drawn in each dashboard chart, promoted flights first "
        "(one colour each; the tables list every flight)", check=positive)
    png: bool = setting("REPORT_PNG", True,
                        "also write each chart as a PNG, rendered by the headless browser")
    browser: str = setting("REPORT_BROWSER", "chromium",
                           "headless Chromium (name on PATH or a path) that renders the PNGs")
