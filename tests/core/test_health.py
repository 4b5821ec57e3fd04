"""/metrics, /healthz and /readyz answer from real state."""

import urllib.error
import urllib.request

from airline_core.health import HealthServer


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_probes_follow_state() -> None:
    state = {"ready": False}
    server = HealthServer(0, lambda: (state["ready"], "ok" if state["ready"] else "restoring"),
                          stall_seconds=3600, host="127.0.0.1").start()
    try:
        assert get(server.port, "/readyz") == (503, "restoring\n")
        state["ready"] = True
        assert get(server.port, "/readyz") == (200, "ok\n")
        assert get(server.port, "/healthz")[0] == 200
        status, body = get(server.port, "/metrics")
        assert status == 200 and "python_info" in body
        assert get(server.port, "/nope")[0] == 404
    finally:
        server.stop()


def test_liveness_fails_when_main_loop_stalls() -> None:
    server = HealthServer(0, lambda: (True, "ok"), stall_seconds=0.0, host="127.0.0.1").start()
    try:
        status, body = get(server.port, "/healthz")
        assert status == 503 and "stalled" in body
        server._stall_seconds = 3600
        server.beat()
        assert get(server.port, "/healthz")[0] == 200
    finally:
        server.stop()
