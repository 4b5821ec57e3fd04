"""The Postgres fixture and `ensure_postgres`: a working airline/airline_dw database whatever
the machine already runs."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest
from airline_devstack.postgres import (
    DatabaseUrl,
    PostgresServer,
    can_connect,
    ensure_postgres,
    private_cluster_dir,
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


@pytest.fixture
def stack_under_private_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A stack dir in a clone inside a 0700 directory, as a clone in root's home /root is."""
    home = Path(tempfile.mkdtemp(prefix="airline-test-home-"))
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    monkeypatch.setenv("AIRLINE_STACK_DIR", str(home / "clone" / ".stack"))
    monkeypatch.delenv("AIRLINE_STACK_POSTGRES_DIR", raising=False)
    cluster_parent = private_cluster_dir().parent
    try:
        yield home
    finally:
        if cluster_parent.name.startswith("airline-stack-"):
            shutil.rmtree(cluster_parent, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


def test_private_cluster_dir_is_the_setting_when_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRLINE_STACK_POSTGRES_DIR", str(tmp_path / "pg"))
    assert private_cluster_dir() == tmp_path / "pg"


def test_private_cluster_dir_defaults_to_the_stack_dir_when_not_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AIRLINE_STACK_POSTGRES_DIR", raising=False)
    monkeypatch.setenv("AIRLINE_STACK_DIR", str(tmp_path))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert private_cluster_dir() == tmp_path / "postgres"


def test_as_root_the_cluster_dir_is_outside_the_clone_and_one_per_stack_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AIRLINE_STACK_POSTGRES_DIR", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setenv("AIRLINE_STACK_DIR", str(tmp_path / "one" / ".stack"))
    first = private_cluster_dir()
    assert first == private_cluster_dir()  # a later `down` finds the same cluster
    assert first.parent.parent == Path("/var/tmp") and first.name == "postgres"
    monkeypatch.setenv("AIRLINE_STACK_DIR", str(tmp_path / "two" / ".stack"))
    assert private_cluster_dir() != first


@pytest.mark.skipif(os.geteuid() != 0, reason="only as root does the server run as another user")
def test_a_clone_under_a_0700_directory_gets_a_private_cluster(
    stack_under_private_home: Path,
) -> None:
    url = f"postgresql://airline:airline@127.0.0.1:{free_port()}/airline_dw"
    ensured = ensure_postgres(url)
    try:
        assert ensured.how == "private" and ensured.server is not None
        assert not ensured.server.data_dir.is_relative_to(stack_under_private_home)
        assert ensured.server.data_dir.owner() == "postgres"
        assert can_connect(url)
    finally:
        if ensured.server is not None:
            ensured.server.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="root hands the data dir to another OS user")
@pytest.mark.parametrize("planted", ["symlink", "writable by others"])
def test_root_refuses_a_parent_dir_someone_else_could_change(planted: str) -> None:
    base = Path(tempfile.mkdtemp(prefix="airline-test-planted-"))
    try:
        elsewhere = base / "elsewhere"
        elsewhere.mkdir()
        parent = base / "parent"
        if planted == "symlink":
            parent.symlink_to(elsewhere)
        else:
            parent.mkdir()
            parent.chmod(0o777)
        server = PostgresServer(parent / "data", free_port())
        with pytest.raises(RuntimeError, match="owned by root and writable by no one else"):
            server.start()
        assert list(elsewhere.iterdir()) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_no_role_a_component_logs_in_as_has_powers_beyond_its_data(database_url: str) -> None:
    """The ETL's role and the BI reader: no superuser, no role or database creation, no
    replication, no row-security bypass (least privilege; the ETL owns only airline_dw)."""
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("""SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolreplication,
                              rolbypassrls FROM pg_roles WHERE rolname IN ('airline', 'airline_bi')
                       ORDER BY rolname""")
        rows = cur.fetchall()
    conn.close()
    assert [r[0] for r in rows] == ["airline", "airline_bi"]
    assert all(not any(r[1:]) for r in rows), rows
