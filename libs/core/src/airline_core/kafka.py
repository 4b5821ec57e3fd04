"""Kafka client factories: one place that turns settings into librdkafka configs.

The caller's extra config is copied, never mutated. Consumers never auto-create topics and read
only committed records; producers are idempotent (or transactional when given an id). A missing
topic is a clear start-up error naming the topic, because a typo must not create a new topic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer as _Consumer
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient

from airline_core.config import KafkaSettings
from airline_core.errors import MissingTopicError, TopicLayoutError
from airline_core.logging import get_logger
from airline_core.topics import PARTITIONER, Topic, physical_name

Consumer = _Consumer


class LibrdkafkaLog:
    """librdkafka's own log lines as structlog events, so that ``kubectl logs`` of a service
    stays one JSON object per line (librdkafka otherwise writes ``%4|…`` lines to stderr).

    confluent-kafka calls ``log(level, "%s [%s] %s", facility, client name, message)`` from the
    client's poll, with a standard ``logging`` level; structlog's level filter applies."""

    def __init__(self) -> None:
        self._log = get_logger("librdkafka")

    def log(self, level: int, fmt: str, *args: Any) -> None:
        if len(args) == 3:
            facility, client, message = args
            self._log.log(level, str(message), facility=facility, client=client)
        else:
            self._log.log(level, fmt % args if args else fmt)


def client_config(kafka: KafkaSettings, client_id: str) -> dict[str, Any]:
    """The connection part shared by producers, consumers and admin clients."""
    config: dict[str, Any] = {
        "bootstrap.servers": kafka.bootstrap_servers,
        "security.protocol": kafka.security_protocol,
        "client.id": client_id,
        "logger": LibrdkafkaLog(),
    }
    if kafka.sasl_mechanism:
        config["sasl.mechanism"] = kafka.sasl_mechanism
        config["sasl.username"] = kafka.sasl_username
        config["sasl.password"] = kafka.sasl_password.reveal()
    for key, value in (
        ("ssl.ca.location", kafka.ssl_ca_location),
        ("ssl.certificate.location", kafka.ssl_certificate_location),
        ("ssl.key.location", kafka.ssl_key_location),
    ):
        if value:
            config[key] = value
    return config


def make_producer(
    kafka: KafkaSettings,
    client_id: str,
    *,
    transactional_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Producer:
    """An idempotent producer (``acks=all``), transactional when ``transactional_id`` is given."""
    config = client_config(kafka, client_id) | {
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 20,
        "batch.num.messages": 10000,
        "compression.type": "lz4",
        "partitioner": PARTITIONER,
    }
    if transactional_id:
        config["transactional.id"] = transactional_id
    config.update(extra or {})
    return Producer(config)


def make_consumer(
    kafka: KafkaSettings,
    client_id: str,
    group_id: str,
    *,
    extra: Mapping[str, Any] | None = None,
) -> Consumer:
    """A manual-commit, ``read_committed`` consumer that never auto-creates topics."""
    config = client_config(kafka, client_id) | {
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "allow.auto.create.topics": False,
    }
    config.update(extra or {})
    return Consumer(config)


def position_of(message: Message) -> tuple[int, int]:
    """(partition, offset) of a consumed record (librdkafka sets both on every fetched record;
    the client's types allow ``None`` only for messages that were never consumed)."""
    partition, offset = message.partition(), message.offset()
    if partition is None or offset is None:
        raise ValueError("message has no partition or offset: not a consumed record")
    return partition, offset


def is_partition_eof(message: Message) -> bool:
    """Whether ``message`` is librdkafka's end-of-partition signal, not a record."""
    error = message.error()
    return error is not None and error.code() == KafkaError._PARTITION_EOF


def is_fatal(error: KafkaError | None) -> bool:
    """Whether ``error`` leaves the client instance unusable for good.

    librdkafka delivers a fatal error to a consumer as an error event with code ``_FATAL``
    (for example a static member fenced after its session expired during a broker restart),
    on which ``KafkaError.fatal()`` can be false: check both, or the client turns into a
    zombie that logs the same error forever."""
    return error is not None and (error.fatal() or error.code() == KafkaError._FATAL)


def make_admin(kafka: KafkaSettings, client_id: str = "airline-admin") -> AdminClient:
    """An admin client on the same connection settings."""
    return AdminClient(client_config(kafka, client_id))


def partition_counts(admin: AdminClient, names: Iterable[str], timeout: float = 10.0
                     ) -> dict[str, int | None]:
    """Partition count of each named topic, ``None`` for a topic that does not exist."""
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as e:
        raise MissingTopicError(f"cannot read topic metadata from the broker: {e}") from e
    counts: dict[str, int | None] = {}
    for name in names:
        topic = metadata.topics.get(name)
        counts[name] = None if topic is None or topic.error is not None else len(topic.partitions)
    return counts


def require_topics(
    kafka: KafkaSettings,
    topics: Iterable[Topic],
    *,
    co_partitioned: bool = False,
    timeout: float = 10.0,
) -> dict[Topic, int]:
    """Check the topics exist (and, if asked, share one partition count); return the counts.

    Raises :class:`MissingTopicError` naming the missing topics and the fix, or
    :class:`TopicLayoutError` when co-partitioned topics disagree.
    """
    wanted = {physical_name(t, kafka.topic_prefix): t for t in topics}
    counts = partition_counts(make_admin(kafka), wanted, timeout)
    missing = sorted(name for name, count in counts.items() if count is None)
    if missing:
        raise MissingTopicError(
            f"topic(s) {', '.join(missing)} do not exist on {kafka.bootstrap_servers} "
            "(auto-creation is off); create them with `airline-topics create`")
    result = {wanted[name]: int(count or 0) for name, count in counts.items()}
    if co_partitioned and len(set(result.values())) > 1:
        layout = ", ".join(f"{t}={n}" for t, n in result.items())
        raise TopicLayoutError(f"co-partitioned topics differ in partition count: {layout}")
    return result


def produce(
    producer: Producer,
    topic: str,
    value: bytes,
    key: bytes | None = None,
    *,
    on_delivery: Callable[[Any, Any], None] | None = None,
    headers: Sequence[tuple[str, bytes | None]] | None = None,
    partition: int | None = None,
) -> None:
    """Produce, waiting on delivery callbacks while librdkafka's local queue is full.

    ``partition`` pins the record (the engine writes state and outputs to its input's
    partition); by default the key decides."""
    extra: dict[str, Any] = {} if partition is None else {"partition": partition}
    wire_headers: list[tuple[str, str | bytes | None]] | None = (
        None if headers is None else list(headers))
    while True:
        try:
            producer.produce(topic, value=value, key=key, on_delivery=on_delivery,
                             headers=wire_headers, **extra)
            return
        except BufferError:
            producer.poll(0.1)
