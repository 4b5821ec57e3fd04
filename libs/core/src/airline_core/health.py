"""The HTTP endpoints of every long-running service: ``/metrics``, ``/healthz``, ``/readyz``.

Liveness and readiness reflect real state: ``/healthz`` fails when the main loop has not beaten
for ``stall_seconds`` (a wedged process gets restarted), and ``/readyz`` asks the component
(restoring state or broker unreachable → 503), never answering "serving" by default.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

#: Returns (ready, reason).
ReadinessCheck = Callable[[], tuple[bool, str]]


class HealthServer:
    """Serves metrics and probes on ``port`` (0 picks a free port) from a daemon thread."""

    def __init__(self, port: int, readiness: ReadinessCheck, stall_seconds: float = 120.0,
                 host: str = "0.0.0.0") -> None:
        self._readiness = readiness
        self._stall_seconds = stall_seconds
        self._last_beat = time.monotonic()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="health",
                                        daemon=True)

    @property
    def port(self) -> int:
        """The bound port (useful when started with 0)."""
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        """Start serving; returns self for chaining."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()

    def beat(self) -> None:
        """Called by the main loop on every iteration: proof of life for ``/healthz``."""
        self._last_beat = time.monotonic()

    def liveness(self) -> tuple[bool, str]:
        """Alive unless the main loop stalled."""
        stalled = time.monotonic() - self._last_beat
        if stalled > self._stall_seconds:
            return False, f"main loop stalled for {stalled:.0f}s"
        return True, "ok"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
                elif self.path == "/healthz":
                    self._send_check(server.liveness())
                elif self.path == "/readyz":
                    self._send_check(server._readiness())
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send_check(self, result: tuple[bool, str]) -> None:
                ok, reason = result
                self._send(200 if ok else 503, (reason + "\n").encode(), "text/plain")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Silence per-request logging (probes would flood the logs)."""

        return Handler
