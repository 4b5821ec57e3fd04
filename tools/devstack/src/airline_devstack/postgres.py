"""PostgreSQL for the demo and the tests, without Docker.

`ensure_postgres(url)` takes the cheapest route that yields a database reachable at `url`:
use a server that already accepts the credentials; else provision role and database on a
server we can reach as superuser; else run a private cluster from the Debian server binaries
in `private_cluster_dir()`. Postgres refuses to run as root, so as root the cluster belongs to
the `postgres` OS user, every server command goes through `runuser`, and the cluster lives
outside the clone, which that user may not be able to enter (root's home is 0700).
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg2
from airline_core.logging import get_logger

from airline_devstack import paths
from airline_devstack._proc import port_open

log = get_logger(__name__)

DEFAULT_DATABASE_URL = "postgresql://airline:airline@localhost:5432/airline_dw"
_SERVER_OS_USER = "postgres"
#: Where a root-run stack keeps its cluster: every user can enter it, and unlike /tmp it is kept
#: across reboots, as the warehouse keeps earlier demo runs.
_ROOT_CLUSTER_BASE = Path("/var/tmp")


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL server binaries here (Debian: `apt-get install postgresql`)."""


def private_cluster_dir() -> Path:
    """The data dir of the stack's private cluster: `$AIRLINE_STACK_POSTGRES_DIR`, else
    `<stack dir>/postgres`, or as root `/var/tmp/airline-stack-<hash>/postgres`.

    The hash is of the stack dir's path, so each clone keeps its own cluster and a later
    `down` or `status` finds it again.
    """
    configured = paths.settings().postgres_dir
    if configured:
        return Path(configured).absolute()
    if os.geteuid() != 0:
        return paths.stack_dir() / "postgres"
    digest = hashlib.sha256(str(paths.stack_dir()).encode()).hexdigest()[:12]
    return _ROOT_CLUSTER_BASE / f"airline-stack-{digest}" / "postgres"


@dataclass(frozen=True)
class DatabaseUrl:
    """The parts of a `postgresql://user:password@host:port/dbname` URL that we act on."""

    user: str
    password: str
    host: str
    port: int
    dbname: str

    @classmethod
    def parse(cls, url: str) -> DatabaseUrl:
        parts = urlsplit(url)
        return cls(
            user=unquote(parts.username or "airline"),
            password=unquote(parts.password or ""),
            host=parts.hostname or "localhost",
            port=parts.port or 5432,
            dbname=parts.path.lstrip("/") or "airline_dw",
        )


def can_connect(url: str) -> bool:
    """True when `url` accepts a login right now (wrong password or no server: False)."""
    try:
        psycopg2.connect(url, connect_timeout=3).close()
    except psycopg2.Error:
        return False
    return True


def bin_dir() -> Path:
    """The newest `/usr/lib/postgresql/<major>/bin` holding `initdb` and `pg_ctl`."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda path: int(Path(path).parent.parent.name),
    )
    if not candidates:
        raise PostgresUnavailableError(
            "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin "
            "(install them: apt-get install postgresql)"
        )
    return Path(candidates[-1]).parent


# psql variables keep the names and password correctly quoted (%I / %L); \gexec runs each
# generated statement, and an empty result (role/database already there) runs nothing.
_PROVISION_SQL = r"""
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'role', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'dbname', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'dbname') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'reader')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'reader') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'reader', :'reader_password') \gexec
"""

#: The read-only reader BI tools (Tableau, Grafana) log in as, with its dev password (the same
#: as k8s/base/postgres.yaml's); the ETL's migration 007 grants it SELECT on the review objects.
BI_READER, BI_READER_PASSWORD = "airline_bi", "airline_bi"


def as_bi_reader(url: str) -> str:
    """``url`` (same host, database and options) logged in as the BI reader."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{BI_READER}:{BI_READER_PASSWORD}@{host}"))


