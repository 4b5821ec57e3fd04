"""Fixtures of the ETL tests: a fresh schema per test (so one Postgres serves the session), a
temp lake, and a runner for the ETL in process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from airline_core.config import from_values
from airline_etl.app import RunSummary, run
from airline_etl.settings import Settings


@pytest.fixture
def etl_database_url(isolated_database_url: str) -> str:
    """A warehouse of its own per test: a fresh schema of the session's Postgres."""
    return isolated_database_url


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    """An empty lake."""
    path = tmp_path / "lake"
    path.mkdir()
    return path


@pytest.fixture
def etl_settings(etl_database_url: str, lake_dir: Path) -> Callable[..., Settings]:
    """``etl_settings(full=True, max_reject_share=0.5)``: Settings for this test's lake and db."""

    def make(**overrides: Any) -> Settings:
        given = {"DATABASE_URL": etl_database_url, "LAKE_DIR": str(lake_dir),
                 "PUSHGATEWAY_URL": "", "LOG_FORMAT": "json"}
        names = {"full": "ETL_FULL", "max_reject_share": "ETL_MAX_REJECT_SHARE",
                 "max_files_per_run": "ETL_MAX_FILES_PER_RUN",
                 "max_records_per_run": "ETL_MAX_RECORDS_PER_RUN", "catch_up": "ETL_CATCH_UP",
                 "keep_gold_runs": "ETL_KEEP_GOLD_RUNS"}
        for key, value in overrides.items():
            given[names[key]] = str(value)
        return from_values(Settings, given, environ={})

    return make


@pytest.fixture
def run_etl(etl_settings: Callable[..., Settings]) -> Callable[..., RunSummary]:
    """Run the ETL in process: ``run_etl()``, ``run_etl(full=True)``."""

    def go(**overrides: Any) -> RunSummary:
        return run(etl_settings(**overrides))

    return go


@pytest.fixture
def db(etl_database_url: str) -> Iterator[Any]:
    """A connection to this test's schema (autocommit, UTC) for assertions."""
    conn = psycopg2.connect(etl_database_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
    yield conn
    conn.close()
