"""``airline-etl`` as a CronJob sees it: --help, exit codes, the summary."""

from __future__ import annotations

from pathlib import Path

import pytest
from airline_etl.cli import main
from etl_lake_fixtures import make_world, write_roll, write_world


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("DATABASE_URL", "LAKE_DIR", "PUSHGATEWAY_URL", "ETL_MAX_REJECT_SHARE",
                 "ETL_FULL", "Exit codes"):
        assert name in out


def test_configuration_error_exits_2(monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ETL_MAX_REJECT_SHARE", "2")
    assert main([]) == 2
    assert "ETL_MAX_REJECT_SHARE" in capsys.readouterr().err


def test_unreachable_database_exits_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody:secret@127.0.0.1:1/none")
    monkeypatch.setenv("LAKE_DIR", str(tmp_path))
    assert main([]) == 1


@pytest.mark.postgres
def test_exit_codes_and_summary(monkeypatch: pytest.MonkeyPatch, etl_database_url: str,
                                lake_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", etl_database_url)
    monkeypatch.setenv("LAKE_DIR", str(lake_dir))
    monkeypatch.setenv("LOG_FORMAT", "console")  # the printed table is for terminals
    write_world(lake_dir, make_world(flights=1))
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "airline-etl: loaded" in out and "fact_booking" in out and "seconds" in out
    assert main([]) == 0
    assert "nothing new" in capsys.readouterr().out
    write_roll(lake_dir, "bookings", 3, 0, [b"junk"] * 3)
    assert main([]) == 3
    assert "airline-etl: rejected" in capsys.readouterr().out
    assert main(["--max-reject-share", "1"]) == 0
    assert main(["--full", "--max-reject-share", "1"]) == 0
    assert "full" in capsys.readouterr().out


def test_metrics_are_pushed_when_a_pushgateway_is_set(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    import http.server
    import threading

    received: list[tuple[str, bytes]] = []

    class Gateway(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    monkeypatch.setenv("PUSHGATEWAY_URL", f"127.0.0.1:{server.server_port}")
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody:secret@127.0.0.1:1/none")
    monkeypatch.setenv("LAKE_DIR", str(tmp_path))
    assert main([]) == 1
    thread.join(timeout=10)
    server.server_close()
    assert received and received[0][0] == "/metrics/job/airline-etl"
    assert b"airline_etl_exit_code 1.0" in received[0][1]
