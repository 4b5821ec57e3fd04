"""Dead-letter envelopes keep the original record whole, with a derived id."""

import base64
import hashlib
from datetime import UTC, datetime

from airline_core import events
from airline_core.contract import Reason, Rejection, read_event
from airline_core.dead_letter import MAX_ORIGINAL_BYTES, dead_letter_for
from airline_core.topics import Topic

NOT_JSON = Rejection(Reason.NOT_JSON, "undecodable JSON")


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
                               NOT_JSON, "airline-engine")
    assert base64.b64decode(envelope.original_value_b64) == value
    assert envelope.original_key_b64 == base64.b64encode(b"BA1_2025-11-28").decode()
    assert (envelope.source_topic, envelope.source_partition, envelope.source_offset) == (
        "bookings", 2, 41)
    assert envelope.headers == [("trace", base64.b64encode(b"\x00\x01").decode())]
    assert envelope.flight_id == "BA1_2025-11-28"
    assert envelope.event_time == datetime.fromtimestamp(1_700_000_000, tz=UTC)
    assert (envelope.reason_code, envelope.reason) == ("not_json", "not_json: undecodable JSON")
    assert envelope.original_size == len(value) and not envelope.original_truncated
    assert envelope.original_sha256 == hashlib.sha256(value).hexdigest()
    again = dead_letter_for(RejectedRecord(b"BA1_2025-11-28", value), "bookings", NOT_JSON,
                            "airline-engine")
    assert again.event_id == envelope.event_id
    assert events.decode(Topic.DEAD_LETTER, events.encode(envelope)) == envelope


def test_unreadable_record_is_dated_by_the_callers_event_time() -> None:
    fallback = datetime(2025, 11, 2, 8, tzinfo=UTC)
    envelope = dead_letter_for(RejectedRecord(b"k", b"{not json"), "bookings", NOT_JSON, "engine",
                               fallback_time=fallback)
    assert envelope.event_time == fallback


def test_event_time_taken_from_a_readable_value_and_unknown_key() -> None:
    value = b'{"event_time": "2025-11-01T10:00:00Z", "schema_version": "9.0"}'
    envelope = dead_letter_for(RejectedRecord(None, value), "bookings", NOT_JSON, "x")
    assert envelope.event_time == datetime(2025, 11, 1, 10, tzinfo=UTC)
    assert envelope.flight_id == "unknown" and envelope.original_key_b64 is None


def test_implausible_own_time_is_not_used() -> None:
    """A record dated in 2999 (or 0001) is dated by the caller instead: the envelope must
    satisfy the contract itself."""
    fallback = datetime(2025, 11, 2, 8, tzinfo=UTC)
    for when in ("2999-01-01T00:00:00Z", "0001-01-01T00:00:00+05:00"):
        value = b'{"event_time": "%s"}' % when.encode()
        envelope = dead_letter_for(RejectedRecord(b"k", value), "bookings", NOT_JSON, "x",
                                   fallback_time=fallback)
        assert envelope.event_time == fallback


def test_oversized_original_is_truncated_with_size_and_hash() -> None:
    value = b'{"event_type":"BookingCreated","pad":"' + b"x" * 900_000 + b'"}'
    key = b"K" * 5000
    envelope = dead_letter_for(RejectedRecord(key, value), "bookings",
                               Rejection(Reason.OVERSIZED, "too big"), "airline-engine")
    encoded = events.encode(envelope)
    assert len(encoded) < 200_000  # far under the broker's 1 MB message limit
    assert envelope.original_truncated and envelope.original_size == len(value)
    assert envelope.original_sha256 == hashlib.sha256(value).hexdigest()
    assert base64.b64decode(envelope.original_value_b64) == value[:MAX_ORIGINAL_BYTES]
    assert len(envelope.flight_id) <= 128
    assert not isinstance(read_event(Topic.DEAD_LETTER, encoded), Rejection)


def test_hostile_key_and_headers_still_make_a_valid_envelope() -> None:
    class Hostile(RejectedRecord):
        def headers(self) -> list[tuple[str, bytes]]:
            return [(f"h{i}\x00", b"v" * 5000) for i in range(100)]

        def timestamp(self) -> tuple[int, int]:
            return (1, 2**62)  # a producer may set any timestamp

    envelope = dead_letter_for(Hostile(b"\x00\xff" * 10, None), "bookings",
                               Rejection(Reason.TOMBSTONE, "no value \x00"), "lake-writer")
    assert not isinstance(read_event(Topic.DEAD_LETTER, events.encode(envelope)), Rejection)
    assert len(envelope.headers) == 16 and envelope.original_sha256 == ""
