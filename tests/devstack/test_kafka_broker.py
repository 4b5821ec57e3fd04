"""The session broker is real Apache Kafka with the semantics the platform relies on:
idempotent and transactional producers, read_committed isolation, no topic auto-creation."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from airline_devstack.kafka_broker import (
    ExternalKafka,
    KafkaBroker,
    new_cluster_id,
    probe_cluster_id,
)
from airline_testkit.kafka import create_topic, read_to_end
from airline_testkit.net import free_port
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

WAIT_S = 30.0


def read_partition(bootstrap: str, topic: str, isolation: str) -> list[bytes]:
    """Values of partition 0, from the start to its end (the testkit's read to the end)."""
    read = read_to_end(bootstrap, [topic], [0], isolation=isolation, timeout=WAIT_S)
    return [r.value or b"" for r in read[topic][0]]


def topic_exists(bootstrap: str, topic: str) -> bool:
    return topic in AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics


def test_new_cluster_id_is_a_kafka_uuid() -> None:
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", cid) for cid in ids)


@pytest.mark.kafka
def test_broker_answers_with_its_cluster_id(kafka_broker: KafkaBroker | ExternalKafka) -> None:
    assert probe_cluster_id(kafka_broker.bootstrap) == kafka_broker.cluster_id


@pytest.mark.kafka
def test_broker_runs_with_the_single_node_settings(
    kafka_broker: KafkaBroker | ExternalKafka,
) -> None:
    if isinstance(kafka_broker, ExternalKafka):
        pytest.skip("settings of an external broker are not ours")
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
    resource = ConfigResource(ResourceType.BROKER, "1")
    configs = admin.describe_configs([resource])[resource].result(timeout=WAIT_S)
    expected = {
        "auto.create.topics.enable": "false",
        "num.partitions": "3",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    assert {key: configs[key].value for key in expected} == expected


@pytest.mark.kafka
def test_idempotent_producer_writes_each_record_once(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("idem")
    create_topic(kafka_bootstrap, topic)
    errors: list[KafkaError] = []
    producer = Producer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "enable.idempotence": True,
            "acks": "all",
        }
    )
    for i in range(100):
        producer.produce(
            topic, f"v{i}".encode(), partition=0,
            on_delivery=lambda err, _msg: errors.append(err) if err else None,
        )  # fmt: skip
    assert producer.flush(WAIT_S) == 0
    assert errors == []
    values = read_partition(kafka_bootstrap, topic, "read_committed")
    assert values == [f"v{i}".encode() for i in range(100)]


@pytest.mark.kafka
def test_read_committed_sees_committed_but_not_aborted_transactions(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("txn")
    create_topic(kafka_bootstrap, topic)
    producer = Producer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "transactional.id": unique_name("txn-producer"),
        }
    )
    producer.init_transactions(WAIT_S)
    for value, commit in ((b"committed", True), (b"aborted", False), (b"after", True)):
        producer.begin_transaction()
        producer.produce(topic, value, partition=0)
        if commit:
            producer.commit_transaction(WAIT_S)
        else:
            assert producer.flush(WAIT_S) == 0  # the record is in the log, then aborted
            producer.abort_transaction(WAIT_S)

    committed = read_partition(kafka_bootstrap, topic, "read_committed")
    uncommitted = read_partition(kafka_bootstrap, topic, "read_uncommitted")
    assert committed == [b"committed", b"after"]
    assert uncommitted == [b"committed", b"aborted", b"after"]


@pytest.mark.kafka
def test_producing_to_a_missing_topic_fails_and_creates_nothing(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("missing")
    errors: list[KafkaError | None] = []
    producer = Producer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "topic.metadata.propagation.max.ms": 1000,
            "message.timeout.ms": 5000,
        }
    )
    producer.produce(topic, b"x", on_delivery=lambda err, _msg: errors.append(err))
    assert producer.flush(WAIT_S) == 0
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC)
    assert not topic_exists(kafka_bootstrap, topic)


@pytest.mark.kafka
@pytest.mark.parametrize("client_allows", [False, True])
def test_subscribing_to_a_missing_topic_creates_nothing(
    kafka_bootstrap: str, unique_name: Callable[[str], str], client_allows: bool
) -> None:
    """Even a client that asks for auto-creation gets none: the broker refuses it."""
    topic = unique_name("missing")
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": unique_name("group"),
            "allow.auto.create.topics": client_allows,
        }
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + WAIT_S
    try:
        while True:  # the client reports the missing topic once metadata says so
            assert time.monotonic() < deadline, "no unknown-topic error from the consumer"
            msg = consumer.poll(0.5)
            error = msg.error() if msg is not None else None
            if error is not None:
                assert error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
                break
    finally:
        consumer.close()
    assert not topic_exists(kafka_bootstrap, topic)


@pytest.mark.kafka
def test_next_generation_consumer_group_protocol_works(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    """`group.coordinator.rebalance.protocols` includes `consumer` (KIP-848)."""
    topic = unique_name("kip848")
    create_topic(kafka_bootstrap, topic, partitions=3)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for partition in range(3):
        producer.produce(topic, f"p{partition}".encode(), partition=partition)
    assert producer.flush(WAIT_S) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": unique_name("group"),
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    seen: set[bytes] = set()
    deadline = time.monotonic() + WAIT_S
    try:
        while len(seen) < 3:
            assert time.monotonic() < deadline, f"only {seen} consumed"
            msg = consumer.poll(0.5)
            if msg is not None:
                assert msg.error() is None, msg.error()
                seen.add(msg.value() or b"")
    finally:
        consumer.close()
    assert seen == {b"p0", b"p1", b"p2"}


@pytest.mark.kafka
@pytest.mark.slow
def test_restart_keeps_the_cluster_id_and_a_fresh_dir_gets_a_new_one(
    tmp_path_factory: pytest.TempPathFactory, kafka_broker: KafkaBroker | ExternalKafka
) -> None:
    """Other components tell broker incarnations apart by cluster id."""
    broker = KafkaBroker(tmp_path_factory.mktemp("restart"), free_port(), die_with_parent=True)
    try:
        broker.start()
        first = broker.cluster_id
        create_topic(broker.bootstrap, "survives-restart")
        broker.stop()
        assert not broker.is_running()
        broker.start()
        assert probe_cluster_id(broker.bootstrap) == first
        assert topic_exists(broker.bootstrap, "survives-restart")
    finally:
        broker.stop()
    assert first != kafka_broker.cluster_id
