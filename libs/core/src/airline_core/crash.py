"""Seeded crash points for crash tests: ``AIRLINE_CRASH_AT=<name>[@<n>]`` kills the process with
SIGKILL the n-th time (default 1st) execution passes ``crash_point(<name>)``.

SIGKILL, not an exception: nothing gets flushed, closed or committed, exactly as with
``kill -9`` or an OOM kill. Unset in production, a crash point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from typing import Final

ENV: Final = "AIRLINE_CRASH_AT"
_hits: Counter[str] = Counter()


def _target() -> tuple[str, int] | None:
    spec = os.environ.get(ENV, "")
    if not spec:
        return None
    name, _, nth = spec.partition("@")
    return name, int(nth or 1)


def crash_point(name: str) -> None:
    """Die here, at once, if the environment names this point (and this is the chosen hit)."""
    target = _target()
    if target is None or target[0] != name:
        return
    _hits[name] += 1
    if _hits[name] == target[1]:
        os.kill(os.getpid(), signal.SIGKILL)
