"""`airline-stack up / status / down` round trip, and that a failed or interrupted start stops
what it started; on free ports in a private state dir so it never touches a developer's running
`.stack/`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from airline_devstack._proc import port_open
from airline_devstack.kafka_broker import probe_cluster_id
from airline_devstack.postgres import private_cluster_dir
from airline_testkit.net import free_port

AIRLINE_STACK = str(Path(sys.executable).parent / "airline-stack")
AIRLINE_DEMO = str(Path(sys.executable).parent / "airline-demo")


@pytest.mark.parametrize("command", [[], ["up"], ["down"], ["status"]])
def test_help_of_every_command(command: list[str]) -> None:
    result = subprocess.run(
        [AIRLINE_STACK, *command, "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "usage: airline-stack" in result.stdout


@pytest.fixture
def stack_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    # mkdtemp's 0700, like a clone in root's home: the stack must work from there.
    state_dir = Path(tempfile.mkdtemp(prefix="airline-test-stack-"))
    monkeypatch.setenv("AIRLINE_STACK_DIR", str(state_dir))  # so private_cluster_dir() agrees
    monkeypatch.delenv("AIRLINE_STACK_POSTGRES_DIR", raising=False)
    cluster_parent = private_cluster_dir().parent
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "DATABASE_URL": f"postgresql://airline:airline@127.0.0.1:{free_port()}/airline_dw",
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "LOG_FORMAT": "json",
    }
    try:
        yield env
    finally:
        subprocess.run([AIRLINE_STACK, "down"], env=env, capture_output=True, check=False)
        if cluster_parent.name.startswith("airline-stack-"):
            shutil.rmtree(cluster_parent, ignore_errors=True)
        shutil.rmtree(state_dir, ignore_errors=True)


def stack(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AIRLINE_STACK, *args], env=env, capture_output=True, text=True, check=False, timeout=180
    )


def kafka_state(env: dict[str, str]) -> dict[str, str]:
    state = json.loads((Path(env["AIRLINE_STACK_DIR"]) / "state.json").read_text())
    kafka: dict[str, str] = state["kafka"]
    return kafka


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.postgres
def test_up_is_idempotent_and_up_after_down_is_a_fresh_broker(stack_env: dict[str, str]) -> None:
    first = stack(stack_env, "up", "--no-redis")
    assert first.returncode == 0, first.stderr
    kafka = kafka_state(stack_env)
    assert kafka["kind"] == "kafka"
    assert kafka["bootstrap"] == stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    assert probe_cluster_id(kafka["bootstrap"]) == kafka["cluster_id"]
    assert f"export DATABASE_URL={stack_env['DATABASE_URL']}" in first.stdout
    assert stack(stack_env, "status").returncode == 0

    again = stack(stack_env, "up", "--no-redis")
    assert again.returncode == 0, again.stderr
    assert kafka_state(stack_env)["cluster_id"] == kafka["cluster_id"]

    down = stack(stack_env, "down")
    assert down.returncode == 0, down.stderr
    assert probe_cluster_id(kafka["bootstrap"], timeout=1.0) is None
    assert stack(stack_env, "status").returncode == 1

    fresh = stack(stack_env, "up", "--no-redis")
    assert fresh.returncode == 0, fresh.stderr
    assert kafka_state(stack_env)["cluster_id"] != kafka["cluster_id"]
    assert stack(stack_env, "down").returncode == 0


def _port(url: str) -> int:
    port = urlsplit(url if "://" in url else f"//{url}").port
    assert port is not None
    return port


def _processes_mentioning(*texts: str) -> list[str]:
    """Live processes whose command line holds any of `texts` (a server's data or config dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or (entry / "stat").read_text().split()[2] == "Z":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if any(text in cmdline for text in texts):
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def _assert_nothing_left(env: dict[str, str]) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "REDIS_URL"):
        assert not port_open("127.0.0.1", _port(env[name])), f"{name}'s port is still in use"
    assert _processes_mentioning(env["AIRLINE_STACK_DIR"], str(private_cluster_dir())) == []
    assert not (Path(env["AIRLINE_STACK_DIR"]) / "state.json").exists()


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.parametrize("command", ["airline-stack up", "airline-demo"])
def test_a_failed_postgres_start_stops_the_broker_started_before_it(
    stack_env: dict[str, str], command: str, tmp_path: Path
) -> None:
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("")
    env = {**stack_env, "AIRLINE_STACK_POSTGRES_DIR": str(not_a_dir / "postgres")}
    argv = (
        [AIRLINE_STACK, "up", "--no-redis"]
        if command == "airline-stack up"
        else [AIRLINE_DEMO, "--lake-dir", str(tmp_path / "lake")]
    )
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert '"event": "kafka broker up"' in output
    assert str(not_a_dir) in output  # the error names the bad path
    assert '"what": "kafka", "event": "stopped"' in output
    _assert_nothing_left(env)


def _wait_for_line(log: Path, *parts: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
        if any(all(part in line for part in parts) for line in lines):
            return
        assert process.poll() is None, f"demo exited early:\n{log.read_text()}"
        time.sleep(0.1)
    raise AssertionError(f"no line with {parts} in time:\n{log.read_text()}")


def _pipeline_pids(log: Path) -> list[int]:
    pids = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"event": "started"' in line:
            pids.append(int(json.loads(line)["pid"]))
    return pids


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.parametrize(
    "moment",
    [
        pytest.param(('"event": "kafka broker up"',), id="while-postgres-starts"),
        pytest.param(('"event": "started"', '/producer"'), id="while-the-pipeline-runs"),
    ],
)
def test_sigterm_to_the_demo_stops_everything_it_started(
    stack_env: dict[str, str], moment: tuple[str, ...], tmp_path: Path
) -> None:
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [AIRLINE_DEMO, "--lake-dir", str(tmp_path / "lake"), "--flights", "4", "--days", "1"],
            env=stack_env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        _wait_for_line(log, *moment, process=demo)
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=120) == 128 + signal.SIGTERM, log.read_text()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert [pid for pid in _pipeline_pids(log) if _alive(pid)] == []
    _assert_nothing_left(stack_env)
