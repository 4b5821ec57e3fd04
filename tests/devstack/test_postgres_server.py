"""The Postgres fixture and `ensure_postgres`: a working airline/airline_dw database whatever
the machine already runs."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import psycopg2
import pytest
from airline_devstack.postgres import (
    DatabaseUrl,
    PostgresServer,
    can_connect,
    ensure_postgres,
    provision,
)
from airline_testkit.net import free_port

pytestmark = pytest.mark.postgres


def test_database_url_logs_in_as_the_airline_role(
    database_url: str, unique_name: Callable[[str], str]
) -> None:
    schema = unique_name("devstack")
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_user, current_database()")
        assert cur.fetchone() == ("airline", "airline_dw")
        cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert cur.fetchone() == (False,)
        cur.execute(f"CREATE SCHEMA {schema}")
        cur.execute(f"CREATE TABLE {schema}.t (x int)")
        cur.execute(f"INSERT INTO {schema}.t VALUES (1)")
        cur.execute(f"SELECT sum(x) FROM {schema}.t")
        assert cur.fetchone() == (1,)
        cur.execute(f"DROP SCHEMA {schema} CASCADE")
    conn.close()


def test_ensure_postgres_uses_a_server_that_accepts_the_url(database_url: str) -> None:
    ensured = ensure_postgres(database_url)
    assert (ensured.how, ensured.server) == ("existing", None)


def test_provision_creates_role_and_database_idempotently(
    postgres_server: PostgresServer | None, unique_name: Callable[[str], str]
) -> None:
    if postgres_server is None:
        pytest.skip("AIRLINE_TEST_DATABASE_URL: no superuser access to provision with")
    name = unique_name("svc")
    url = postgres_server.url(name, "pw'with\"quotes", name)
    assert not can_connect(url)
    provision(postgres_server.admin, DatabaseUrl.parse(url))
    provision(postgres_server.admin, DatabaseUrl.parse(url))
    assert can_connect(url)


def test_ensure_postgres_refuses_a_server_it_cannot_administer(
    postgres_server: PostgresServer | None,
) -> None:
    if postgres_server is None:
        pytest.skip("needs the fixture's own cluster")
    url = postgres_server.url("airline", "wrong-password", "airline_dw")
    with pytest.raises(RuntimeError, match="rejects 'airline'"):
        ensure_postgres(url)


def test_ensure_postgres_starts_a_private_cluster_when_nothing_listens() -> None:
    base = Path(tempfile.mkdtemp(prefix="airline-test-ensure-"))
    base.chmod(0o755)  # the postgres OS user must reach the data dir when we are root
    url = f"postgresql://airline:airline@127.0.0.1:{free_port()}/airline_dw"
    ensured = ensure_postgres(url, data_dir=base / "data")
    try:
        assert ensured.how == "private"
        assert ensured.server is not None and ensured.server.is_running()
        assert can_connect(url)
    finally:
        if ensured.server is not None:
            ensured.server.stop()
        shutil.rmtree(base, ignore_errors=True)
