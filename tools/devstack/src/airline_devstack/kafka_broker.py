"""A real single-node Apache Kafka 4.x broker (KRaft, combined broker+controller) on the local JDK.

Why a real broker and not an emulator: the platform relies on idempotent and transactional
producers, read_committed isolation and a KRaft cluster id that changes per incarnation, and
only Apache Kafka itself gives those exact semantics. No Docker here, so the broker jars come
from Maven Central via `infra/kafka/pom.xml` and run with `java -cp`.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airline_core.logging import get_logger
from confluent_kafka.admin import AdminClient

from airline_devstack import kafka_security
from airline_devstack._proc import PidFileProcess, free_port, port_open
from airline_devstack.paths import cache_dir, repo_root

log = get_logger(__name__)

KAFKA_POM = Path("infra/kafka/pom.xml")

# Console-only log4j2 config: the JVM's stdout/stderr are redirected to `<data_dir>/broker.log`,
# which also catches JVM crashes that happen before log4j is up.
_LOG4J2 = """\
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


class KafkaUnavailableError(RuntimeError):
    """No JDK or Maven on this machine, so a real broker cannot be run."""


class KafkaStartError(RuntimeError):
    """The broker process failed to start or become ready; the message holds its log tail."""


@dataclass(frozen=True)
class ExternalKafka:
    """A broker someone else runs (e.g. `KAFKA_BOOTSTRAP_SERVERS`): same read surface as ours."""

    bootstrap: str
    cluster_id: str


def _any_listener(bootstrap: str) -> bool:
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition("://")[2].rpartition(":")
        if port.isdigit() and port_open(host.strip("[]"), int(port)):
            return True
    return False


def probe_cluster_id(bootstrap: str, timeout: float = 3.0,
                     config: Mapping[str, Any] | None = None) -> str | None:
    """The cluster id of the broker at `bootstrap` (connecting with `config`, e.g. a secured
    broker's credentials), or None if no broker answers in time.

    A plain TCP check first makes "nothing listens" instant and keeps librdkafka from
    logging connection-refused lines while a broker is still starting.
    """
    if not _any_listener(bootstrap):
        return None
    admin = AdminClient(
        {**(config or {}), "bootstrap.servers": bootstrap,
         "socket.connection.setup.timeout.ms": 2000}
    )
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception:  # confluent_kafka raises KafkaException on timeout; any failure means no
        return None
    return metadata.cluster_id or None


