"""What every benchmark shares: the run's services, rounds in alternated order, results.

A stage module (``benchmarks.engine``, ``benchmarks.producer``, ...) exposes
``run(bench: Bench) -> list[Result]``: it measures our component and its peer on the same input
and the same broker or database, round after round with the order alternated (so neither side
always runs on a warm page cache or a freshly compacted log), and returns one :class:`Result`
per subject. ``python -m benchmarks`` runs every stage on one broker and one Postgres and writes
``bench/results/latest.json`` and ``latest.md``; ``python -m benchmarks.<stage>`` runs one
stage on its own (:func:`standalone`).

Numbers are medians with min and max over the rounds, never a single run; the machine, the
broker and the database are recorded beside them, because a rate means nothing without them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"


@dataclass
class Result:
    """One subject's measurements over the rounds (``values``: one per round)."""

    stage: str
    subject: str
    metric: str
    values: list[float]
    higher_is_better: bool = True
    peer_of: str | None = None  # the subject this one is the peer (yardstick) for
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "median": self.median, "min": self.low, "max": self.high}


@dataclass
class Bench:
    """The run's shared services and knobs, handed to every stage."""

    bootstrap: str | None
    database_url: str | None
    work: Path
    rounds: int = 3
    quick: bool = False  # smaller inputs: a smoke run of the harness, not numbers to quote

    def scale(self, full: int, quick: int) -> int:
        """An input size: ``full`` normally, ``quick`` in a smoke run."""
        return quick if self.quick else full

    def scratch(self, name: str) -> Path:
        """A fresh directory under the run's work dir."""
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.work))
        return path

    def topic_prefix(self, name: str) -> str:
        """A prefix no earlier round used, so each round starts from empty topics."""
        return f"bench-{name}-{time.time_ns()}-"


def alternate(rounds: int, subjects: dict[str, Callable[[int], float]],
              progress: Callable[[str], None] | None = None) -> dict[str, list[float]]:
    """Run each subject once per round, the order rotated every round; values by subject.

    Each callable gets the round number and returns its measurement for that round.
    """
    names = list(subjects)
    values: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            value = subjects[name](r)
            values[name].append(value)
            (progress or say)(f"  round {r + 1}/{rounds} {name}: {value:,.1f}")
    return values


def say(line: str) -> None:
    """Progress output on stderr (stdout carries the results)."""
    print(line, file=sys.stderr, flush=True)


def _run(*argv: str) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                              check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine(bench: Bench) -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    info: dict[str, Any] = {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kib / 2**20, 1),
        "os": platform.platform(), "python": platform.python_version(),
        "rounds": bench.rounds, "quick": bench.quick,
    }
    with contextlib.suppress(Exception):
        import confluent_kafka

        info["librdkafka"] = confluent_kafka.libversion()[0]
    with contextlib.suppress(Exception):
        from airline_devstack.kafka_broker import resolve_kafka_jars

        for jar in sorted(resolve_kafka_jars().glob("kafka_*.jar")):  # kafka_2.13-4.4.0.jar
            info["kafka"] = jar.stem.rsplit("-", 1)[-1]
            break
    if bench.database_url:
        with contextlib.suppress(Exception):
            import psycopg2

            with contextlib.closing(psycopg2.connect(bench.database_url)) as conn, \
                    conn.cursor() as cur:
                cur.execute("SHOW server_version")
                row = cur.fetchone()
                info["postgres"] = row[0] if row else "?"
    return info


def ratio_line(result: Result, results: Sequence[Result]) -> str:
    """``x1.40`` against the peer this result names (medians), or ``""``."""
    for other in results:
        if other.stage == result.stage and other.peer_of == result.subject:
            if not other.median:
                return ""
            ratio = result.median / other.median
            return f"x{ratio if result.higher_is_better else 1 / ratio:.2f} vs {other.subject}"
    return ""


