"""Module loggers that honour ``configure_logging`` even when created at import time.

``airline_core.logging.get_logger(name)`` calls ``bind`` on structlog's lazy proxy, which
materialises the logger with the configuration of *that moment*, so a module-level logger made
before ``configure_logging`` runs keeps the default console renderer (no JSON in the cluster).
``structlog.get_logger(module=...)`` stays lazy and picks up the configuration on each call.
"""

from typing import Any

import structlog


def logger(name: str) -> Any:
    """A lazy structlog logger tagged with the module name."""
    return structlog.get_logger(module=name)
