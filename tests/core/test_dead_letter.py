"""Dead-letter envelopes keep the original record whole, with a derived id."""

import base64
from datetime import UTC, datetime

from airline_core import events
from airline_core.dead_letter import dead_letter_for
from airline_core.topics import Topic


class RejectedRecord:
    """The accessor surface of a confluent-kafka Message, for a record we choose."""

    def __init__(self, key: bytes | None, value: bytes | None) -> None:
        self._key, self._value = key, value

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def partition(self) -> int:
        return 2

    def offset(self) -> int:
        return 41

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000)

    def headers(self) -> list[tuple[str, bytes]]:
        return [("trace", b"\x00\x01")]


def test_envelope_keeps_bytes_source_and_reason() -> None:
    value = b'{"event_time": "2025-11-01T10:00:00Z", "broken": '
    envelope = dead_letter_for(RejectedRecord(b"BA1_2025-11-28", value), "bookings",
                               "undecodable JSON", "airline-engine")
    assert base64.b64decode(envelope.original_value_b64) == value
    assert envelope.original_key_b64 == base64.b64encode(b"BA1_2025-11-28").decode()
    assert (envelope.source_topic, envelope.source_partition, envelope.source_offset) == (
        "bookings", 2, 41)
    assert envelope.headers == [("trace", base64.b64encode(b"\x00\x01").decode())]
    assert envelope.flight_id == "BA1_2025-11-28"
    assert envelope.event_time == datetime.fromtimestamp(1_700_000_000, tz=UTC)
    again = dead_letter_for(RejectedRecord(b"BA1_2025-11-28", value), "bookings", "x",
                            "airline-engine")
    assert again.event_id == envelope.event_id
    assert events.decode(Topic.DEAD_LETTER, events.encode(envelope)) == envelope


def test_unreadable_record_is_dated_by_the_callers_event_time() -> None:
    fallback = datetime(2025, 11, 2, 8, tzinfo=UTC)
    envelope = dead_letter_for(RejectedRecord(b"k", b"{not json"), "bookings", "x", "engine",
                               fallback_time=fallback)
    assert envelope.event_time == fallback


def test_event_time_taken_from_a_readable_value_and_unknown_key() -> None:
    value = b'{"event_time": "2025-11-01T10:00:00Z", "schema_version": "9.0"}'
    envelope = dead_letter_for(RejectedRecord(None, value), "bookings", "schema", "x")
    assert envelope.event_time == datetime(2025, 11, 1, 10, tzinfo=UTC)
    assert envelope.flight_id == "unknown" and envelope.original_key_b64 is None