@dataclass(frozen=True)
class SuperuserAccess:
    """How to run psql as superuser: a conninfo, as `os_user` when peer auth needs it."""

    conninfo: str
    os_user: str | None = None

    def psql(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        psql = shutil.which("psql") or str(bin_dir() / "psql")
        argv = [psql, "-X", "-q", "-w", "-v", "ON_ERROR_STOP=1", "-d", self.conninfo, *args]
        if self.os_user is not None and os.geteuid() == 0:
            argv = ["runuser", "-u", self.os_user, "--", *argv]
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)

    def works(self) -> bool:
        return self.psql("-c", "SELECT 1").returncode == 0


def provision(admin: SuperuserAccess, target: DatabaseUrl) -> None:
    """Create the login role (or reset its password) and its database if missing, and the
    read-only BI reader."""
    variables = {"role": target.user, "password": target.password, "dbname": target.dbname,
                 "reader": BI_READER, "reader_password": BI_READER_PASSWORD}
    args = [arg for key, value in variables.items() for arg in ("-v", f"{key}={value}")]
    result = admin.psql(*args, stdin=_PROVISION_SQL)
    if result.returncode != 0:
        raise RuntimeError(f"provisioning {target.user}/{target.dbname} failed:\n{result.stderr}")


class PostgresServer:
    """A private cluster in `data_dir` listening on 127.0.0.1:`port` only (the port is given
    at each start, so a reused data dir follows a changed DATABASE_URL).

    The unix socket lives inside `data_dir` (mode 0700), where local connections are trusted:
    only the owner (and root) can reach it, so the superuser needs no password. TCP logins
    use scram-sha-256. State is the data dir itself, so another process can stop it.
    """

    def __init__(self, data_dir: Path, port: int) -> None:
        # Not resolve(): `_prepare_paths` must see a symlink planted where the dir should be.
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"

    @property
    def admin(self) -> SuperuserAccess:
        """Superuser over the private unix socket (trusted; root may also enter the 0700 dir)."""
        return SuperuserAccess(
            f"host={self.data_dir} port={self.port} user=postgres dbname=postgres"
        )

    def url(self, user: str, password: str, dbname: str) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{dbname}"

    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").is_file():
            return False
        return self._run("pg_ctl", "status", "-D", str(self.data_dir), check=False) == 0

    def start(self) -> None:
        """initdb on first use, then `pg_ctl start` and wait until it accepts connections."""
        if self.is_running():
            return
        if port_open("127.0.0.1", self.port):
            raise RuntimeError(f"port {self.port} is already in use by another server")
        self._prepare_paths()
        log.info(
            "starting a private Postgres cluster",
            port=self.port,
            data_dir=str(self.data_dir),
            log=str(self.log_path),
            os_user=_SERVER_OS_USER if os.geteuid() == 0 else None,
        )
        if not (self.data_dir / "PG_VERSION").is_file():
            self._initdb()
        self._run(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data_dir), "-l", str(self.log_path),
            "-o", f"-p {self.port}",
        )  # fmt: skip
        log.info("postgres up", port=self.port, data_dir=str(self.data_dir))

    def stop(self) -> None:
        if self.is_running():
            self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data_dir))

    def _prepare_paths(self) -> None:
        """Create the data dir; as root, in a parent only root can change, and hand the data
        dir and log file to the OS user that runs the server."""
        as_root = os.geteuid() == 0
        try:
            if as_root:
                _root_only_dir(self.data_dir.parent)
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.log_path.touch()
        except OSError as e:
            raise RuntimeError(
                f"cannot create the Postgres data dir {self.data_dir} "
                f"(AIRLINE_STACK_POSTGRES_DIR): {e}"
            ) from e
        if not as_root:
            return
        for parent in self.data_dir.parents:
            if not os.stat(parent).st_mode & 0o001:
                raise RuntimeError(
                    f"{parent} is not searchable by the {_SERVER_OS_USER!r} OS user that runs "
                    "the server; set AIRLINE_STACK_POSTGRES_DIR to a world-searchable path"
                )
        account = pwd.getpwnam(_SERVER_OS_USER)
        for path in (self.data_dir, self.log_path):
            os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)

    def _initdb(self) -> None:
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", "postgres", "-E", "UTF8",
            "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256",
        )  # fmt: skip
        # Later lines win over initdb's defaults; appending keeps the server user as owner.
        settings = (
            "listen_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{self.data_dir}'\nfsync = on\n"
        )
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(settings)

    def _run(self, tool: str, *args: str, check: bool = True) -> int:
        """Run a server tool to its end even when we are interrupted (Ctrl-C, SIGTERM).

        Killing `pg_ctl start` or `initdb` halfway would leave a server that comes up after
        our clean-up looked, or a half-made data dir. In its own session the tool does not
        get the terminal's Ctrl-C, and on our interrupt we wait for it before unwinding.
        """
        argv = [str(bin_dir() / tool), *args]
        if os.geteuid() == 0:  # postgres refuses to run as root
            argv = ["runuser", "-u", _SERVER_OS_USER, "--", *argv]
        with subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
        ) as process:  # fmt: skip
            try:
                stdout, stderr = process.communicate()
            except BaseException:
                process.communicate()
                raise
        if check and process.returncode != 0:
            raise RuntimeError(f"{tool} failed:\n{stdout}{stderr}")
        return process.returncode


