"""Fixtures of the review tests: a warehouse the ETL loaded from a small world (one promotion
with the revenue policy's explanation), and the URL the BI tools read it with."""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest
from airline_core.config import from_values
from airline_devstack.postgres import BI_READER, as_bi_reader
from airline_etl import app
from airline_etl.settings import Settings
from airline_testkit.lake import write_world
from review_world import explained_world


@pytest.fixture
def loaded_warehouse(isolated_database_url: str, tmp_path: Path) -> str:
    """The URL (as the ETL's role) of a warehouse loaded from :func:`explained_world`."""
    lake = tmp_path / "lake"
    write_world(lake, explained_world())
    settings = from_values(Settings, {"DATABASE_URL": isolated_database_url,
                                      "LAKE_DIR": str(lake)}, environ={})
    assert app.run(settings).total_events > 0
    return isolated_database_url


@pytest.fixture
def reader_url(loaded_warehouse: str) -> str:
    """The loaded warehouse as the BI tools read it: the read-only role where the server has it
    (airline-stack creates it), else the ETL's role."""
    with psycopg2.connect(loaded_warehouse) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (BI_READER,))
        has_reader = bool(cur.fetchall())
    conn.close()
    return as_bi_reader(loaded_warehouse) if has_reader else loaded_warehouse
