"""Kafka with SASL/SCRAM over TLS, on a real broker (airline_devstack.kafka_security): the
pipeline runs end to end with one identity per component; each identity is refused what
``airline_core.acls`` does not grant it; a wrong password, a missing CA or a plaintext client
is refused at start with one line naming the setting to fix, never printing the password."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airline_core import acls
from airline_devstack import kafka_security
from airline_devstack._proc import free_port
from airline_devstack.kafka_broker import KafkaBroker, java_bin
from airline_devstack.kafka_security import ADMIN, BrokerSecurity
from airline_devstack.pipeline import PipelineSpec, run_bounded
from airline_devstack.reconcile import reconcile
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    java = java_bin()
    if java is None:
        pytest.skip("no java: the secured broker needs a JDK (keytool and Kafka)")
    root = tmp_path_factory.mktemp("secure-kafka")
    security = kafka_security.create(root / "tls", str(Path(java).resolve().parent / "keytool"))
    broker = KafkaBroker(root / "kafka", free_port(), die_with_parent=True, security=security)
    broker.start()
    try:
        admin = AdminClient(broker.admin_config())
        (created,) = admin.create_topics([NewTopic("probe_1", 1, 1)]).values()
        created.result(30)
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)


def _security(broker: KafkaBroker) -> BrokerSecurity:
    assert broker.security is not None
    return broker.security


def test_the_pipeline_runs_end_to_end_with_one_identity_per_component(
        secured: KafkaBroker, isolated_database_url: str, tmp_path: Path) -> None:
    spec = PipelineSpec(bootstrap=secured.bootstrap, database_url=isolated_database_url,
                        lake_dir=tmp_path / "lake", log_dir=tmp_path / "logs", seed=5, flights=6,
                        days=1, kafka_security=_security(secured))
    outcome = run_bounded(spec)
    assert outcome.ok, (outcome.exit_codes, _tails(tmp_path / "logs"))
    counts = reconcile(spec.bootstrap, "", spec.lake_dir, secured.cluster_id,
                       isolated_database_url, kafka_config=spec.kafka_config())
    assert all(c.kafka_records > 0 for c in counts), counts
    assert all(c.agrees for c in counts), counts
    for name, user in (("engine", acls.ENGINE), ("producer", acls.PRODUCER),
                       ("lake-writer", acls.LAKE_WRITER)):
        assert spec.env(name)["KAFKA_SASL_USERNAME"] == user
    # No password in any component's log, nor in the dead letters the run wrote.
    passwords = list(_security(secured).passwords.values())
    for log in (tmp_path / "logs").glob("*.log"):
        text = log.read_text(errors="replace")
        assert not [p for p in passwords if p in text], f"{log.name} holds a password"
    lake = "\n".join(f.read_text(errors="replace")
                     for f in (spec.lake_dir / "raw" / "dead_letter").rglob("*.jsonl"))
    assert lake and not [p for p in passwords if p in lake]


def _tails(logs: Path) -> dict[str, str]:
    return {p.name: "\n".join(p.read_text(errors="replace").splitlines()[-5:])
            for p in logs.glob("*.log")}


def _client(broker: KafkaBroker, user: str) -> dict[str, Any]:
    return {**_security(broker).client_config(broker.bootstrap, user), "log_level": 0,
            "socket.timeout.ms": 10000}


def _produce_error(broker: KafkaBroker, user: str, topic: str) -> int | None:
    """The delivery error code of one record ``user`` writes to ``topic`` (None: written)."""
    errors: list[KafkaError | None] = []
    producer = Producer({**_client(broker, user), "enable.idempotence": False,
                         "message.timeout.ms": 15000})
    producer.produce(topic, b"probe", on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(30)
    assert errors, "no delivery report"
    return None if errors[0] is None else errors[0].code()


def _consume_error(broker: KafkaBroker, user: str, topic: str, group: str) -> int | None:
    """The first error code ``user`` gets reading ``topic`` in ``group`` (None: none)."""
    consumer = Consumer({**_client(broker, user), "group.id": group,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([topic])
        for _ in range(20):
            message = consumer.poll(0.5)
            error = None if message is None else message.error()
            if error is not None and error.code() != KafkaError._PARTITION_EOF:
                return int(error.code())
        return None
    finally:
        consumer.close()


DENIED_WRITES = [
    (acls.PRODUCER, "inventory_metrics"), (acls.PRODUCER, "engine_state_changelog"),
    (acls.ENGINE, "bookings"), (acls.ENGINE, "flight_lifecycle"),
    (acls.LAKE_WRITER, "bookings"), (acls.LAKE_WRITER, "promo_decisions"),
]
DENIED_READS = [
    (acls.PRODUCER, "inventory_metrics", acls.PRODUCER),
    (acls.PRODUCER, "engine_state_changelog", acls.PRODUCER),
    (acls.LAKE_WRITER, "engine_state_changelog", acls.LAKE_WRITER),
    (acls.ENGINE, "probe_1", acls.ENGINE),
]


@pytest.fixture(scope="module")
def topics_created(secured: KafkaBroker) -> None:
    """The registry's topics exist (the pipeline test may not have run first)."""
    result = subprocess.run([str(BIN / "airline-topics"), "create", "--log-format", "json"],
                            env=_env(secured, ADMIN), capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.usefixtures("topics_created")
@pytest.mark.parametrize(("user", "topic"), DENIED_WRITES)
def test_a_component_cannot_write_a_topic_it_was_not_granted(
        secured: KafkaBroker, user: str, topic: str) -> None:
    assert _produce_error(secured, user, topic) == KafkaError.TOPIC_AUTHORIZATION_FAILED


@pytest.mark.usefixtures("topics_created")
@pytest.mark.parametrize(("user", "topic", "group"), DENIED_READS)
def test_a_component_cannot_read_a_topic_it_was_not_granted(
        secured: KafkaBroker, user: str, topic: str, group: str) -> None:
    assert _consume_error(secured, user, topic, f"{group}-probe") == (
        KafkaError.TOPIC_AUTHORIZATION_FAILED)


@pytest.mark.usefixtures("topics_created")
def test_grants_allow_what_the_component_needs_and_groups_stay_in_their_prefix(
        secured: KafkaBroker) -> None:
    assert _produce_error(secured, acls.ENGINE, "inventory_metrics") is None
    assert _consume_error(secured, acls.LAKE_WRITER, "bookings", "airline-lake-writer-x") is None
    assert _consume_error(secured, acls.LAKE_WRITER, "bookings", "someone-else") == (
        KafkaError.GROUP_AUTHORIZATION_FAILED)
    admin = AdminClient(_client(secured, acls.ENGINE))
    (future,) = admin.create_topics([NewTopic("engine_made", 1, 1)]).values()
    with pytest.raises(KafkaException, match="AUTHORIZATION_FAILED"):
        future.result(30)


def _env(broker: KafkaBroker, user: str, **changes: str) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
           "LOG_FORMAT": "json", **_security(broker).environment(user)}
    env.update(changes)
    return env


