"""Kafka client factories: one place that turns settings into librdkafka configs.

The caller's extra config is copied, never mutated. Consumers never auto-create topics and read
only committed records; producers are idempotent (or transactional when given an id). A missing
topic is a clear start-up error naming the topic, because a typo must not create a new topic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer as _Consumer
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient

from airline_core.config import KafkaSettings
from airline_core.errors import (
    ConfigError,
    KafkaAccessDeniedError,
    MissingTopicError,
    TopicLayoutError,
)
from airline_core.logging import get_logger
from airline_core.topics import PARTITIONER, Topic, physical_name

Consumer = _Consumer


class LibrdkafkaLog:
    """librdkafka's own log lines as structlog events, so that ``kubectl logs`` of a service
    stays one JSON object per line (librdkafka otherwise writes ``%4|…`` lines to stderr).

    confluent-kafka calls ``log(level, "%s [%s] %s", facility, client name, message)`` from the
    client's poll, with a standard ``logging`` level; structlog's level filter applies."""

    def __init__(self, heard: list[str] | None = None) -> None:
        self._log = get_logger("librdkafka")
        self._heard = heard

    def log(self, level: int, fmt: str, *args: Any) -> None:
        message = str(args[2]) if len(args) == 3 else (fmt % args if args else fmt)
        if self._heard is not None:
            self._heard.append(message)
        if len(args) == 3:
            self._log.log(level, message, facility=args[0], client=args[1])
        else:
            self._log.log(level, message)


class ConnectionDiagnosis:
    """What librdkafka said while a client connected (its error callback and log lines), to
    turn a bare "transport failure" into the setting to fix: refused credentials, an untrusted
    certificate, a listener that speaks another protocol. Never quotes a password (librdkafka
    does not print it)."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka
        self.errors: list[KafkaError] = []
        self.lines: list[str] = []

    def config(self) -> dict[str, Any]:
        """The client settings that feed this diagnosis."""
        return {"error_cb": self.errors.append, "logger": LibrdkafkaLog(self.lines)}

    def explain(self) -> str | None:
        """The cause and the setting to fix, or None when nothing points at the settings."""
        kafka = self.kafka
        for error in self.errors:
            detail = error.str()
            if error.code() == KafkaError._AUTHENTICATION:
                if "Unsupported SASL mechanism" in detail:
                    return (f"KAFKA_SASL_MECHANISM={kafka.sasl_mechanism!r} is not enabled on "
                            f"the broker ({detail})")
                return (f"Kafka refused the credentials of KAFKA_SASL_USERNAME="
                        f"{kafka.sasl_username!r}: check KAFKA_SASL_USERNAME and "
                        f"KAFKA_SASL_PASSWORD ({detail})")
            if error.code() == KafkaError._SSL:
                if "certificate verify failed" in detail:
                    return (f"the broker's TLS certificate is not trusted: check "
                            f"KAFKA_SSL_CA_LOCATION={kafka.ssl_ca_location!r} ({detail})")
                return (f"TLS with the broker failed: check KAFKA_SECURITY_PROTOCOL and the "
                        f"KAFKA_SSL_* settings ({detail})")
        for line in self.lines:
            # A TLS or SASL listener hangs up on a plaintext client's first request.
            if "security.protocol" in line or (
                    "state APIVERSION_QUERY" in line and "Disconnected" in line
                    and not kafka.security_protocol.endswith("SSL")):
                return (f"the broker's listener does not speak KAFKA_SECURITY_PROTOCOL="
                        f"{kafka.security_protocol!r} (a TLS listener needs SSL or SASL_SSL, a "
                        f"SASL one SASL_PLAINTEXT or SASL_SSL): {line}")
        return None


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


#: Errors by which the broker's ACLs deny this identity: never transient.
AUTHORIZATION_CODES = frozenset({
    KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED})


def access_denied(error: KafkaError | None) -> KafkaAccessDeniedError | None:
    """The error to stop on when ``error`` is an ACL denial (None otherwise)."""
    if error is None or error.code() not in AUTHORIZATION_CODES:
        return None
    return KafkaAccessDeniedError(
        f"Kafka denies this client: {error.str()} (the identity KAFKA_SASL_USERNAME lacks a "
        "grant, or KAFKA_GROUP_ID or the transactional id is outside its granted prefix; the "
        "grants of each component are in docs/security.md)")


def make_admin(kafka: KafkaSettings, client_id: str = "airline-admin",
               diagnosis: ConnectionDiagnosis | None = None) -> AdminClient:
    """An admin client on the same connection settings (feeding ``diagnosis`` if given)."""
    return AdminClient(client_config(kafka, client_id) | (diagnosis.config() if diagnosis else {}))


def partition_counts(admin: AdminClient, names: Iterable[str], timeout: float = 10.0,
                     diagnosis: ConnectionDiagnosis | None = None) -> dict[str, int | None]:
    """Partition count of each named topic, ``None`` for a topic that does not exist.

    With the ``diagnosis`` that ``admin`` feeds (:func:`make_admin`), a failure caused by the
    security settings is a :class:`ConfigError` naming the setting to fix."""
    deadline = time.monotonic() + timeout
    while True:
        # In steps of a second, so a refused connection is explained at once, not at the end.
        step = max(0.1, min(1.0, deadline - time.monotonic()))
        try:
            metadata = admin.list_topics(timeout=step if diagnosis is not None else timeout)
            break
        except KafkaException as e:
            if diagnosis is not None:
                admin.poll(0.2)  # the error callbacks and log lines are served here
                cause = diagnosis.explain()
                if cause is not None:
                    raise ConfigError(f"cannot connect to Kafka at "
                                      f"{diagnosis.kafka.bootstrap_servers}: {cause}") from e
            if diagnosis is None or time.monotonic() >= deadline:
                raise MissingTopicError(
                    f"cannot read topic metadata from the broker: {e}") from e
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

    Raises :class:`MissingTopicError` naming the missing topics and the fix,
    :class:`TopicLayoutError` when co-partitioned topics disagree, or :class:`ConfigError`
    naming the setting when the broker refuses the connection's security settings.
    """
    wanted = {physical_name(t, kafka.topic_prefix): t for t in topics}
    diagnosis = ConnectionDiagnosis(kafka)
    counts = partition_counts(make_admin(kafka, diagnosis=diagnosis), wanted, timeout, diagnosis)
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
