"""structlog setup: JSON lines in the cluster, readable colourless lines at a terminal."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from airline_core.config import LogSettings


def uses_json(settings: LogSettings) -> bool:
    """Whether logs are JSON lines (then human-only output such as tables goes into log events
    instead of being printed, so ``kubectl logs`` stays one JSON object per line)."""
    return settings.format == "json" or (settings.format == "auto" and not sys.stderr.isatty())


def configure_logging(settings: LogSettings | None = None, *, component: str = "") -> None:
    """Configure structlog and the standard library once, at start.

    ``auto`` picks console output when stderr is a terminal and JSON otherwise, so ``kubectl
    logs`` gets one JSON object per line and a developer gets readable text.
    """
    settings = settings or LogSettings()
    use_json = uses_json(settings)
    level = getattr(logging, settings.level)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if use_json:
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        processors += [structlog.dev.ConsoleRenderer(colors=False)]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(level, logging.WARNING), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    if component:
        structlog.contextvars.bind_contextvars(component=component)


def get_logger(name: str) -> Any:
    """A structlog logger tagged with the module name."""
    return structlog.get_logger(module=name)
