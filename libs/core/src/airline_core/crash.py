"""Seeded crash points for crash tests: ``AIRLINE_CRASH_AT=<name>[@<n>]`` kills the process with
SIGKILL the n-th time (default 1st) execution passes ``crash_point(<name>)``.

SIGKILL, not an exception: nothing gets flushed, closed or committed, exactly as with
``kill -9`` or an OOM kill. The variable is read once, when this module is imported (a crash
test sets it in the environment of the process it starts), so an unarmed crash point costs one
comparison and production code never branches on whether a test is running.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Final

ENV: Final = "AIRLINE_CRASH_AT"


def _target(spec: str) -> tuple[str, int] | None:
    if not spec:
        return None
    name, _, nth = spec.partition("@")
    return name, int(nth or 1)


_TARGET: Final = _target(os.environ.get(ENV, ""))
_hits = 0


def crash_point(name: str, prepare: Callable[[], object] | None = None, passes: int = 1) -> None:
    """Die here, at once, if the environment names this point (and this is the chosen hit).

    ``prepare`` runs just before the kill, only then: what the test needs to be real at that
    moment (e.g. flushing an open transaction's records to the broker). ``passes`` counts this
    call as that many passes at once (a batch of records handled in one step): the kill comes
    when the chosen hit falls among them."""
    global _hits
    if _TARGET is None or _TARGET[0] != name:
        return
    _hits += passes
    if _hits - passes < _TARGET[1] <= _hits:
        if prepare is not None:
            prepare()
        os.kill(os.getpid(), signal.SIGKILL)
