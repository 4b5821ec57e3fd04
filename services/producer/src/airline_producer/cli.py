"""``airline-producer``: the console script."""

from __future__ import annotations

from collections.abc import Sequence

from airline_core.config import load
from airline_core.errors import AirlineError
from airline_core.health import HealthServer
from airline_core.lifecycle import StopSignal
from airline_core.logging import configure_logging, get_logger

from airline_producer.app import Status, run
from airline_producer.settings import Settings

DESCRIPTION = (
    "Simulate an airline's schedule, demand, bookings, seats and inventory from a seed and "
    "stream them to Kafka (flight_lifecycle, bookings, seat_inventory, seat_map) in "
    "transactions of whole simulated ticks. Deterministic per seed with --promotions off or "
    "file; restart-safe (resumes after the last committed tick). See docs/producer.md.")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse settings, start /metrics and probes, run the producer; exit code 0 on success."""
    settings = load(Settings, argv, prog="airline-producer", description=DESCRIPTION)
    configure_logging(settings.log, component="producer")
    log = get_logger(__name__)
    stop = StopSignal().install()
    status = Status()
    health = HealthServer(settings.metrics_port, status.check).start()
    try:
        code = run(settings, stop, status, beat=health.beat)
        if code == 0 and not settings.exit_when_done:
            idle_until_stopped(stop, status, health)
        return code
    except AirlineError as e:
        log.error("producer failed", error=str(e), kind=type(e).__name__)
        return 1
    finally:
        health.stop()


def idle_until_stopped(stop: StopSignal, status: Status, health: HealthServer) -> None:
    """Stay up, ready and alive after the schedule ended, until SIGTERM."""
    get_logger(__name__).info("schedule finished; idle until SIGTERM (PRODUCER_EXIT_WHEN_DONE)")
    status.ready, status.reason = True, "schedule finished; idle"
    while not stop.wait(5.0):
        health.beat()


if __name__ == "__main__":
    raise SystemExit(main())
