"""`airline-stack up | down | status`: the local Kafka + Postgres (+ Redis) the demo runs on.

Everything `up` starts lives under `.stack/` (data dirs, pid files, logs), except a private
Postgres run as root, which lives where its OS user can reach it (`private_cluster_dir`); so
`down` stops exactly that and nothing else, and `up` twice finds what is already running. An
`up` that fails or is interrupted halfway stops what it had started. Each `up` that has to
start Kafka wipes its data dir first: a fresh broker gets a new cluster id, which is how the
rest of the system tells broker incarnations apart. `.stack/state.json` records the endpoints
for the demo and for `status`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from airline_core.config import redact_url
from airline_core.logging import configure_logging, get_logger

from airline_devstack._proc import port_open
from airline_devstack.kafka_broker import KafkaBroker, java_bin, probe_cluster_id
from airline_devstack.lifecycle import signals_unwind, stop_on_unwind
from airline_devstack.paths import stack_dir
from airline_devstack.postgres import (
    DEFAULT_DATABASE_URL,
    DatabaseUrl,
    PostgresServer,
    can_connect,
    ensure_postgres,
    private_cluster_dir,
)
from airline_devstack.redis_server import RedisNotInstalledError, RedisServer, redis_ping
from airline_devstack.tansu_fallback import WARNING, TansuBroker

log = get_logger(__name__)

DEFAULT_KAFKA_PORT = 9092
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_LOCAL_HOSTS = ("localhost", "127.0.0.1")


def _database_url() -> str:
    return os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)


def _state_path() -> Path:
    return stack_dir() / "state.json"


def _kafka_port() -> int:
    """Our broker's port: that of KAFKA_BOOTSTRAP_SERVERS when it names this machine."""
    first = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").split(",")[0]
    host, _, port = first.rpartition(":")
    return int(port) if host in _LOCAL_HOSTS and port.isdigit() else DEFAULT_KAFKA_PORT


def _redis_port() -> int:
    parts = urlsplit(os.environ.get("REDIS_URL", DEFAULT_REDIS_URL))
    return parts.port or 6379


def _kafka_broker() -> KafkaBroker:
    return KafkaBroker(stack_dir() / "kafka", _kafka_port())


def _tansu() -> TansuBroker:
    return TansuBroker(stack_dir() / "tansu", _kafka_port())


def _postgres_server() -> PostgresServer:
    return PostgresServer(private_cluster_dir(), DatabaseUrl.parse(_database_url()).port)


def _redis_server() -> RedisServer:
    return RedisServer(_redis_port(), stack_dir() / "redis")


def _up_kafka(started: ExitStack) -> dict[str, str]:
    for kind, ours in (("kafka", _kafka_broker()), ("tansu", _tansu())):
        if ours.is_running():
            log.info("kafka already running", kind=kind, bootstrap=ours.bootstrap)
            return {"kind": kind, "bootstrap": ours.bootstrap, "cluster_id": ours.cluster_id}
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        cluster_id = probe_cluster_id(external)
        if cluster_id:
            log.info("using the broker at KAFKA_BOOTSTRAP_SERVERS", bootstrap=external)
            return {"kind": "external", "bootstrap": external, "cluster_id": cluster_id}
        log.warning("KAFKA_BOOTSTRAP_SERVERS unreachable; starting a local broker", at=external)
    if java_bin() is None or shutil.which("mvn") is None:
        print(WARNING, file=sys.stderr, flush=True)
        tansu = _tansu()
        stop_on_unwind(started, "tansu", tansu)
        tansu.start()
        return {"kind": "tansu", "bootstrap": tansu.bootstrap, "cluster_id": tansu.cluster_id}
    broker = _kafka_broker()
    shutil.rmtree(broker.data_dir, ignore_errors=True)  # fresh incarnation, new cluster id
    log.info("starting Apache Kafka (KRaft)", port=broker.port, data_dir=str(broker.data_dir))
    stop_on_unwind(started, "kafka", broker)
    broker.start()
    return {"kind": "kafka", "bootstrap": broker.bootstrap, "cluster_id": broker.cluster_id}


def _up_postgres(started: ExitStack) -> dict[str, str]:
    url = _database_url()
    server = _postgres_server()
    log.info("ensuring Postgres", database_url=redact_url(url))
    if not server.is_running():
        stop_on_unwind(started, "postgres", server)
    ensured = ensure_postgres(url, data_dir=server.data_dir)
    if not server.is_running():
        log.info("postgres ready", how=ensured.how)
        return {"url": url, "how": ensured.how}
    log.info(
        "postgres ready", how="private", data_dir=str(server.data_dir), log=str(server.log_path)
    )
    return {"url": url, "how": "private", "data_dir": str(server.data_dir)}


