"""With every credential set (a Kafka password, a database URL and a Redis URL with passwords),
no command prints one: not in ``--help``, not in a configuration error, not in the log of a
start-up that fails on an unreachable broker, database or Redis. (A run on a secured broker,
with its metrics and dead letters, is checked in tests/devstack/test_kafka_security.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
KAFKA_PASSWORD = "kafka-Pa55-leak-probe"
DATABASE_PASSWORD = "db-Pa55-leak-probe"
REDIS_PASSWORD = "redis-Pa55-leak-probe"
SECRETS = (KAFKA_PASSWORD, DATABASE_PASSWORD, REDIS_PASSWORD)
CREDENTIALS = {
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",  # nothing listens: start-up fails
    "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "probe", "KAFKA_SASL_PASSWORD": KAFKA_PASSWORD,
    "DATABASE_URL": f"postgresql://probe:{DATABASE_PASSWORD}@127.0.0.1:1/airline_dw",
    "REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:1/0",
    "PRODUCER_PROMOTIONS": "redis", "METRICS_PORT": "0",
}
#: Every command and the arguments of a run that must fail at start (nothing is reachable).
COMMANDS = {
    "airline-producer": ["--speed", "max", "--flights", "2", "--days", "1"],
    "airline-engine": [],
    "airline-lake-writer": [],
    "airline-etl": [],
    "airline-topics": ["describe"],
    "airline-dlq": ["list"],
    "airline-report": ["--png", "false"],
    "airline-extract": [],
}


def run(command: str, *args: str, tmp_path: Path, **env: str) -> tuple[int, str]:
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LOG_FORMAT": "json",
                   "LAKE_DIR": str(tmp_path / "lake"), **CREDENTIALS, **env}
    result = subprocess.run([str(BIN / command), *args], env=environment, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, check=False)
    return result.returncode, result.stdout + result.stderr


def assert_no_secret(output: str, what: str) -> None:
    for secret in SECRETS:
        assert secret not in output, f"{what} printed a password:\n{output[-3000:]}"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_prints_no_secret(command: str, tmp_path: Path) -> None:
    code, output = run(command, "--help", tmp_path=tmp_path)
    assert code == 0 and "usage" in output.lower(), output[-500:]
    assert_no_secret(output, f"{command} --help")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_configuration_error_prints_no_secret(command: str, tmp_path: Path) -> None:
    code, output = run(command, *COMMANDS[command], tmp_path=tmp_path, LOG_FORMAT="bogus")
    assert code == 2 and "LOG_FORMAT" in output, output[-500:]
    assert_no_secret(output, f"{command} with a configuration error")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_failed_start_prints_no_secret(command: str, tmp_path: Path) -> None:
    code, output = run(command, *COMMANDS[command], tmp_path=tmp_path)
    assert code != 0, output[-1000:]
    assert output.strip(), f"{command} failed without a word"
    assert_no_secret(output, f"{command} failing at start")
