"""``airline-etl`` as a CronJob sees it: --help, exit codes, the summary."""

from __future__ import annotations

from pathlib import Path

import pytest
from airline_etl.cli import main
from airline_testkit.events import make_world
from airline_testkit.lake import write_roll, write_world


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


class _Gateway:
    """A one-request-at-a-time HTTP server that records (method, path, body) of each push."""

    def __init__(self) -> None:
        import http.server

        received: list[tuple[str, str, bytes]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.command, self.path, body))
                self.send_response(200)
                self.end_headers()

            do_PUT = do_POST = _record

            def log_message(self, *args: object) -> None:
                pass

        self.received = received
        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)

    def serve(self, requests: int) -> None:
        import threading

        def loop() -> None:
            for _ in range(requests):
                self.server.handle_request()

        self.thread = threading.Thread(target=loop, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.thread.join(timeout=10)
        self.server.server_close()


def test_a_failed_run_pushes_its_metrics_but_keeps_the_last_success(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """POST (replace only what is pushed) without the last-success time: the Pushgateway keeps
    the previous success's, so the staleness alert is not fooled by a failed run."""
    gateway = _Gateway()
    gateway.serve(1)
    monkeypatch.setenv("PUSHGATEWAY_URL", f"127.0.0.1:{gateway.server.server_port}")
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody:secret@127.0.0.1:1/none")
    monkeypatch.setenv("LAKE_DIR", str(tmp_path))
    assert main([]) == 1
    gateway.close()
    [(method, path, body)] = gateway.received
    assert (method, path) == ("POST", "/metrics/job/airline-etl")
    assert b"airline_etl_exit_code 1.0" in body
    assert b"airline_etl_last_success_timestamp_seconds" not in body


def test_a_successful_push_replaces_the_group_with_the_last_success() -> None:
    from airline_etl import metrics

    gateway = _Gateway()
    gateway.serve(1)
    metrics.LAST_SUCCESS.set(1_700_000_000)
    metrics.EXIT_CODE.set(0)
    metrics.push(f"127.0.0.1:{gateway.server.server_port}", succeeded=True)
    gateway.close()
    [(method, path, body)] = gateway.received
    assert (method, path) == ("PUT", "/metrics/job/airline-etl")
    assert b"airline_etl_last_success_timestamp_seconds 1.7e+09" in body
    assert b"airline_etl_exit_code 0.0" in body


def test_the_namespace_is_a_grouping_key_of_the_push() -> None:
    """Each release's ETL has its own group: one namespace's run never replaces another's."""
    from airline_etl import metrics

    gateway = _Gateway()
    gateway.serve(2)
    address = f"127.0.0.1:{gateway.server.server_port}"
    metrics.push(address, succeeded=True, namespace="airline-staging")
    metrics.push(address, succeeded=False, namespace="airline-staging")
    gateway.close()
    assert [(m, p) for m, p, _ in gateway.received] == [
        ("PUT", "/metrics/job/airline-etl/namespace/airline-staging"),
        ("POST", "/metrics/job/airline-etl/namespace/airline-staging")]


@pytest.mark.postgres
def test_one_invocation_catches_up_over_capped_runs(
        monkeypatch: pytest.MonkeyPatch, etl_database_url: str, lake_dir: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A lake over ETL_MAX_RECORDS_PER_RUN loads in one invocation of several runs, each its
    own commit (a CronJob catches up a backlog in one job, memory bounded by the cap); with
    ETL_CATCH_UP=false one run loads and the rest waits for the next invocation."""
    import psycopg2

    monkeypatch.setenv("DATABASE_URL", etl_database_url)
    monkeypatch.setenv("LAKE_DIR", str(lake_dir))
    monkeypatch.setenv("LOG_FORMAT", "console")
    monkeypatch.setenv("ETL_MAX_RECORDS_PER_RUN", "10")
    world = make_world(flights=2, bookings_per_flight=5)
    manifests = write_world(lake_dir, world, roll_size=4)

    def loaded() -> tuple[int, int]:
        with psycopg2.connect(etl_database_url) as conn, conn.cursor() as cur:
            cur.execute("SELECT (SELECT count(*) FROM etl_runs), "
                        "(SELECT count(*) FROM etl_loaded_files)")
            row = cur.fetchone()
        conn.close()
        assert row is not None
        return int(row[0]), int(row[1])

    monkeypatch.setenv("ETL_CATCH_UP", "false")
    assert main([]) == 0
    runs, files = loaded()
    assert runs == 1 and 0 < files < manifests
    assert "more new lake entries left" in capsys.readouterr().out
    monkeypatch.setenv("ETL_CATCH_UP", "true")
    assert main([]) == 0
    runs, files = loaded()
    assert runs > 2 and files == manifests
    assert main(["--full"]) == 0  # a capped rebuild catches up too
    assert loaded()[1] == manifests
    out = capsys.readouterr().out
    assert out.count("airline-etl: loaded") > 2 and "(run " in out and ", full)" in out
    assert "entries left" not in out.split("airline-etl:")[-1]