def java_bin() -> str | None:
    """`$JAVA_HOME/bin/java` if set, else `java` on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and os.access(Path(home, "bin", "java"), os.X_OK):
        return str(Path(home, "bin", "java"))
    return shutil.which("java")


def new_cluster_id() -> str:
    """A random KRaft cluster id, same format as `kafka-storage random-uuid` (base64url UUID)."""
    while True:
        encoded = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not encoded.startswith("-"):  # Kafka rejects ids that look like a CLI flag
            return encoded


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def resolve_kafka_jars() -> Path:
    """Copy the broker jars into `.cache/kafka-libs/` once; later calls return at once.

    Keyed by the pom's sha256, so bumping the Kafka version re-resolves. A file lock makes
    concurrent pytest sessions and `airline-stack up` resolve only once.
    """
    pom = repo_root() / KAFKA_POM
    libs = cache_dir() / "kafka-libs"
    stamp = libs / ".pom-sha256"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == digest:
        return libs
    with _file_lock(cache_dir() / "kafka-libs.lock"):
        if stamp.is_file() and stamp.read_text() == digest:
            return libs
        mvn = shutil.which("mvn")
        if mvn is None or java_bin() is None:
            raise KafkaUnavailableError("running Apache Kafka needs `java` (17+) and `mvn`")
        log.info("resolving Kafka jars (first run, ~1 min)…", pom=str(pom), into=str(libs))
        started = time.monotonic()
        staging = cache_dir() / f"kafka-libs.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        result = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-Dstyle.color=never",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise KafkaStartError(
                f"mvn could not resolve the Kafka jars:\n{result.stdout}{result.stderr}"
            )
        (staging / ".pom-sha256").write_text(digest)
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        log.info("Kafka jars ready", seconds=round(time.monotonic() - started, 1))
    return libs


class KafkaBroker:
    """One broker+controller node whose whole state lives in `data_dir`.

    `start()` formats the storage with a fresh random cluster id when `data_dir` is new and
    reuses it otherwise (a restart keeps topics and offsets). Delete `data_dir` to get a new
    incarnation. Another process can stop a broker started elsewhere: build a `KafkaBroker`
    on the same `data_dir` and call `stop()`. `die_with_parent=True` (tests) ends the broker
    when the starting process dies; `airline-stack up` leaves it False so the broker outlives it.
    With `security` (:mod:`airline_devstack.kafka_security`) its only client listener is
    SASL_SSL, with one SCRAM identity per component and the ACLs of `airline_core.acls`.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        controller_port: int | None = None,
        heap: str = "512m",
        die_with_parent: bool = False,
        security: kafka_security.BrokerSecurity | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.controller_port = controller_port
        self.heap = heap
        self.die_with_parent = die_with_parent
        self.security = security
        self.config_path = self.data_dir / "server.properties"
        self.log_path = self.data_dir / "broker.log"
        self._process = PidFileProcess(self.data_dir / "broker.pid", marker=str(self.config_path))

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def cluster_id(self) -> str:
        """The KRaft cluster id, read from the formatted storage (changes per fresh data_dir)."""
        meta = self.data_dir / "log" / "meta.properties"
        for line in meta.read_text().splitlines() if meta.is_file() else []:
            key, _, value = line.partition("=")
            if key.strip() == "cluster.id":
                return value.strip()
        raise RuntimeError(f"Kafka storage in {self.data_dir} is not formatted yet")

    def is_running(self) -> bool:
        return self._process.is_running()

    def admin_config(self) -> dict[str, Any]:
        """librdkafka settings of an admin client (the admin identity on a secured broker)."""
        if self.security is None:
            return {"bootstrap.servers": self.bootstrap}
        return self.security.client_config(self.bootstrap)

    def start(self, timeout: float = 90.0) -> None:
        """Format if needed, launch the JVM and block until an AdminClient can list topics."""
        if self.is_running():
            return
        started = time.monotonic()
        libs = resolve_kafka_jars()
        java = java_bin()
        if java is None:
            raise KafkaUnavailableError("running Apache Kafka needs `java` (17+)")
        if port_open("127.0.0.1", self.port):
            raise KafkaStartError(f"port {self.port} is already in use")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.controller_port is None:
            self.controller_port = self._previous_controller_port()
        while self.controller_port in (None, self.port):
            self.controller_port = free_port()
        self.config_path.write_text(self._server_properties())
        log4j = self.data_dir / "log4j2.properties"
        log4j.write_text(_LOG4J2)
        jvm = [java, f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{libs}/*"]
        if not (self.data_dir / "log" / "meta.properties").is_file():
            self._format(jvm)
        heap = [f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"]
        self._process.spawn(
            [*jvm, *heap, "-XX:+ExitOnOutOfMemoryError", "kafka.Kafka", str(self.config_path)],
            self.log_path,
            die_with_parent=self.die_with_parent,
        )
        self._wait_ready(started + timeout)
        if self.security is not None:
            granted = kafka_security.apply_grants(AdminClient(self.admin_config()))
            log.info("kafka ACLs granted", bindings=granted)
        log.info(
            "kafka broker up",
            bootstrap=self.bootstrap,
            cluster_id=self.cluster_id,
            seconds=round(time.monotonic() - started, 1),
        )

    def stop(self, timeout: float = 20.0) -> None:
        """Controlled shutdown via SIGTERM; SIGKILL if it takes longer than `timeout` seconds."""
        self._process.stop(timeout)

    def _format(self, jvm: list[str]) -> None:
        result = subprocess.run(
            [
                *jvm,
                "kafka.tools.StorageTool",
                "format",
                "--config",
                str(self.config_path),
                "--cluster-id",
                new_cluster_id(),
                "--standalone",
                *(self.security.scram_arguments() if self.security else []),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise KafkaStartError(f"kafka-storage format failed:\n{result.stdout}{result.stderr}")

    def _wait_ready(self, deadline: float) -> None:
        expected = self.cluster_id
        while time.monotonic() < deadline:
            if not self._process.is_running():
                raise KafkaStartError(f"Kafka exited during start-up:\n{self._log_tail()}")
            if probe_cluster_id(self.bootstrap, config=self.admin_config()) == expected:
                return
            time.sleep(0.2)
        self.stop()
        raise KafkaStartError(f"Kafka not ready in time:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 40) -> str:
        if not self.log_path.is_file():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _previous_controller_port(self) -> int | None:
        """A restart must keep the controller endpoint that the formatted voter set recorded."""
        if not self.config_path.is_file():
            return None
        for line in self.config_path.read_text().splitlines():
            key, _, value = line.partition("=")
            if key == "controller.quorum.bootstrap.servers":
                return int(value.rsplit(":", 1)[1])
        return None

    def _server_properties(self) -> str:
        props = {
            # KRaft single node: this process is both the broker and the only controller voter
            # (dynamic quorum: formatted with --standalone, found via quorum.bootstrap.servers).
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir / "log"),
            # Topics are created explicitly by the topic registry, never by a typo.
            "auto.create.topics.enable": "false",
            "num.partitions": "3",
            # One node: every internal topic must fit on one replica.
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Fast tests: no join delay, quick abort of timed-out transactions, quick cleaner.
            "group.initial.rebalance.delay.ms": "0",
            "group.coordinator.rebalance.protocols": "classic,consumer",
            "transaction.abort.timed.out.transaction.cleanup.interval.ms": "5000",
            "log.cleaner.backoff.ms": "1000",
        }
        if self.security is not None:
            assert self.controller_port is not None
            props.update(self.security.server_properties(self.port, self.controller_port))
        return "".join(f"{key}={value}\n" for key, value in props.items())
