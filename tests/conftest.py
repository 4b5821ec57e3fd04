"""Session fixtures every test package shares: one real Apache Kafka broker, one throwaway
Postgres cluster, an optional Redis, and unique names so tests never collide on them.

All of them are lazy: a unit test that requests none starts nothing. Servers are started on
free ports in temp dirs (never the demo's `.stack/`), die with the pytest process even if it
is killed, and are stopped and removed at session end. Tests never fall back to a Kafka
look-alike: without java/mvn the Kafka fixtures error out.

Overrides: `KAFKA_BOOTSTRAP_SERVERS` + `AIRLINE_TEST_USE_EXTERNAL_KAFKA=1` use that broker;
`AIRLINE_TEST_DATABASE_URL` uses that database.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg2
import pytest
import structlog
from airline_devstack.kafka_broker import ExternalKafka, KafkaBroker, probe_cluster_id
from airline_devstack.postgres import DatabaseUrl, PostgresServer, provision
from airline_devstack.redis_server import RedisServer, redis_server_bin
from airline_testkit.net import free_port

TEST_ROLE, TEST_PASSWORD, TEST_DATABASE = "airline", "airline", "airline_dw"


def _world_searchable_tmpdir(prefix: str) -> Path:
    """pytest's own tmp root is 0700 (root only); the `postgres` OS user must enter this one."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker | ExternalKafka]:
    """The session's broker: a real single-node KRaft Kafka, or the external one if asked."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external and os.environ.get("AIRLINE_TEST_USE_EXTERNAL_KAFKA") == "1":
        cluster_id = probe_cluster_id(external, timeout=10.0)
        if cluster_id is None:
            raise RuntimeError(f"AIRLINE_TEST_USE_EXTERNAL_KAFKA=1 but no broker at {external}")
        yield ExternalKafka(external, cluster_id)
        return
    data_dir = tmp_path_factory.mktemp("kafka")
    broker = KafkaBroker(data_dir, free_port(), die_with_parent=True)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: KafkaBroker | ExternalKafka) -> str:
    """`bootstrap.servers` of the session broker, e.g. `127.0.0.1:41234`."""
    return kafka_broker.bootstrap


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | None]:
    """A private cluster on a free port with role/database airline/airline_dw; None when
    `AIRLINE_TEST_DATABASE_URL` points at a database someone else runs."""
    if os.environ.get("AIRLINE_TEST_DATABASE_URL"):
        yield None
        return
    base = _world_searchable_tmpdir("airline-test-pg-")
    server = PostgresServer(base / "data", free_port())
    try:
        server.start()
        provision(
            server.admin, DatabaseUrl.parse(server.url(TEST_ROLE, TEST_PASSWORD, TEST_DATABASE))
        )
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(postgres_server: PostgresServer | None) -> str:
    """`postgresql://airline:airline@127.0.0.1:<port>/airline_dw` (shared by the session:
    isolate tests with `unique_name` for schemas/tables)."""
    if postgres_server is None:
        return os.environ["AIRLINE_TEST_DATABASE_URL"]
    return postgres_server.url(TEST_ROLE, TEST_PASSWORD, TEST_DATABASE)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """`redis://127.0.0.1:<port>/0` of a memory-only redis-server; skips when not installed."""
    if redis_server_bin() is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    base = Path(tempfile.mkdtemp(prefix="airline-test-redis-"))
    server = RedisServer(free_port(), base, die_with_parent=True)
    try:
        server.start()
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """`unique_name("bookings") -> "bookings_3f9c0a1b2d4e"`: a fresh name per call, valid as a
    Kafka topic/prefix, consumer group, transactional.id and Postgres identifier."""

    def make(base: str) -> str:
        return f"{base}_{uuid.uuid4().hex[:12]}"

    return make


@pytest.fixture
def isolated_database_url(database_url: str, unique_name: Callable[[str], str]) -> Iterator[str]:
    """`database_url` whose `search_path` is a fresh schema, dropped afterwards: one Postgres
    serves the session while every test sees an empty warehouse."""
    schema = unique_name("wh")
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    conn.close()
    sep = "&" if "?" in database_url else "?"
    yield f"{database_url}{sep}options={quote(f'-csearch_path={schema}')}"
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(f"DROP SCHEMA {schema} CASCADE")
    conn.close()


@pytest.fixture(autouse=True)
def _restore_logging_config() -> Iterator[None]:
    """A test that runs a command's ``main`` binds structlog to that test's captured stderr,
    which pytest closes afterwards: put the configuration back, so no later test (or session
    fixture) logs into a closed stream."""
    saved = structlog.get_config()
    context = structlog.contextvars.get_contextvars()
    yield
    structlog.configure(**saved)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**context)
