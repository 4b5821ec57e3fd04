"""Kafka factories and ``airline-topics`` against the real broker."""

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from airline_core import config
from airline_core.config import KafkaSettings
from airline_core.errors import MissingTopicError, TopicLayoutError
from airline_core.kafka import make_admin, require_topics
from airline_core.topics import ENGINE_INPUTS, REGISTRY, Topic, physical_name
from airline_testkit.kafka import create_topic
from confluent_kafka.admin import ConfigResource, ResourceType

pytestmark = pytest.mark.kafka
VENV_BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"


def settings(bootstrap: str, prefix: str) -> KafkaSettings:
    return config.from_values(KafkaSettings, {"KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                                              "KAFKA_TOPIC_PREFIX": prefix}, environ={})


def test_missing_topic_is_a_clear_error(kafka_bootstrap: str,
                                        unique_name: Callable[[str], str]) -> None:
    kafka = settings(kafka_bootstrap, unique_name("missing") + "-")
    with pytest.raises(MissingTopicError, match=r"bookings.*airline-topics create"):
        require_topics(kafka, [Topic.BOOKINGS])


def test_co_partitioned_mismatch_is_refused(kafka_bootstrap: str,
                                            unique_name: Callable[[str], str]) -> None:
    prefix = unique_name("layout") + "-"
    kafka = settings(kafka_bootstrap, prefix)
    create_topic(kafka_bootstrap, physical_name(Topic.BOOKINGS, prefix), partitions=3)
    create_topic(kafka_bootstrap, physical_name(Topic.SEAT_MAP, prefix), partitions=2)
    with pytest.raises(TopicLayoutError, match="partition count"):
        require_topics(kafka, [Topic.BOOKINGS, Topic.SEAT_MAP], co_partitioned=True)


def test_topics_cli_creates_the_registry_idempotently(kafka_bootstrap: str,
                                                      unique_name: Callable[[str], str]) -> None:
    prefix = unique_name("cli") + "-"
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "KAFKA_TOPIC_PREFIX": prefix,
           "LOG_FORMAT": "json", "PATH": "/usr/bin:/bin"}
    for _ in range(2):
        done = subprocess.run([str(VENV_BIN / "airline-topics"), "create"], env=env,
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    counts = require_topics(settings(kafka_bootstrap, prefix), [s.topic for s in REGISTRY])
    assert set(counts.values()) == {3}
    assert require_topics(settings(kafka_bootstrap, prefix), ENGINE_INPUTS, co_partitioned=True)
    admin = make_admin(settings(kafka_bootstrap, prefix))
    resource = ConfigResource(ResourceType.TOPIC,
                              physical_name(Topic.ENGINE_STATE_CHANGELOG, prefix))
    described = admin.describe_configs([resource])[resource].result()
    assert described["cleanup.policy"].value == "compact"


def test_is_fatal_covers_the_fatal_event_and_fatal_errors() -> None:
    """librdkafka's fatal consumer event has code _FATAL with ``fatal()`` false: both count."""
    from airline_core.kafka import is_fatal
    from confluent_kafka import KafkaError

    assert is_fatal(KafkaError(KafkaError._FATAL))
    assert is_fatal(KafkaError(KafkaError._FENCED, fatal=True))
    assert not is_fatal(KafkaError(KafkaError._TRANSPORT))
    assert not is_fatal(KafkaError(KafkaError._PARTITION_EOF))
    assert not is_fatal(None)


LIBRDKAFKA_LOGS = """
import sys
from airline_core import config
from airline_core.config import KafkaSettings, LogSettings
from airline_core.kafka import make_producer
from airline_core.logging import configure_logging
configure_logging(LogSettings(format="json", level="DEBUG"), component="probe")
kafka = config.from_values(KafkaSettings, {"KAFKA_BOOTSTRAP_SERVERS": sys.argv[1]}, environ={})
producer = make_producer(kafka, "probe", extra={"debug": "broker", "log_level": 7})
for _ in range(10):
    producer.poll(0.1)
"""


def test_librdkafka_logs_are_json_lines() -> None:
    """librdkafka's own log lines (written by its threads, not by Python) arrive as structlog
    JSON events: a pod's ``kubectl logs`` has no ``%7|…`` lines between the JSON ones."""
    import json

    from airline_testkit.net import free_port
    result = subprocess.run([str(VENV_BIN / "python"), "-c", LIBRDKAFKA_LOGS,
                             f"127.0.0.1:{free_port()}"], capture_output=True, text=True,
                            timeout=60, check=True)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # every line is JSON, or this fails
    native = [e for e in events if e.get("module") == "librdkafka"]
    assert native, f"no librdkafka events among {len(events)} lines"
    assert {"facility", "client", "event", "level"} <= native[0].keys()
    assert any(e["facility"] == "BROKER" for e in native)
