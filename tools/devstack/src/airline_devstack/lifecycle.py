"""Stopping what a command started, however it ends: an error at any step, Ctrl-C, SIGTERM.

A start sequence pushes each server's stop on one `contextlib.ExitStack` before starting it,
so unwinding the stack (a later step raised, or a signal did) stops exactly what this run
started, newest first; a command that should leave the servers running pops them off once
everything is up.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from types import FrameType
from typing import Protocol

from airline_core.logging import get_logger

log = get_logger(__name__)


class Server(Protocol):
    """Anything `stop_on_unwind` can stop: both calls are safe when nothing runs."""

    def is_running(self) -> bool: ...

    def stop(self) -> None: ...


def stop_on_unwind(started: ExitStack, what: str, server: Server) -> None:
    """Have `started` stop `server` when it unwinds. Call it before `server.start()`, so an
    interrupt in the middle of the start still stops what came up."""

    def stop() -> None:
        if server.is_running():
            server.stop()
            log.info("stopped", what=what)

    started.callback(stop)


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def signals_unwind() -> Iterator[None]:
    """Within: SIGTERM and SIGHUP raise SystemExit(128 + signal number), as Ctrl-C raises
    KeyboardInterrupt, so clean-up runs for them too; by default they would end the process
    on the spot and leave its servers running."""
    previous = {sig: signal.signal(sig, _raise_exit) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
