"""The consume loop: one for every long-running consumer.

Each turn it beats the health probe, fetches a batch, sorts what came into records, ends of
partition, errors and fatal errors, hands them to the :class:`Processor`, lets the processor do
its time-driven work (commit, flush), and decides whether a bounded run may stop. A fatal
error (the client is unusable for good) goes to the processor, which either replaces the
consumer or raises; any other client error is logged and the loop goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message

from airline_core.health import HealthServer
from airline_core.kafka import access_denied, is_fatal
from airline_core.lifecycle import IdleTracker, StopSignal
from airline_core.logging import get_logger
from airline_core.runtime.broker import BrokerWatch

log = get_logger(__name__)


class Processor(Protocol):
    """What a component plugs into the loop."""

    @property
    def consumer(self) -> Any:
        """The consumer to fetch from now (a processor may replace it)."""

    def on_records(self, records: list[Message], now: float) -> None:
        """A batch of records (no errors among them), in fetch order."""

    def on_end(self, topic: str, partition: int, offset: int) -> None:
        """librdkafka passed the end of a partition (``offset`` is the end)."""

    def on_fatal(self, error: KafkaError) -> None:
        """The consumer is unusable for good: replace it, or raise."""

    def after_batch(self, now: float, drained: bool) -> None:
        """Time-driven work after each turn (commit when due, flush idle buffers).
        ``drained``: the turn's fetch emptied the client's local queue (it returned fewer
        records than a batch); when False, records of any partition may already be waiting
        locally, behind the ones handed over."""

    def caught_up(self) -> bool:
        """Everything assigned is read to its end and nothing is uncommitted."""

    def progress(self) -> dict[str, Any]:
        """Numbers for the periodic progress line (what it did since the last one)."""


class ConsumeLoop:
    """Runs a :class:`Processor` until a stop is requested."""

    def __init__(self, processor: Processor, stop: StopSignal, *, batch_size: int,
                 poll_timeout_s: float, idle_seconds: float, broker: BrokerWatch,
                 health: HealthServer | None = None, progress_every_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._processor = processor
        self._stop = stop
        self._batch_size = batch_size
        self._timeout = poll_timeout_s
        self._idle = IdleTracker(idle_seconds)
        self._broker = broker
        self._health = health
        self._progress_every_s = progress_every_s
        self._clock = clock
        self._records = 0
        self._last_progress = clock()

    def run(self) -> None:
        """Turn until stopped (SIGTERM, ``--stop-when-idle``, or a processor's request)."""
        while not self._stop.requested:
            self.turn()

    def turn(self) -> None:
        """One fetch and everything that follows it."""
        processor = self._processor
        if self._health is not None:
            self._health.beat()
        try:
            messages = self._fetch(processor.consumer)
        except KafkaException as e:
            if is_fatal(e.args[0]):
                processor.on_fatal(e.args[0])
            else:
                log.warning("consume failed", error=str(e))
            return
        now = self._clock()
        records: list[Message] = []
        for message in messages:
            error = message.error()
            if error is None:
                records.append(message)
                continue
            denied = access_denied(error)
            if denied is not None:
                raise denied  # no retry grants what the ACLs deny: stop, naming the settings
            if is_fatal(error):
                processor.on_fatal(error)
                return  # the batch belongs to a consumer that is gone
            if error.code() == KafkaError._PARTITION_EOF:
                self._broker.seen()
                self._hand_over(records, now)  # in fetch order: the records before the end
                records = []
                processor.on_end(str(message.topic()), int(message.partition() or 0),
                                 int(message.offset() or 0))
            else:
                log.warning("consumer error", error=str(error))
        self._hand_over(records, now)
        processor.after_batch(now, drained=len(messages) < self._batch_size)
        self._broker.probe(processor.consumer)
        if now - self._last_progress >= self._progress_every_s:
            self._log_progress(now)
        if self._idle.idle_seconds > 0 and self._idle.should_stop(processor.caught_up()):
            self._stop.request("idle")

    def _fetch(self, consumer: Any) -> list[Message]:
        """Wait up to the poll timeout for the first message, then take what is already
        queued behind it without waiting: ``consume(n, timeout)`` alone waits the whole
        timeout whenever fewer than ``n`` records are queued, which at a live rate is always,
        and every record would sit out that wait before it is processed."""
        first = consumer.poll(self._timeout)
        if first is None or self._batch_size == 1:
            return [] if first is None else [first]
        return [first, *consumer.consume(num_messages=self._batch_size - 1, timeout=0)]

    def _hand_over(self, records: list[Message], now: float) -> None:
        if records:
            self._broker.seen()
            self._records += len(records)
            self._idle.activity()
            self._processor.on_records(records, now)

    def _log_progress(self, now: float) -> None:
        seconds = now - self._last_progress
        log.info("progress", records=self._records,
                 records_per_second=round(self._records / seconds, 1) if seconds else 0.0,
                 broker_reachable=not self._broker.down, **self._processor.progress())
        self._records = 0
        self._last_progress = now
