"""Settings of ``airline-etl`` (environment variables, each also a command line option)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from airline_core.config import LogSettings, Secret, database_url, group, lake_dir, setting


def _share(value: float) -> str | None:
    return None if 0.0 <= value <= 1.0 else "must be between 0 and 1"


def _cap(value: int) -> str | None:
    return None if value >= 0 else "must be 0 (no cap) or more"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Where the lake and the warehouse are, and how strict a run is."""

    log: LogSettings = group(LogSettings)
    database_url: Secret = database_url()
    lake_dir: Path = lake_dir()
    pushgateway_url: str = setting(
        "PUSHGATEWAY_URL", "", "Prometheus Pushgateway (host:port or URL) to push run metrics to "
        "(empty: do not push)")
    pushgateway_namespace: str = setting(
        "PUSHGATEWAY_NAMESPACE", "", "namespace label of the pushed metrics (a grouping key, so "
        "each release's ETL has its own group and the alerts and dashboards select it by "
        "namespace; the chart sets the release's; empty: no namespace label)")
    max_reject_share: float = setting(
        "ETL_MAX_REJECT_SHARE", 0.01,
        "largest share of invalid lines (0..1) a run tolerates; above it nothing is loaded and "
        "the exit code is 3", check=_share)
    full: bool = setting(
        "ETL_FULL", False, "rebuild: empty every warehouse table and reload every lake file "
        "(flag without value or 'true')")
    keep_gold_runs: int = setting(
        "ETL_KEEP_GOLD_RUNS", 3, "gold run folders kept (the current one and older ones)",
        check=lambda v: None if v >= 1 else "must be 1 or more")
    max_files_per_run: int = setting(
        "ETL_MAX_FILES_PER_RUN", 0,
        "largest number of lake entries (manifests or old day files) one run loads, oldest "
        "first; the next run continues where it stopped. Bounds the run's memory (0: no cap). "
        "With --full the run empties the warehouse and loads the oldest N; the following "
        "(incremental) runs load the rest",
        check=_cap)
    max_records_per_run: int = setting(
        "ETL_MAX_RECORDS_PER_RUN", 1_000_000,
        "largest number of lake records one run loads, oldest entries first (at least one "
        "entry; an old day file counts its bytes / 256). Bounds the run's memory: about 1 GiB "
        "per million records on make bench's lake, so the default fits the chart's 2 GiB "
        "limit whatever the lake holds (0: no cap)",
        check=_cap)
    catch_up: bool = setting(
        "ETL_CATCH_UP", True,
        "while a capped run (ETL_MAX_RECORDS_PER_RUN, ETL_MAX_FILES_PER_RUN) leaves new lake "
        "entries, start the next run at once, each its own commit, until none is left; false: "
        "one run, the rest left to the next invocation")
