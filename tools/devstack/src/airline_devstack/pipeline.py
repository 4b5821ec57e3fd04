"""Run the whole pipeline as separate processes: topics, producer, engine, lake writer, ETL.

Used by ``airline-demo`` and by the end-to-end test, so the demo a newcomer runs is the same code
the test suite checks. Each component runs through its own console script with only environment
variables and flags, as its pod would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airline_core import acls
from airline_core.logging import get_logger

from airline_devstack.kafka_security import ADMIN, BrokerSecurity

log = get_logger(__name__)

BIN = Path(sys.executable).parent
#: A malformed booking the demo injects on purpose, to show the dead-letter path end to end.
MALFORMED_KEY = b"DEMO_MALFORMED_0001"
MALFORMED_VALUE = b'{"event_type": "BookingCreated", "note": "injected by airline-demo: invalid"}'


#: The Kafka identity of each process of the pipeline on a secured broker (the ETL has none).
KAFKA_IDENTITIES: Mapping[str, str] = {"topics": ADMIN, "producer": acls.PRODUCER,
                                        "engine": acls.ENGINE, "lake-writer": acls.LAKE_WRITER}


@dataclass(frozen=True)
class PipelineSpec:
    """Where the pipeline runs and how big the simulation is."""

    bootstrap: str
    database_url: str
    lake_dir: Path
    log_dir: Path
    seed: int
    flights: int
    days: int
    start_date: str = "2025-11-28"
    topic_prefix: str = ""
    redis_url: str = ""
    promotions: str = "topic"
    idle_seconds: float = 5.0
    inject_malformed: bool = True
    #: 0 (free ports, so runs never collide) or each component's default METRICS_PORT.
    free_metrics_ports: bool = True
    extra_env: Mapping[str, str] = field(default_factory=dict)
    #: A secured broker's credentials: each component connects as its own identity.
    kafka_security: BrokerSecurity | None = None

    def kafka_config(self) -> dict[str, Any]:
        """librdkafka settings of the run's own clients (the admin on a secured broker)."""
        if self.kafka_security is None:
            return {"bootstrap.servers": self.bootstrap}
        return self.kafka_security.client_config(self.bootstrap)

    def env(self, component: str) -> dict[str, str]:
        """The environment a component's pod would get, pointed at this machine's servers."""
        env = {
            "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": os.environ.get("HOME", "/tmp"),
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_TOPIC_PREFIX": self.topic_prefix,
            "LOG_FORMAT": "json",
            "LAKE_DIR": str(self.lake_dir),
            "DATABASE_URL": self.database_url,
            "KAFKA_GROUP_ID": f"{self.topic_prefix}{component}",
        }
        if self.free_metrics_ports:
            env["METRICS_PORT"] = "0"
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        identity = KAFKA_IDENTITIES.get(component)
        if self.kafka_security is not None and identity is not None:
            # Its own identity, and a group inside the prefix its ACLs grant.
            env.update(self.kafka_security.environment(identity))
            env["KAFKA_GROUP_ID"] = f"{self.topic_prefix}{identity}"
        env.update(self.extra_env)
        return env


