"""``airline-engine``: the stateful exactly-once inventory tracking and promotion engine."""

from __future__ import annotations

from collections.abc import Sequence

from airline_core import config
from airline_core.errors import AirlineError
from airline_core.lifecycle import StopSignal
from airline_core.logging import configure_logging
from confluent_kafka import KafkaException

from airline_engine._log import logger
from airline_engine.app import EngineApp
from airline_engine.settings import Settings

log = logger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``airline-engine``."""
    settings = config.load(Settings, argv, prog="airline-engine",
                           description=__doc__ or "")
    configure_logging(settings.log, component="airline-engine")
    stop = StopSignal().install()
    try:
        return EngineApp(settings, stop).run()
    except (AirlineError, KafkaException) as e:
        log.error("engine failed", error=str(e), error_type=type(e).__name__)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
