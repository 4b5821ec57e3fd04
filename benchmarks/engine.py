"""``python -m benchmarks.engine``: the engine's functional core in process (no Kafka).

Decodes JSON values and applies them, as the Kafka shell does per record, on the testkit's
deterministic synthetic stream, and reports events per second of CPU time (so a busy machine
does not distort it much).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

from airline_core import events as ev
from airline_core.config import from_values
from airline_engine.core import EngineCore, core_config
from airline_engine.settings import Settings
from airline_testkit.synthetic import generate


def run_bench(flights: int = 150, seed: int = 7, policy: str = "pace") -> dict[str, Any]:
    """Decode and apply a synthetic stream once; returns counts, CPU seconds and the rate."""
    settings = from_values(Settings, {"ENGINE_POLICY": policy}, {})
    records = [(str(topic), ev.encode(event)) for topic, event in generate(flights, seed)]
    core = EngineCore(core_config(settings))
    outputs = 0
    started = time.process_time()
    for topic, value in records:
        outputs += len(core.apply(topic, ev.decode(topic, value)))
    seconds = time.process_time() - started
    return {"events": len(records), "outputs": outputs, "cpu_seconds": round(seconds, 3),
            "events_per_second": round(len(records) / seconds) if seconds else None,
            "policy": policy}


def main(argv: Sequence[str] | None = None) -> int:
    """Print one JSON line of benchmark results."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.engine", description=__doc__)
    parser.add_argument("--flights", type=int, default=150)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--policy", choices=("pace", "iteration2"), default="pace")
    args = parser.parse_args(argv)
    print(json.dumps(run_bench(args.flights, args.seed, args.policy)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