def _up_redis(started: ExitStack) -> dict[str, str] | None:
    redis = _redis_server()
    if redis.is_running():
        return {"url": redis.url, "how": "private"}
    if port_open("127.0.0.1", redis.port):
        if redis_ping(redis.port):
            log.info("using the Redis already on the port", port=redis.port)
            return {"url": redis.url, "how": "existing"}
        log.warning("redis skipped: port busy with something else", port=redis.port)
        return None
    stop_on_unwind(started, "redis", redis)
    try:
        redis.start()
    except RedisNotInstalledError as exc:
        log.warning("redis skipped", reason=str(exc))
        return None
    return {"url": redis.url, "how": "private"}


def start_stack(started: ExitStack, redis: bool) -> dict[str, Any]:
    """Start what is missing of Kafka, Postgres and (with `redis`) Redis; write state.json.

    Each server this call starts has its stop pushed on `started` first, so unwinding
    `started` (a later step failed, Ctrl-C, SIGTERM) stops exactly those, newest first, and
    leaves alone what was running before.
    """
    stack_dir().mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {
        "kafka": _up_kafka(started),
        "postgres": _up_postgres(started),
        "redis": _up_redis(started) if redis else None,
    }
    _state_path().write_text(json.dumps(state, indent=2) + "\n")
    started.callback(_state_path().unlink, missing_ok=True)
    return state


def cmd_up(args: argparse.Namespace) -> int:
    with ExitStack() as started:
        state = start_stack(started, args.redis)
        started.pop_all()  # all up: they outlive this command, until `down`
    print(f"export KAFKA_BOOTSTRAP_SERVERS={state['kafka']['bootstrap']}")
    print(f"export DATABASE_URL={state['postgres']['url']}")
    if state["redis"]:
        print(f"export REDIS_URL={state['redis']['url']}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    for name, ours in (
        ("kafka", _kafka_broker()),
        ("tansu", _tansu()),
        ("redis", _redis_server()),
        ("postgres", _postgres_server()),
    ):
        if ours.is_running():
            ours.stop()
            log.info("stopped", what=name)
    _state_path().unlink(missing_ok=True)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    if not _state_path().is_file():
        print("stack is down (no .stack/state.json); run: airline-stack up")
        return 1
    state = json.loads(_state_path().read_text())
    kafka, postgres, redis = state["kafka"], state["postgres"], state["redis"]
    cluster_id = probe_cluster_id(kafka["bootstrap"])
    kafka_up = cluster_id == kafka["cluster_id"]
    postgres_up = can_connect(postgres["url"])
    print(
        f"kafka     {'up' if kafka_up else 'DOWN':5} {kafka['kind']:9} {kafka['bootstrap']} "
        f"cluster_id={cluster_id or kafka['cluster_id']}"
    )
    data_dir = f" data {postgres['data_dir']}" if postgres.get("data_dir") else ""
    print(
        f"postgres  {'up' if postgres_up else 'DOWN':5} {postgres['how']:9} "
        f"{redact_url(postgres['url'])}{data_dir}"
    )
    if redis:
        redis_up = redis_ping(urlsplit(redis["url"]).port or 6379)
        print(f"redis     {'up' if redis_up else 'DOWN':5} {redis['how']:9} {redis['url']}")
    else:
        print("redis     -     not started (not installed, or up --no-redis)")
    return 0 if kafka_up and postgres_up else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airline-stack",
        description="Run the local Kafka (KRaft) + Postgres (+ Redis) stack under .stack/.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser(
        "up",
        help="start the stack (idempotent)",
        description="Use the broker at KAFKA_BOOTSTRAP_SERVERS if one answers, else start "
        "Apache Kafka on 127.0.0.1 (port 9092, or the local port KAFKA_BOOTSTRAP_SERVERS names) "
        "with a fresh cluster id; make DATABASE_URL connectable (default "
        f"{DEFAULT_DATABASE_URL}); start Redis on REDIS_URL's port (6379) if installed. "
        "State goes to .stack/ (or $AIRLINE_STACK_DIR), a private Postgres cluster to "
        "$AIRLINE_STACK_POSTGRES_DIR (default in docs/settings.md). A failed or interrupted up "
        "stops what it started. Prints export lines for the demo.",
    )
    up.add_argument("--no-redis", dest="redis", action="store_false", help="do not start Redis")
    up.set_defaults(func=cmd_up)
    commands.add_parser(
        "down", help="stop what up started", description="Stop every server under .stack/."
    ).set_defaults(func=cmd_down)
    commands.add_parser(
        "status",
        help="show what is running",
        description="Probe the endpoints in .stack/state.json; exit 1 if Kafka or Postgres is down",
    ).set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    configure_logging(component="airline-stack")
    args = build_parser().parse_args(argv)
    with signals_unwind():
        return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
