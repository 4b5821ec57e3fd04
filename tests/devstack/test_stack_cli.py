"""`airline-stack up / status / down` round trip, on free ports in a private state dir so it
never touches a developer's running `.stack/`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from airline_devstack.kafka_broker import probe_cluster_id
from airline_testkit.net import free_port

AIRLINE_STACK = str(Path(sys.executable).parent / "airline-stack")


@pytest.mark.parametrize("command", [[], ["up"], ["down"], ["status"]])
def test_help_of_every_command(command: list[str]) -> None:
    result = subprocess.run(
        [AIRLINE_STACK, *command, "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "usage: airline-stack" in result.stdout


@pytest.fixture
def stack_env() -> Iterator[dict[str, str]]:
    state_dir = Path(tempfile.mkdtemp(prefix="airline-test-stack-"))
    state_dir.chmod(0o755)  # the postgres OS user must reach .../postgres when we are root
    env = {
        **os.environ,
        "AIRLINE_STACK_DIR": str(state_dir),
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "DATABASE_URL": f"postgresql://airline:airline@127.0.0.1:{free_port()}/airline_dw",
    }
    try:
        yield env
    finally:
        subprocess.run([AIRLINE_STACK, "down"], env=env, capture_output=True, check=False)
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