def markdown(results: Sequence[Result], info: dict[str, Any], command: str) -> str:
    """The table the README shows."""
    lines = [
        f"`{command}` on {info.get('cores')} cores ({info.get('cpu')}), "
        f"{info.get('memory_gib')} GiB, Python {info.get('python')}, "
        f"Kafka {info.get('kafka', '?')} (one broker, loopback), "
        f"librdkafka {info.get('librdkafka', '?')}, Postgres {info.get('postgres', '?')}; "
        f"median [min, max] of {info.get('rounds')} rounds"
        + (" (quick smoke run: not numbers to quote)" if info.get("quick") else "") + ".",
        "",
        "| stage | subject | metric | median | [min, max] | against the peer | notes |",
        "|---|---|---|---:|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r.stage} | {r.subject} | {r.metric} | {_fmt(r.median)} | "
                     f"[{_fmt(r.low)}, {_fmt(r.high)}] | {ratio_line(r, results)} | {r.notes} |")
    return "\n".join(lines) + "\n"


def _fmt(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def write(results: Sequence[Result], info: dict[str, Any], command: str,
          directory: Path = RESULTS_DIR, name: str = "latest") -> tuple[Path, Path]:
    """``NAME.json`` (every value) and ``NAME.md`` (the table) under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    as_json = directory / f"{name}.json"
    as_md = directory / f"{name}.md"
    as_json.write_text(json.dumps({"command": command, "machine": info,
                                   "results": [r.as_json() for r in results]}, indent=2) + "\n")
    as_md.write_text(markdown(results, info, command))
    return as_json, as_md


@contextlib.contextmanager
def services(need_kafka: bool, need_postgres: bool, work: Path) -> Iterator[
        tuple[str | None, str | None]]:
    """A throwaway broker and Postgres for the run, or the ones named by the environment.

    ``KAFKA_BOOTSTRAP_SERVERS`` and ``DATABASE_URL`` point a run at existing services (they are
    not cleaned up: each round uses fresh topics and schemas of its own).
    """
    with contextlib.ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") if need_kafka else None
        if need_kafka and not bootstrap:
            from airline_devstack.kafka_broker import KafkaBroker
            from airline_testkit.net import free_port

            say("starting a throwaway Kafka broker ...")
            broker = KafkaBroker(work / "kafka", free_port(), heap="1g", die_with_parent=True)
            broker.start()
            stack.callback(broker.stop)
            bootstrap = broker.bootstrap
        database_url = os.environ.get("DATABASE_URL") if need_postgres else None
        if need_postgres and not database_url:
            from airline_devstack.postgres import DatabaseUrl, PostgresServer, provision
            from airline_testkit.net import free_port

            say("starting a throwaway Postgres ...")
            base = work / "postgres"
            base.mkdir()
            base.chmod(0o755)  # the `postgres` OS user must enter it when run as root
            server = PostgresServer(base / "data", free_port())
            server.start()
            stack.callback(server.stop)
            database_url = server.url("airline", "airline", "airline_dw")
            provision(server.admin, DatabaseUrl.parse(database_url))
        yield bootstrap, database_url


@contextlib.contextmanager
def work_dir(keep: bool = False) -> Iterator[Path]:
    """The run's scratch space (removed afterwards unless ``keep``)."""
    path = Path(tempfile.mkdtemp(prefix="airline-bench-", dir=os.environ.get("BENCH_WORK_DIR")))
    path.chmod(0o755)
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every entry point takes."""
    parser.add_argument("--rounds", type=int, default=3, help="rounds per subject (default 3)")
    parser.add_argument("--quick", action="store_true",
                        help="small inputs: check the harness runs, not numbers to quote")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (printed)")


def standalone(stage: str, run: Callable[[Bench], list[Result]], *, kafka: bool,
               postgres: bool, argv: Sequence[str] | None = None, doc: str | None = None) -> int:
    """``python -m benchmarks.<stage>``: one stage with its own services; prints its table."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{stage}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--out", type=Path, help="also write OUT.json and OUT.md")
    args = parser.parse_args(argv)
    with work_dir(args.keep) as work, services(kafka, postgres, work) as (bootstrap, db):
        bench = Bench(bootstrap, db, work, rounds=args.rounds, quick=args.quick)
        results = run(bench)
        info = machine(bench)
        command = f"python -m benchmarks.{stage}" + (" --quick" if args.quick else "")
        print(markdown(results, info, command))
        if args.out:
            write(results, info, command, args.out.parent, args.out.name)
    return 0
