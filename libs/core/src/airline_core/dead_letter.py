"""Dead-letter envelopes: a rejected record is kept with where it came from and why.

An envelope always satisfies the contract itself (so the lake and the ETL take it like any
event) and always fits the broker's message size limit: an original value larger than
``MAX_ORIGINAL_BYTES`` is stored truncated, with the size and sha256 of the whole value, which
stays whole in its source topic and in the raw lake.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from airline_core.contract import Rejection, check_bytes
from airline_core.events import MAX_TIME, MIN_TIME, DeadLetter, b64
from airline_core.ids import derive_id

#: Bytes of the original value kept in an envelope (about 87 KiB of base64).
MAX_ORIGINAL_BYTES: Final = 64 * 1024
#: Bytes of the original key kept, and of each header value; headers kept at most.
MAX_KEY_BYTES: Final = 1024
MAX_HEADERS: Final = 16
_MAX_TEXT: Final = 128


class _Time(msgspec.Struct):
    event_time: datetime


_TIME_DECODER: Final = msgspec.json.Decoder(_Time)


def _own_time(value: bytes | None) -> datetime | None:
    """The rejected value's own ``event_time``, when it can be read safely and is in range."""
    if check_bytes(value) is not None:
        return None
    try:
        found = _TIME_DECODER.decode(value)  # type: ignore[arg-type]
    except Exception:
        return None
    when = found.event_time
    if when.tzinfo is None or not MIN_TIME <= when < MAX_TIME:
        return None
    return when.astimezone(UTC)


def _event_time(value: bytes | None, fallback: datetime | None, kafka_timestamp_ms: int
                ) -> datetime:
    """The rejected event's own time when readable and plausible; else ``fallback`` (the
    caller's event-time position, e.g. the engine's merge time of that partition); else, as
    the last resort, the record's Kafka timestamp (which is wall-clock time)."""
    own = _own_time(value)
    if own is not None:
        return own
    if fallback is not None:
        return fallback.astimezone(UTC)
    seconds = min(max(kafka_timestamp_ms, 0) / 1000, MAX_TIME.timestamp() - 1)
    return datetime.fromtimestamp(seconds, tz=UTC)


def _text(raw: str, limit: int = _MAX_TEXT) -> str:
    """Text safe for the contract and the warehouse: no NUL, bounded length."""
    return raw.replace("\x00", "\ufffd")[:limit]


def dead_letter_for(message: Any, logical_topic: str, rejection: Rejection, component: str,
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
    headers = [(_text(name), b64(data if data is None else data[:MAX_KEY_BYTES]))
               for name, data in (message.headers() or [])[:MAX_HEADERS]]
    flight_id = _text(key.decode("utf-8", "replace")) if key else ""
    original = value or b""
    truncated = len(original) > MAX_ORIGINAL_BYTES or (key is not None
                                                       and len(key) > MAX_KEY_BYTES)
    return DeadLetter(
        event_id=derive_id("dead_letter", logical_topic, partition, offset, component),
        event_time=_event_time(value, fallback_time, message.timestamp()[1]),
        flight_id=flight_id or "unknown",
        source_topic=logical_topic,
        source_partition=partition,
        source_offset=offset,
        reason=_text(rejection.text, 2000),
        reason_code=str(rejection.code),
        component=component,
        original_value_b64=b64(original[:MAX_ORIGINAL_BYTES]) or "",
        original_key_b64=b64(key if key is None else key[:MAX_KEY_BYTES]),
        headers=headers,
        original_size=len(original),
        original_sha256=hashlib.sha256(original).hexdigest() if value is not None else "",
        original_truncated=truncated,
    )
