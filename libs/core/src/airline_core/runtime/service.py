"""One lifecycle for every long-running service: settings, logging, signals, health, exit code.

``run_service`` loads the settings (``--help``; a bad value exits 2 naming the setting),
configures logging (JSON in the cluster, readable at a terminal), installs SIGTERM/SIGINT
handling, serves ``/metrics``, ``/healthz`` and ``/readyz``, runs the component and turns
whatever it raised into an exit code with :func:`exit_code_of`: 0 for a clean stop, the
``exit_code`` of an :class:`~airline_core.errors.AirlineError` (1 failure, 2 configuration,
3 refused to start), 1 for a Kafka error. A programming error still propagates (with its
traceback) after it is logged.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from confluent_kafka import KafkaException

from airline_core import config
from airline_core.config import LogSettings
from airline_core.errors import AirlineError
from airline_core.health import HealthServer
from airline_core.kafka import access_denied
from airline_core.lifecycle import StopSignal
from airline_core.logging import configure_logging, get_logger

log = get_logger(__name__)
S = TypeVar("S", bound="ServiceSettings")

#: Collect the youngest generation after this many new container objects instead of 700. A
#: stream service allocates a decoded event (a dozen objects) per record and holds a fetch of
#: them until they are processed; at the default every few hundred records trigger a
#: collection that walks all of them, which cost the engine more CPU than decoding itself
#: (make bench, engine stage). Nothing here is cyclic garbage that needs prompt collection.
GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Move what start-up allocated out of the collector's sight and raise the young
    threshold (see :data:`GC_YOUNG_THRESHOLD`)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


class ServiceSettings(Protocol):
    """What every service's settings hold."""

    @property
    def log(self) -> LogSettings:
        """Logging settings."""

    @property
    def metrics_port(self) -> int:
        """Port of the health and metrics server."""


class Component(Protocol):
    """A running service: readiness for ``/readyz``, and its run to the end."""

    def readiness(self) -> tuple[bool, str]:
        """(ready, reason) for ``/readyz``."""

    def run(self) -> int:
        """Run until stopped; the exit code of a clean stop (0)."""


def exit_code_of(error: BaseException) -> int:
    """The exit code an exception stands for (the one place codes are decided)."""
    if isinstance(error, AirlineError):
        return error.exit_code
    if isinstance(error, KafkaException):
        return 1
    raise error


def run_service(settings_class: type[S], argv: Sequence[str] | None, *, prog: str,
                description: str,
                build: Callable[[S, StopSignal, HealthServer], Component]) -> int:
    """Load settings, start logging, signals and health, build and run the component."""
    settings = config.load(settings_class, argv, prog=prog, description=description)
    configure_logging(settings.log, component=prog)
    stop = StopSignal().install()
    running: list[Component] = []

    def readiness() -> tuple[bool, str]:
        return running[0].readiness() if running else (False, "starting")

    health = HealthServer(settings.metrics_port, readiness).start()
    try:
        component = build(settings, stop, health)
        running.append(component)
        tune_gc()
        return component.run()
    except (AirlineError, KafkaException) as e:
        error: BaseException = e
        if isinstance(e, KafkaException):
            error = access_denied(e.args[0] if e.args else None) or e
        code = exit_code_of(error)
        log.error("stopped on error", error=str(error), error_type=type(error).__name__,
                  exit_code=code)
        return code
    except BaseException as e:
        log.error("stopped on an unexpected error", error=str(e), error_type=type(e).__name__)
        raise
    finally:
        health.stop()
