"""The console script: --help documents every knob; bad values stop with one line; SIGTERM
commits what was simulated and exits 0 with nothing unsent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from airline_core.config import ConfigError, env_names, from_values
from airline_producer.cli import main
from airline_producer.settings import Settings
from producer_support import RUN, create_topics, expected_per_key, per_key, read_all


def test_help_documents_every_knob(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for name in env_names(Settings):
        if name != "KAFKA_SASL_PASSWORD":  # a secret: environment only, by design
            assert name in text, f"{name} missing from --help"
    for flag in ("--seed", "--flights", "--days", "--speed", "--promotions",
                 "--promotions-file", "--promotion-delay-minutes", "--start-date",
                 "--snapshot-interval-minutes", "--transactional-id", "--redis-url"):
        assert flag in text


def test_settings_names_from_the_brief() -> None:
    names = set(env_names(Settings))
    assert {"PRODUCER_SEED", "PRODUCER_FLIGHTS", "PRODUCER_DAYS", "PRODUCER_SPEED",
            "PRODUCER_PROMOTIONS", "PRODUCER_PROMOTIONS_FILE", "PRODUCER_PROMOTION_DELAY_MINUTES",
            "REDIS_URL", "PRODUCER_TRANSACTIONAL_ID", "METRICS_PORT"} <= names
    settings = from_values(Settings, {}, environ={})
    assert isinstance(settings, Settings) and settings.seed == 42
    assert settings.metrics_port == 8001 and settings.speed == "max"
    assert settings.effective_transactional_id == f"airline-producer-42-{settings.start_date}"


@pytest.mark.parametrize(("env", "value"), [("PRODUCER_SPEED", "fast"),
                                            ("PRODUCER_PROMOTIONS", "sometimes"),
                                            ("PRODUCER_START_DATE", "28/11/2025"),
                                            ("PRODUCER_FLIGHT_DELAY_RATE", "1.5")])
def test_bad_values_are_config_errors(env: str, value: str) -> None:
    with pytest.raises(ConfigError, match=env):
        from_values(Settings, {env: value}, environ={})


@pytest.mark.kafka
def test_sigterm_commits_and_exits_zero(kafka_bootstrap: str,
                                        unique_name: Callable[[str], str]) -> None:
    """Paced run stopped by SIGTERM: exit 0, and what is on the topics is a clean prefix of
    the uninterrupted run for every flight (nothing half-written, nothing out of order)."""
    kafka = create_topics(kafka_bootstrap, unique_name("prodterm") + "-")
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "KAFKA_TOPIC_PREFIX": kafka.topic_prefix, "METRICS_PORT": "0", "LOG_FORMAT": "json",
           "PRODUCER_TRANSACTIONAL_ID": unique_name("prodterm-tx"), "PRODUCER_SPEED": "100000",
           **{f"PRODUCER_{k.upper()}": str(v) for k, v in RUN.items()}}
    process = subprocess.Popen([sys.executable, "-m", "airline_producer.cli"], env=env,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not read_all(kafka):  # wait until a first transaction is committed
            assert process.poll() is None, "producer exited before it was stopped"
            assert time.monotonic() < deadline, "nothing committed within 60 s"
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "SIGTERM" in err
    got = per_key(read_all(kafka))
    want = expected_per_key()
    assert got, "nothing was committed before the stop"
    assert sum(map(len, got.values())) < sum(map(len, want.values())), "stopped too late"
    for key, values in got.items():
        assert values == want[key][:len(values)], f"{key} is not a prefix of the full run"
