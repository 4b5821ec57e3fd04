"""Process lifecycle shared by the services: graceful stop on SIGTERM/SIGINT, and the
``--stop-when-idle`` rule for bounded runs."""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType


class StopSignal:
    """Set by SIGTERM or SIGINT so the main loop can flush, commit and exit cleanly.

    Kubernetes sends SIGTERM and waits ``terminationGracePeriodSeconds``; a second signal
    means "now", so it restores the default handler after the first one.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def install(self) -> StopSignal:
        """Install the handlers (main thread only); returns self."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.request(signal.Signals(signum).name)
        signal.signal(signum, signal.SIG_DFL)

    def request(self, reason: str) -> None:
        """Ask the loop to stop (also used by ``--stop-when-idle`` and tests)."""
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` unless a stop arrives first; True when stopping."""
        return self._event.wait(seconds)


class IdleTracker:
    """Decides when a bounded run may stop: caught up, nothing new for ``idle_seconds``.

    The caller reports activity (records processed) and whether it is caught up (no lag on any
    assigned partition and nothing uncommitted); ``idle_seconds`` of 0 disables stopping.
    """

    def __init__(self, idle_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self._last_activity = time.monotonic()

    def activity(self) -> None:
        """Something was processed: the idle clock restarts."""
        self._last_activity = time.monotonic()

    def should_stop(self, caught_up: bool) -> bool:
        """True once caught up and idle long enough (never when disabled)."""
        if self.idle_seconds <= 0:
            return False
        if not caught_up:
            self._last_activity = time.monotonic()
            return False
        return time.monotonic() - self._last_activity >= self.idle_seconds
