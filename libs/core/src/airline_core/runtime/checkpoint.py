"""How consumed progress becomes durable: in a Kafka transaction, or after an external sink.

:class:`TransactionalCheckpoint` (exactly-once processing): outputs and the input offsets are
committed in one transaction, so a crash anywhere leaves either all of it or none of it. Every
transactional call runs under a hard deadline, because librdkafka can block past its own
timeout while a group coordinator reloads (librdkafka issues 5456 and 5511); a call that
overruns is abandoned with its producer, and a new producer with the same ``transactional.id``
fences it and aborts its transaction. After an abort or an abandon the caller rewinds (state
and inputs back to the last commit), exactly as a restarted process would.

:class:`ExternalCommitCheckpoint` (exactly-once sinks such as the lake): the sink makes the
data durable first, then the offsets are committed; a failed commit only costs a re-read,
because the sink, not the group offset, is the truth on resume.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from airline_core.config import KafkaSettings
from airline_core.crash import crash_point
from airline_core.errors import AirlineError
from airline_core.kafka import make_producer
from airline_core.logging import get_logger

log = get_logger(__name__)
TXN_TIMEOUT_S: Final = 30.0
#: How long past its own timeout a transactional call may block before it is abandoned.
TXN_GRACE_S: Final = 5.0


class TransactionStuckError(AirlineError):
    """A transactional producer call blocked past its deadline; the producer is replaced."""


class Outcome(StrEnum):
    """What became of a transaction (the label of the ``*_transactions_total`` metrics)."""

    COMMITTED = "committed"
    ABORTED = "aborted"
    ABANDONED = "abandoned"


def bounded(what: str, call: Callable[[], None], limit: float = TXN_TIMEOUT_S + TXN_GRACE_S
            ) -> None:
    """Run a blocking librdkafka call with a deadline it cannot overrun.

    The call runs on a daemon thread; its exception is re-raised here. If it has not returned
    after ``limit`` seconds, :class:`TransactionStuckError` is raised and the thread is left
    blocked (the caller replaces the producer, which fences it)."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as e:
            failure.append(e)

    worker = threading.Thread(target=target, name=f"txn-{what}", daemon=True)
    worker.start()
    worker.join(limit)
    if worker.is_alive():
        raise TransactionStuckError(f"{what} did not return within {limit:g}s")
    if failure:
        raise failure[0]


class TransactionalCheckpoint:
    """One transactional producer: outputs and input offsets commit together.

    ``name`` prefixes the crash points (``<name>.after_produce``, ``<name>.after_commit``);
    ``count`` is told every :class:`Outcome` (for the component's metric)."""

    def __init__(self, kafka: KafkaSettings, client_id: str, transactional_id: str, *,
                 timeout_ms: int, on_error: Callable[[KafkaError], None], name: str,
                 count: Callable[[Outcome], None]) -> None:
        self._config = (kafka, client_id, transactional_id, timeout_ms, on_error)
        self._name = name
        self._count = count
        self._abandoned: list[Any] = []  # never freed under the thread that still uses it
        self.open = False
        self.producer = self._registered()

    def _registered(self) -> Any:
        """A producer registered under the transactional id (``init_transactions`` fences any
        older incarnation, in this process or a crashed one, and aborts its transaction)."""
        kafka, client_id, transactional_id, timeout_ms, on_error = self._config
        producer = make_producer(kafka, client_id, transactional_id=transactional_id,
                                 extra={"transaction.timeout.ms": timeout_ms,
                                        "error_cb": on_error})
        producer.init_transactions(TXN_TIMEOUT_S)
        return producer

    def begin(self) -> None:
        """Open a transaction unless one is open."""
        if not self.open:
            self.producer.begin_transaction()
            self.open = True

    def produce(self, topic: str, value: bytes | None, key: bytes,
                partition: int | None = None) -> None:
        """Produce into the open transaction, polling while librdkafka's queue is full."""
        self.begin()
        producer = self.producer
        while True:
            try:
                if partition is None:
                    producer.produce(topic, value=value, key=key)
                else:
                    producer.produce(topic, value=value, key=key, partition=partition)
                return
            except BufferError:
                producer.poll(0.05)

    def commit(self, offsets: Sequence[TopicPartition], group_metadata: Any) -> Outcome:
        """Add ``offsets`` and commit. A retriable failure aborts (``ABORTED``); a blocked call
        replaces the producer (``ABANDONED``); either way the caller rewinds. A fatal error
        raises: the process must stop and its successor restore."""
        self.begin()
        crash_point(f"{self._name}.after_produce",
                    prepare=lambda: self.producer.flush(TXN_TIMEOUT_S))
        producer = self.producer
        try:
            if offsets:
                bounded("send_offsets_to_transaction",
                        lambda: producer.send_offsets_to_transaction(
                            list(offsets), group_metadata, TXN_TIMEOUT_S))
            bounded("commit_transaction", lambda: producer.commit_transaction(TXN_TIMEOUT_S))
        except TransactionStuckError as e:
            log.error("transaction stuck; replacing the producer and rewinding", error=str(e))
            self._abandoned.append(producer)
            self.open = False
            self.producer = self._registered()
            self._count(Outcome.ABANDONED)
            return Outcome.ABANDONED
        except KafkaException as e:
            if e.args[0].fatal():
                raise
            log.warning("transaction failed; aborting and rewinding", error=str(e))
            self.abort()
            return Outcome.ABORTED
        self.open = False
        crash_point(f"{self._name}.after_commit")
        self._count(Outcome.COMMITTED)
        return Outcome.COMMITTED

    def abort(self) -> None:
        """Abort the open transaction (its records are never visible to ``read_committed``)."""
        try:
            self.producer.abort_transaction(TXN_TIMEOUT_S)
        finally:
            self.open = False
            self._count(Outcome.ABORTED)


class ExternalCommitCheckpoint:
    """Commit a partition's offset after its records are durable in an external sink."""

    def __init__(self, consumer: Any) -> None:
        self._consumer = consumer

    def commit(self, topic: str, partition: int, next_offset: int) -> bool:
        """Commit synchronously; False (logged) when the broker refused: the sink stands."""
        try:
            self._consumer.commit(offsets=[TopicPartition(topic, partition, next_offset)],
                                  asynchronous=False)
        except KafkaException as e:
            log.warning("offset commit failed (the sink is the truth on resume)", topic=topic,
                        partition=partition, error=str(e))
            return False
        return True