def _root_only_dir(path: Path) -> None:
    """Make `path` (mode 0755) or check that it is a real directory only root can change.

    Its name under /var/tmp is predictable, so another user could plant a directory or a
    symlink there first, and root's chown of the log file would then act on their choice.
    """
    try:
        path.mkdir(parents=True)
        path.chmod(0o755)  # searchable by the server's OS user whatever our umask
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        raise RuntimeError(
            f"{path} must be a directory owned by root and writable by no one else (it holds "
            "the Postgres data dir and log that root hands to the postgres OS user); remove "
            "it, or set AIRLINE_STACK_POSTGRES_DIR elsewhere"
        )


@dataclass(frozen=True)
class EnsuredPostgres:
    """What `ensure_postgres` did: `server` is set only when it started a private cluster."""

    url: str
    how: Literal["existing", "provisioned", "private"]
    server: PostgresServer | None


def _superuser_candidates(target: DatabaseUrl) -> list[SuperuserAccess]:
    """Ways to reach a running server as superuser without a password: trust over TCP, or
    peer auth on Debian's socket as the `postgres` OS user (which root can become)."""
    candidates = [
        SuperuserAccess(f"host={target.host} port={target.port} user=postgres dbname=postgres")
    ]
    socket_dir = "/var/run/postgresql"
    if Path(socket_dir, f".s.PGSQL.{target.port}").exists():
        candidates.append(
            SuperuserAccess(
                f"host={socket_dir} port={target.port} dbname=postgres", _SERVER_OS_USER
            )
        )
    return candidates


def ensure_postgres(
    database_url: str = DEFAULT_DATABASE_URL, data_dir: Path | None = None
) -> EnsuredPostgres:
    """Make `database_url` connectable, starting a private cluster in `data_dir` (default
    `private_cluster_dir()`) on the URL's port only as a last resort."""
    if can_connect(database_url):
        return EnsuredPostgres(database_url, "existing", None)
    target = DatabaseUrl.parse(database_url)
    if port_open(target.host, target.port):
        for admin in _superuser_candidates(target):
            if admin.works():
                provision(admin, target)
                return EnsuredPostgres(database_url, "provisioned", None)
        raise RuntimeError(
            f"a server listens on {target.host}:{target.port} but rejects {target.user!r} and "
            "gives no superuser access; fix its credentials or point DATABASE_URL elsewhere"
        )
    server = PostgresServer(data_dir or private_cluster_dir(), target.port)
    server.start()
    provision(server.admin, target)
    return EnsuredPostgres(database_url, "private", server)
