"""State recovery: read changelog partitions to their end, before any input is processed.

Partition p of the compacted ``engine_state_changelog`` holds the latest committed state of
every flight of input partition p (``read_committed``: an aborted transaction's records never
come back). The restore reads up to the high watermark, so it also waits for a predecessor's
transaction that is still being completed instead of missing its last records.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from airline_core.config import KafkaSettings
from airline_core.crash import crash_point
from airline_core.kafka import is_partition_eof, make_consumer, position_of
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from airline_engine import metrics
from airline_engine.errors import RestoreError
from airline_engine.response import RESPONSE_KEY, ResponseStats, decode_stats
from airline_engine.state import FlightState, decode_record


@dataclass
class Restored:
    """What one changelog partition held."""

    flights: dict[str, FlightState] = field(default_factory=dict)
    #: Logical input topic -> highest offset any restored record says it reflects.
    offsets: dict[str, int] = field(default_factory=dict)
    #: Logical input topic -> highest event-time watermark any restored record carries.
    watermarks: dict[str, float] = field(default_factory=dict)
    records: int = 0
    #: The partition's learned price response (None: nothing learned yet).
    response: ResponseStats | None = None


class ChangelogReader:
    """A group-less ``read_committed`` consumer that reads changelog partitions on demand."""

    def __init__(self, kafka: KafkaSettings, topic: str, client_id: str,
                 timeout_s: float = 120.0) -> None:
        self._topic = topic
        self._timeout_s = timeout_s
        self._consumer = make_consumer(kafka, client_id, f"{client_id}-restore", extra={
            "enable.partition.eof": True, "fetch.wait.max.ms": 10})

    def close(self) -> None:
        """Close the consumer."""
        self._consumer.close()

    def restore(self, partitions: Iterable[int],
                progress: Callable[[], Any] | None = None) -> dict[int, Restored]:
        """Read ``partitions`` of the changelog from the beginning to their high watermark."""
        started = time.monotonic()
        consumer = self._consumer
        result = {p: Restored() for p in partitions}
        ends: dict[int, int] = {}
        for p in result:
            low, high = consumer.get_watermark_offsets(TopicPartition(self._topic, p),
                                                       timeout=10, cached=False)
            if high > low:
                ends[p] = high
        if ends:
            consumer.assign([TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in ends])
        deadline = started + self._timeout_s
        pending = set(ends)
        while pending:
            if time.monotonic() > deadline:
                raise RestoreError(f"changelog partitions {sorted(pending)} not restored within "
                                   f"{self._timeout_s:.0f}s")
            if progress:
                progress()
            for msg in consumer.consume(num_messages=5000, timeout=0.2):
                p, offset = position_of(msg)
                if msg.error() is not None:
                    if is_partition_eof(msg) and offset >= ends[p]:
                        pending.discard(p)
                    continue
                crash_point("engine.during_restore")
                restored = result[p]
                restored.records += 1
                flight_id = (msg.key() or b"").decode()
                value = msg.value()
                if flight_id == RESPONSE_KEY:
                    if value is not None:
                        restored.response = decode_stats(value)
                    if offset + 1 >= ends[p]:
                        pending.discard(p)
                    continue
                if value is None:
                    restored.flights.pop(flight_id, None)
                    continue
                record = decode_record(value)
                restored.flights[flight_id] = record.flight
                for topic, reflected in record.offsets.items():
                    if reflected > restored.offsets.get(topic, -1):
                        restored.offsets[topic] = reflected
                for topic, mark in record.watermarks.items():
                    if mark > restored.watermarks.get(topic, float("-inf")):
                        restored.watermarks[topic] = mark
                if offset + 1 >= ends[p]:
                    pending.discard(p)
        if ends:
            consumer.unassign()
        metrics.RESTORED_RECORDS.inc(sum(r.records for r in result.values()))
        metrics.RESTORE_SECONDS.inc(time.monotonic() - started)
        return result
