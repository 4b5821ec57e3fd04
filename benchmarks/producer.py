"""``python -m benchmarks.producer [producer flags]``: the in-process simulation rate.

Runs the simulation with the producer's own settings (same flags and env vars), encodes every
event as the Kafka shell would, and prints events, bytes, seconds and events per second. No
broker is needed: this is the ceiling the Kafka shell can reach.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from airline_core.config import load
from airline_core.events import encode
from airline_producer.settings import Settings
from airline_producer.simulation import Simulation


def main(argv: Sequence[str] | None = None) -> int:
    """Simulate and encode the whole run; print the rate."""
    settings = load(Settings, argv, prog="python -m benchmarks.producer",
                    description="Measure the in-process simulation rate (no Kafka).")
    started = time.perf_counter()
    sim = Simulation(settings)
    events = size = 0
    for tick in sim.run():
        for _, event in tick.events:
            size += len(encode(event))
        events += len(tick.events)
    seconds = time.perf_counter() - started
    print(f"flights={len(sim.flights)} events={events} bytes={size} seconds={seconds:.2f} "
          f"events_per_second={events / seconds:.0f}", file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
