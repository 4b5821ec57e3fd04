"""An optional throwaway Redis (Debian's `redis-server`), memory only.

Redis is a cache in this platform, never a source of truth, so persistence is off
(`--save '' --appendonly no`) and a machine without it just skips what needs it.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import time
from pathlib import Path

from airline_core.logging import get_logger

from airline_devstack._proc import PidFileProcess, port_open

log = get_logger(__name__)


class RedisNotInstalledError(RuntimeError):
    """`redis-server` is not on PATH (Debian: `apt-get install redis-server`)."""


def redis_server_bin() -> str | None:
    return shutil.which("redis-server")


def redis_ping(port: int) -> bool:
    with (
        contextlib.suppress(OSError),
        socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock,
    ):
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")
    return False


class RedisServer:
    """redis-server on 127.0.0.1:`port`, pid file and log in `data_dir`; `die_with_parent` as
    in `KafkaBroker` (tests)."""

    def __init__(self, port: int, data_dir: Path, die_with_parent: bool = False) -> None:
        self.port = port
        self.die_with_parent = die_with_parent
        self.data_dir = Path(data_dir).resolve()
        # set-proc-title off keeps our args in /proc/<pid>/cmdline, so the marker stays there.
        self._process = PidFileProcess(self.data_dir / "redis.pid", marker=str(self.data_dir))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def is_running(self) -> bool:
        return self._process.is_running()

    def start(self, timeout: float = 15.0) -> None:
        """Start and wait for PONG; raises RedisNotInstalledError when there is no server."""
        if self.is_running():
            return
        binary = redis_server_bin()
        if binary is None:
            raise RedisNotInstalledError(
                "redis-server is not installed (apt-get install redis-server)"
            )
        if port_open("127.0.0.1", self.port):
            raise RuntimeError(f"port {self.port} is already in use")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.data_dir),
            "--set-proc-title",
            "no",
        ]
        self._process.spawn(argv, self.data_dir / "redis.log", die_with_parent=self.die_with_parent)
        deadline = time.monotonic() + timeout
        while not redis_ping(self.port):
            if not self.is_running() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start; see {self.data_dir}/redis.log")
            time.sleep(0.1)
        log.info("redis up", url=self.url)

    def stop(self, timeout: float = 10.0) -> None:
        self._process.stop(timeout)