REFUSALS = {
    "wrong password": ({"KAFKA_SASL_PASSWORD": "not-the-password"}, "KAFKA_SASL_PASSWORD"),
    "unknown user": ({"KAFKA_SASL_USERNAME": "intruder"}, "KAFKA_SASL_USERNAME"),
    "no TLS": ({"KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", "KAFKA_SASL_MECHANISM": ""},
               "KAFKA_SECURITY_PROTOCOL"),
    "untrusted certificate": ({"KAFKA_SSL_CA_LOCATION": ""}, "KAFKA_SSL_CA_LOCATION"),
    "wrong mechanism": ({"KAFKA_SASL_MECHANISM": "PLAIN"}, "KAFKA_SASL_MECHANISM"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
@pytest.mark.parametrize("command", [["airline-topics", "describe"],
                                     ["airline-lake-writer", "--metrics-port", "0"]])
def test_a_refused_connection_is_one_line_naming_the_setting(
        secured: KafkaBroker, case: str, command: list[str], tmp_path: Path) -> None:
    changes, setting = REFUSALS[case]
    env = _env(secured, acls.LAKE_WRITER, LAKE_DIR=str(tmp_path / "lake"), **changes)
    result = subprocess.run([str(BIN / command[0]), *command[1:]], env=env, capture_output=True,
                            text=True, timeout=120, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-2000:]
    errors = [line for line in output.splitlines() if '"level": "error"' in line]
    assert errors and setting in errors[-1], errors
    assert _security(secured).passwords[acls.LAKE_WRITER] not in output


@pytest.mark.usefixtures("topics_created")
@pytest.mark.parametrize(("command", "user"), [
    ("airline-lake-writer", acls.LAKE_WRITER),  # its group is denied
    ("airline-engine", acls.ENGINE),  # its transactional id (<group>-<instance>) is denied
])
def test_a_denied_group_or_transactional_id_stops_the_service_naming_the_setting(
        secured: KafkaBroker, command: str, user: str, tmp_path: Path) -> None:
    env = _env(secured, user, LAKE_DIR=str(tmp_path / "lake"), KAFKA_GROUP_ID="not-granted",
               METRICS_PORT="0")
    result = subprocess.run([str(BIN / command)], env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-2000:]
    (stopped,) = [line for line in output.splitlines() if '"stopped on error"' in line]
    assert "KafkaAccessDeniedError" in stopped and "KAFKA_GROUP_ID" in stopped


@pytest.mark.usefixtures("topics_created")
def test_a_running_service_shows_no_password_in_its_metrics_or_health(
        secured: KafkaBroker, tmp_path: Path) -> None:
    port = free_port()
    env = _env(secured, acls.LAKE_WRITER, LAKE_DIR=str(tmp_path / "lake"), METRICS_PORT=str(port))
    process = subprocess.Popen([str(BIN / "airline-lake-writer"), "--new-source"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        pages: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(pages) < 3:
            for path in ("/metrics", "/healthz", "/readyz"):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                        pages[path] = r.read().decode()
                except OSError:
                    time.sleep(0.3)
        assert set(pages) == {"/metrics", "/healthz", "/readyz"}, pages.keys()
        assert "lake_" in pages["/metrics"]
        for text in pages.values():
            assert _security(secured).passwords[acls.LAKE_WRITER] not in text
    finally:
        process.terminate()
        output = process.communicate(timeout=60)[0].decode(errors="replace")
    assert _security(secured).passwords[acls.LAKE_WRITER] not in output
