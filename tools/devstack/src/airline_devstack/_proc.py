"""Long-lived child processes tracked by pid file, so a later CLI run can find and stop them.

`airline-stack up` exits while Kafka/Redis keep running and `airline-stack down` is another
process, so the pid is written to disk. Pids get reused: a pid counts as ours only while
`/proc/<pid>/cmdline` still contains a marker unique to our instance (e.g. its config path).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class PidFileProcess:
    """One background process: spawned detached, identified by pid file + cmdline marker."""

    def __init__(self, pid_file: Path, marker: str) -> None:
        self.pid_file = pid_file
        self.marker = marker
        self._popen: subprocess.Popen[bytes] | None = None

    def spawn(
        self,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        die_with_parent: bool = False,
    ) -> None:
        """Start argv in its own session (survives our exit and Ctrl-C), output to log_path.

        `die_with_parent` (for test fixtures): SIGTERM the child when we die, even by SIGKILL,
        so an aborted pytest run leaves no broker behind. `setpriv --pdeathsig` sets it up
        without a preexec_fn, which is unsafe in a process with threads (librdkafka's).
        """
        if self.marker not in " ".join(argv):
            raise ValueError(f"marker {self.marker!r} must appear in the command line")
        setpriv = shutil.which("setpriv")
        prefix = [setpriv, "--pdeathsig", "TERM", "--"] if die_with_parent and setpriv else []
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                [*prefix, *argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=None if env is None else dict(env),
                start_new_session=True,
            )
        self.pid_file.write_text(f"{self._popen.pid}\n")

    def pid(self) -> int | None:
        """The live pid, or None when the process is gone (or the pid now belongs to another)."""
        if self._popen is not None:
            # Our own child: trust poll(). (The JVM launcher re-execs itself, leaving
            # /proc/<pid>/cmdline briefly empty right after spawn.)
            return self._popen.pid if self._popen.poll() is None else None
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if self.marker in _cmdline(pid) else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL if still alive after `timeout` seconds; idempotent."""
        pid = self.pid()
        if pid is not None:
            self._signal_and_wait(pid, signal.SIGTERM, timeout)
            if self.pid() is not None:
                self._signal_and_wait(pid, signal.SIGKILL, 10.0)
        if self._popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout=1.0)  # reap our own child so it is not left a zombie
        self.pid_file.unlink(missing_ok=True)

    def _signal_and_wait(self, pid: int, sig: signal.Signals, timeout: float) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.1)
