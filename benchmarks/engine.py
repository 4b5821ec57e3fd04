"""``python -m benchmarks.engine``: the engine on the producer's real stream, against Quix Streams.

Each round the producer (seed 42) writes its stream into fresh topics, so every side starts
from empty outputs and an empty state changelog, on the same input:

- ``airline-engine`` (exactly-once, its console script, the default revenue policy, one
  process, ``--stop-when-idle 1``): input records over the time from its partition assignment
  to its stop, less the idle second it waits before stopping; the final commit is included;
- the peer, the same tracking and policy code (:class:`~airline_engine.core.EngineCore`) on
  Quix Streams 3.28.1 in exactly-once mode (:mod:`benchmarks.quix_engine`, in a private venv
  made on first use under ``.cache/bench/``; what differs is written there);
- ``engine core in process``: decoding and applying the same stream with no Kafka, per CPU
  second: the ceiling of the logic itself.

The product has no at-least-once mode, so "exactly-once off" is not measured; the in-process
core is the bound such a mode could approach.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from airline_core import events as ev
from airline_core.config import from_values
from airline_engine.core import EngineCore, core_config
from airline_engine.settings import Settings as EngineSettings
from airline_producer.settings import Settings as ProducerSettings
from airline_producer.simulation import Simulation
from airline_testkit.kafka import create_topics
from airline_testkit.logs import json_logs

from benchmarks import producer
from benchmarks.harness import ROOT, Bench, Result, alternate, say, standalone

ENGINE = Path(sys.executable).with_name("airline-engine")
OURS = "airline-engine, exactly-once"
PEER = "Quix Streams 3.28.1, exactly-once, same core"
CORE = "engine core in process (decode + apply, no Kafka)"
QUIX = "quixstreams==3.28.1"
QUIX_VENV = ROOT / ".cache" / "bench" / "quix-venv"
IDLE_S = 1.0


def quix_python() -> Path:
    """The peer's interpreter, its venv created on first use (uv, from PyPI)."""
    python = QUIX_VENV / "bin" / "python"
    marker = QUIX_VENV / f".{QUIX}"
    if not marker.exists():
        say(f"  creating {QUIX_VENV} with {QUIX} (once) ...")
        uv = [found] if (found := shutil.which("uv")) else ["python3", "-m", "uv"]
        subprocess.run([*uv, "venv", "-q", "--allow-existing", "-p", "3.11", str(QUIX_VENV)],
                       check=True)
        subprocess.run([*uv, "pip", "install", "-q", "--python", str(python), QUIX,
                        "msgspec", "structlog", "prometheus-client"], check=True)
        marker.touch()
    return python


def _ts(event: dict[str, object]) -> float:
    from datetime import datetime

    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


def ours(bootstrap: str, prefix: str, extra: dict[str, str] | None = None) -> tuple[float, int]:
    """The real engine over ``prefix``'s input until idle; (events/s, records processed)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           "KAFKA_TOPIC_PREFIX": prefix, "KAFKA_GROUP_ID": f"{prefix}engine",
           "KAFKA_GROUP_INSTANCE_ID": "bench", "METRICS_PORT": "0", "LOG_FORMAT": "json",
           "LOG_LEVEL": "INFO", "STOP_WHEN_IDLE_SECONDS": str(IDLE_S), **(extra or {})}
    done = subprocess.run([str(ENGINE)], env=env, capture_output=True, text=True, timeout=900,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"airline-engine failed: {done.stderr[-3000:]}")
    logs = json_logs(done.stderr)
    assigned = min(_ts(e) for e in logs if e.get("event") == "partitions assigned")
    (stopped,) = [e for e in logs if e.get("event") == "engine stopped"]
    processed = int(stopped["processed"])
    return processed / (_ts(stopped) - assigned - IDLE_S), processed


def quix(bootstrap: str, prefix: str, state_dir: Path) -> tuple[float, int]:
    """The peer over the same input until idle; (events/s as it times itself, records)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": os.pathsep.join(
        str(ROOT / p) for p in ("libs/core/src", "services/engine/src", "."))}
    done = subprocess.run([str(quix_python()), "-m", "benchmarks.quix_engine", "--bootstrap",
                           bootstrap, "--prefix", prefix, "--group", f"{prefix}quix",
                           "--state-dir", str(state_dir), "--idle", str(IDLE_S)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the Quix Streams peer failed: {done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return float(result["events"]) / float(result["seconds"]), int(result["events"])


def core_rate(values: dict[str, str]) -> float:
    """Decode and apply the producer's stream in process; events per CPU second."""
    sim = from_values(ProducerSettings, values, environ={})
    records = [(str(topic), ev.encode(event)) for tick in Simulation(sim).run()
               for topic, event in tick.events]
    core = EngineCore(core_config(from_values(EngineSettings, {}, environ={})))
    started = time.process_time()
    for topic, value in records:
        core.apply(topic, ev.decode(topic, value))
    return len(records) / (time.process_time() - started)


def run(bench: Bench) -> list[Result]:
    """Alternate the engine and the Quix peer, each round on freshly produced topics."""
    assert bench.bootstrap, "the engine stage needs a broker"
    bootstrap = bench.bootstrap
    values = producer.producer_values(bench.scale(300, 20), bench.scale(4, 1))
    counts: list[int] = []

    def fresh(name: str) -> str:
        prefix = bench.topic_prefix(name)
        create_topics(bootstrap, prefix)
        producer.ours(bootstrap, prefix, values)
        return prefix

    def engine(_: int) -> float:
        rate, processed = ours(bootstrap, fresh("engine"))
        counts.append(processed)
        return rate

    def peer(r: int) -> float:
        rate, processed = quix(bootstrap, fresh("quix"), bench.scratch(f"quix-state-{r}"))
        counts.append(processed)
        return rate

    measured = alternate(bench.rounds, {OURS: engine, PEER: peer})
    if len(set(counts)) != 1:
        raise RuntimeError(f"the sides processed different input record counts: {counts}")
    cpu = [core_rate(values) for _ in range(bench.rounds)]
    notes = f"the producer's stream, {values['PRODUCER_FLIGHTS']} flights x " \
            f"{values['PRODUCER_DAYS']} days, {counts[0]:,} input records"
    return [Result("engine", OURS, "events/s", measured[OURS],
                   notes=f"{notes}; revenue policy, the default 100 ms commits"),
            Result("engine", PEER, "events/s", measured[PEER], peer_of=OURS,
                   notes=f"{notes}; RocksDB state, no event-time merge "
                         "(benchmarks/quix_engine.py)"),
            Result("engine", CORE, "events/CPU s", cpu, notes="one core, no broker")]


def main(argv: Sequence[str] | None = None) -> int:
    return standalone("engine", run, kafka=True, postgres=False, argv=argv, doc=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
