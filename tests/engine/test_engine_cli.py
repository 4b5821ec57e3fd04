"""Settings, ``--help``, start-up checks, readiness and graceful stop of ``airline-engine``."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest
from airline_core.config import env_names, from_values
from airline_core.errors import ConfigError
from airline_core.topics import REGISTRY, Topic, physical_name
from airline_engine.app import EngineService
from airline_engine.settings import Settings
from airline_testkit.kafka import create_topic
from airline_testkit.net import free_port
from engine_harness import ENGINE, finish, load_dataset, run_engine


def test_help_documents_every_knob_with_its_default() -> None:
    text = subprocess.run([ENGINE, "--help"], capture_output=True, text=True, check=True,
                          env={"COLUMNS": "200"}).stdout
    for name in env_names(Settings):
        if name != "KAFKA_SASL_PASSWORD":  # secrets have no flag
            assert name in text, name
    assert "ENGINE_TIERS; default '5,10,15,25'" in text


def test_settings_defaults_and_transactional_id() -> None:
    s = from_values(Settings, {}, {"HOSTNAME": "ignored"})
    assert s.policy == "revenue" and s.commit_interval_ms == 100 and s.metrics_port == 8002
    assert s.tier_list() == (5, 10, 15, 25)
    s = from_values(Settings, {"KAFKA_GROUP_INSTANCE_ID": "airline-engine-1"}, {})
    assert s.transactional_id == "airline-engine-airline-engine-1"


@pytest.mark.parametrize(("env", "value"), [
    ("ENGINE_TIERS", "10,5"), ("ENGINE_TIERS", "five"), ("ENGINE_MARGIN", "1.5"),
    ("ENGINE_POLICY", "random"), ("ENGINE_BOOKING_CURVE", "0:1,10:1.5"),
])
def test_bad_knobs_name_themselves(env: str, value: str) -> None:
    with pytest.raises(ConfigError, match=env):
        from_values(Settings, {env: value}, {})


def test_not_ready_until_restored() -> None:
    from airline_core.lifecycle import StopSignal

    app = EngineService(from_values(Settings, {}, {}), StopSignal())
    assert app.readiness() == (False, "restoring state")


@pytest.mark.kafka
def test_inputs_with_different_partition_counts_fail_at_start(kafka_bootstrap: str) -> None:
    prefix = f"englayout_{uuid.uuid4().hex[:10]}-"
    for spec in REGISTRY:
        create_topic(kafka_bootstrap, physical_name(spec.topic, prefix),
                     partitions=2 if spec.topic is Topic.SEAT_MAP else 3)
    run = run_engine(kafka_bootstrap, prefix, timeout=60)
    assert run.returncode == 1
    assert "co-partitioned topics differ" in run.stderr


@pytest.mark.kafka
def test_readyz_and_graceful_stop(kafka_bootstrap: str) -> None:
    prefix = f"engready_{uuid.uuid4().hex[:10]}-"
    load_dataset(kafka_bootstrap, prefix, 3)
    port = free_port()
    proc = run_engine(kafka_bootstrap, prefix, idle=0, background=True,
                      extra_env={"METRICS_PORT": str(port)})
    deadline = time.monotonic() + 60
    status = None
    while time.monotonic() < deadline and status != 200:
        try:
            status = urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).status
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    assert status == 200, "engine never became ready"
    deadline = time.monotonic() + 30  # lag comes from statistics every 5 s
    body = b""
    while time.monotonic() < deadline and b"engine_consumer_lag{" not in body:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
        time.sleep(0.2)
    for name in (b"engine_events_processed_total{", b"engine_consumer_lag{",
                 b"engine_transactions_total{", b"engine_flights_tracked",
                 b"engine_restore_seconds_total", b"engine_decision_latency_seconds_bucket"):
        assert name in body, name
    proc.send_signal(signal.SIGTERM)
    run = finish(proc, timeout=60)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.summary()["reason"] == "SIGTERM"