@dataclass
class Outcome:
    """Exit codes of every process the pipeline ran, by name (restarts keep the last)."""

    exit_codes: dict[str, int] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Every component exited 0."""
        return bool(self.exit_codes) and all(code == 0 for code in self.exit_codes.values())


class Processes:
    """Starts components with logs to files, and stops whatever is still running at the end."""

    def __init__(self, spec: PipelineSpec) -> None:
        self.spec = spec
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        spec.log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, script: str, *args: str) -> subprocess.Popen[bytes]:
        """Start ``script`` (a console script of the workspace) as component ``name``."""
        log_file = (self.spec.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [str(BIN / script), *args], env=self.spec.env(name), stdout=log_file,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log_file.close()
        self.running[name] = process
        log.info("started", component=name, pid=process.pid, log=str(self.spec.log_dir / name))
        return process

    def run(self, name: str, script: str, *args: str, timeout: float = 600) -> int:
        """Start ``script`` and wait for it; its exit code."""
        return self.wait(name, self.start(name, script, *args), timeout)

    def wait(self, name: str, process: subprocess.Popen[bytes], timeout: float) -> int:
        """Wait for ``process``; a process over its time is killed and reported as failed."""
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("timed out; stopping it", component=name, seconds=timeout)
            process.kill()
            code = process.wait()
            code = code if code != 0 else 124
        self.running.pop(name, None)
        log.info("finished", component=name, exit_code=code)
        return code

    def final_pass(self, name: str, process: subprocess.Popen[bytes], script: str,
                   *args: str, timeout: float) -> int:
        """Wait for ``process`` (stopping when idle), then run ``script`` once more, to the end.

        Called once the component's upstream has exited. The first run may have decided to stop
        an instant before the upstream's last commit became visible (a process still alive can
        already be on its way out), so only a run started after the upstream ended is sure to
        see everything; it resumes from the committed state, so nothing is taken twice. A
        failure of the first run is kept."""
        code = self.wait(name, process, timeout)
        if code != 0:
            self.failures[f"{name} (first run)"] = code
        self.restarts[name] = self.restarts.get(name, 0) + 1
        return self.wait(name, self.start(name, script, *args), timeout)

    def stop_all(self) -> None:
        """SIGTERM everything still running (services flush and commit), then SIGKILL."""
        for process in self.running.values():
            process.terminate()
        deadline = time.monotonic() + 30
        for name, process in list(self.running.items()):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("did not stop on SIGTERM; killing", component=name)
                process.kill()
                process.wait()
        self.running.clear()


def inject_malformed(spec: PipelineSpec) -> None:
    """Produce one invalid booking, so the demo shows a record going to ``dead_letter``."""
    from confluent_kafka import Producer

    producer = Producer({**spec.kafka_config(), "enable.idempotence": True, "log_level": 3})
    producer.produce(f"{spec.topic_prefix}bookings", key=MALFORMED_KEY, value=MALFORMED_VALUE)
    if producer.flush(30) != 0:
        raise RuntimeError("could not deliver the injected malformed record")


def run_bounded(spec: PipelineSpec, timeout: float = 900) -> Outcome:
    """One bounded run: producer to the end, engine and lake writer until idle, then the ETL.

    Engine and lake writer stop when idle for ``idle_seconds``. Once its upstream (the
    producer for the engine, the engine for the lake writer) has exited, each gets a final
    pass (:meth:`Processes.final_pass`): it resumes from its committed state and takes what
    is left, however its first run's stop and the upstream's last commit fell.
    """
    started = time.monotonic()
    outcome = Outcome()
    processes = Processes(spec)
    try:
        code = processes.run("topics", "airline-topics", "create", timeout=120)
        outcome.exit_codes["topics"] = code
        if code != 0:
            return outcome
        if spec.inject_malformed:
            inject_malformed(spec)
        idle = ["--stop-when-idle", str(spec.idle_seconds)]
        engine = processes.start("engine", "airline-engine", *idle)
        lake_writer = processes.start("lake-writer", "airline-lake-writer", "--new-source", *idle)
        producer = processes.start(
            "producer", "airline-producer", "--speed", "max", "--seed", str(spec.seed),
            "--flights", str(spec.flights), "--days", str(spec.days),
            "--start-date", spec.start_date, "--promotions", spec.promotions)
        outcome.exit_codes["producer"] = processes.wait("producer", producer, timeout)
        outcome.exit_codes["engine"] = processes.final_pass("engine", engine, "airline-engine",
                                                            *idle, timeout=timeout)
        outcome.exit_codes["lake-writer"] = processes.final_pass(
            "lake-writer", lake_writer, "airline-lake-writer", *idle, timeout=timeout)
        outcome.restarts = processes.restarts
        outcome.exit_codes.update(processes.failures)
        outcome.exit_codes["etl"] = processes.run("etl", "airline-etl", timeout=timeout)
    finally:
        processes.stop_all()
        outcome.seconds = time.monotonic() - started
    return outcome

