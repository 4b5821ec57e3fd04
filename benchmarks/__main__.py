"""``python -m benchmarks`` (``make bench``): every stage against its peer, in one run.

One throwaway Kafka broker and one Postgres serve every stage (or the ones that
``KAFKA_BOOTSTRAP_SERVERS`` and ``DATABASE_URL`` name), so the numbers of a run are comparable
with each other. The table goes to stdout and, with every round's value and the machine, to
``bench/results/latest.json`` and ``latest.md`` (rewritten after each stage, so an interrupted
run keeps what it measured). ``--quick`` runs tiny inputs to check the harness, not to quote.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.harness import (
    RESULTS_DIR,
    Bench,
    Result,
    add_common_arguments,
    machine,
    markdown,
    say,
    services,
    work_dir,
    write,
)

#: In the order they run: the cheap in-process and single-service stages first.
STAGES = ("producer", "engine", "latency", "lake_writer", "etl", "pipeline")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stages, write the results, print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma-separated subset of {','.join(STAGES)} (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "latest",
                        help="results path without suffix (default bench/results/latest)")
    args = parser.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"--stages: unknown stage(s) {unknown}; choose from {list(STAGES)}")
    given = list(sys.argv[1:] if argv is None else argv)
    command = " ".join(["python -m benchmarks", *given]) if given else "make bench"
    results: list[Result] = []
    started = time.monotonic()
    with work_dir(args.keep) as work, services(True, True, work) as (bootstrap, database_url):
        bench = Bench(bootstrap, database_url, work, rounds=args.rounds, quick=args.quick)
        info = machine(bench)
        for stage in stages:
            stage_started = time.monotonic()
            say(f"== {stage} ==")
            module = importlib.import_module(f"benchmarks.{stage}")
            results.extend(module.run(bench))
            info["seconds"] = round(time.monotonic() - started)
            info.setdefault("stage_seconds", {})[stage] = round(time.monotonic() - stage_started)
            write(results, info, command, args.out.parent, args.out.name)
        if args.keep:
            say(f"work dir kept: {work}")
    print(markdown(results, info, command))
    say(f"results: {args.out}.json, {args.out}.md ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
