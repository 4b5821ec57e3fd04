"""Dead-letter envelopes: a rejected record is kept whole, with where it came from and why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from airline_core.events import DeadLetter, b64
from airline_core.ids import derive_id
from airline_core.timeutil import to_utc


class _Time(msgspec.Struct):
    event_time: datetime


def _event_time(value: bytes | None, fallback: datetime | None, kafka_timestamp_ms: int
                ) -> datetime:
    """The rejected event's own time when readable; else ``fallback`` (the caller's event-time
    position, e.g. the engine's merge time of that partition); else, as the last resort, the
    record's Kafka timestamp (which is wall-clock time)."""
    if value:
        try:
            return to_utc(msgspec.json.decode(value, type=_Time).event_time)
        except (msgspec.MsgspecError, ValueError):
            pass
    if fallback is not None:
        return to_utc(fallback)
    return datetime.fromtimestamp(max(kafka_timestamp_ms, 0) / 1000, tz=UTC)


def dead_letter_for(message: Any, logical_topic: str, reason: str, component: str,
                    fallback_time: datetime | None = None) -> DeadLetter:
    """Build the envelope for a confluent-kafka ``Message`` that ``component`` rejected.

    ``fallback_time`` dates a record whose own event time cannot be read: pass the simulated
    time the component has reached, so the wall clock does not leak into events.

    The id derives from (topic, partition, offset, component), so a replay that rejects the same
    record again produces the same envelope id and sinks keep one copy.
    """
    key: bytes | None = message.key()
    value: bytes | None = message.value()
    partition, offset = int(message.partition()), int(message.offset())
    headers = [(name, b64(data)) for name, data in (message.headers() or [])]
    flight_id = key.decode("utf-8", "replace") if key else "unknown"
    return DeadLetter(
        event_id=derive_id("dead_letter", logical_topic, partition, offset, component),
        event_time=_event_time(value, fallback_time, message.timestamp()[1]),
        flight_id=flight_id or "unknown",
        source_topic=logical_topic,
        source_partition=partition,
        source_offset=offset,
        reason=reason[:2000],
        component=component,
        original_value_b64=b64(value) or "",
        original_key_b64=b64(key),
        headers=headers,
    )
