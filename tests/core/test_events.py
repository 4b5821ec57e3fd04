"""The event contract: shapes, encoding, validation and the schema_version rule."""

from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import pytest
from airline_core import events
from airline_core.contract import all_pass_byte_checks
from airline_core.errors import InvalidEventError, UnsupportedSchemaError
from airline_core.topics import Topic

T0 = datetime(2025, 11, 1, 9, 30, tzinfo=UTC)


def booking(**overrides: object) -> events.BookingCreated:
    fields: dict[str, object] = {
        "event_id": "e-1", "event_time": T0, "flight_id": "BA210_2025-11-28",
        "booking_id": "b-1", "channel": "WEB", "fare_bucket": "K", "currency": "GBP",
        "total_price": Decimal("280.00"),
        "passengers": [events.Passenger(passenger_id="p-1", seat_id="12C", cabin_code="Y"),
                       events.Passenger(passenger_id="p-2", seat_id="12D", cabin_code="Y")],
    }
    fields.update(overrides)
    return events.BookingCreated(**fields)  # type: ignore[arg-type]


def test_common_fields_come_first_in_contract_order() -> None:
    keys = list(msgspec.json.decode(events.encode(booking())))
    assert keys[:5] == ["event_type", "event_id", "event_time", "schema_version", "flight_id"]
    assert keys[5:8] == ["booking_id", "channel", "fare_bucket"]


def test_money_is_a_decimal_string_and_time_is_utc_with_z() -> None:
    raw = msgspec.json.decode(events.encode(booking()))
    assert raw["total_price"] == "280.00"
    assert raw["event_time"] == "2025-11-01T09:30:00Z"
    assert raw["schema_version"] == events.SCHEMA_VERSION


def test_round_trip_every_topic() -> None:
    event = booking()
    decoded = events.decode(Topic.BOOKINGS, events.encode(event))
    assert decoded == event
    assert decoded.total_price == Decimal("280.00")
    assert decoded.key == b"BA210_2025-11-28"


def test_user_first_version_fields_are_kept() -> None:
    """The user's Tableau work depends on these names (../shared/seed/first-versions.md)."""
    scheduled = set(events.FlightScheduled.__struct_fields__)
    assert {"airline_code", "origin_airport", "destination_airport", "scheduled_departure_time",
            "scheduled_arrival_time", "aircraft_type", "total_seats", "cabins"} <= scheduled
    assert {"booking_id", "channel", "fare_bucket", "currency", "total_price",
            "passengers"} <= set(events.BookingCreated.__struct_fields__)
    assert {"time_to_departure_minutes", "cabins", "currency"} <= set(
        events.CabinInventorySnapshot.__struct_fields__)
    assert {"booked_seats", "total_seats", "load_factor", "minutes_to_departure"} <= set(
        events.CabinInventoryMetrics.__struct_fields__)
    assert {"decision_source", "current_load_factor", "minutes_to_departure",
            "target_fare_bucket", "discount_percentage"} <= set(
        events.PromotionTriggered.__struct_fields__)


def test_newer_minor_with_unknown_field_is_accepted() -> None:
    raw = msgspec.json.decode(events.encode(booking()))
    raw["schema_version"] = "1.7"
    raw["loyalty_tier"] = "gold"
    decoded = events.decode(Topic.BOOKINGS, msgspec.json.encode(raw))
    assert decoded.booking_id == "b-1"
    assert decoded.schema_version == "1.7"


def test_older_minor_missing_optional_fields_gets_defaults() -> None:
    raw = msgspec.json.decode(events.encode(booking()))
    del raw["segment"], raw["promo_id"], raw["discount_percentage"]
    decoded = events.decode(Topic.BOOKINGS, msgspec.json.encode(raw))
    assert (decoded.segment, decoded.promo_id, decoded.discount_percentage) == ("", None, 0)


@pytest.mark.parametrize("version", ["2.0", "0.9", "one", "1"])
def test_other_major_or_malformed_version_is_rejected(version: str) -> None:
    raw = msgspec.json.decode(events.encode(booking()))
    raw["schema_version"] = version
    with pytest.raises(UnsupportedSchemaError):
        events.decode(Topic.BOOKINGS, msgspec.json.encode(raw))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "^not_json: "),
        (b'{"event_type": "BookingCreated"}', "^invalid_field: "),
        (None, "^tombstone: "),
    ],
)
def test_bad_values_raise_with_a_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidEventError, match=reason):
        events.decode(Topic.BOOKINGS, value)


def test_event_type_on_the_wrong_topic_is_invalid() -> None:
    with pytest.raises(InvalidEventError):
        events.decode(Topic.FLIGHT_LIFECYCLE, events.encode(booking()))


def test_naive_time_is_invalid() -> None:
    raw = msgspec.json.decode(events.encode(booking()))
    raw["event_time"] = "2025-11-01T09:30:00"
    with pytest.raises(InvalidEventError):
        events.decode(Topic.BOOKINGS, msgspec.json.encode(raw))


def test_header_reads_any_type_cheaply() -> None:
    header = events.decode_header(events.encode(booking()))
    assert (header.event_id, header.event_type, header.event_time) == ("e-1", "BookingCreated", T0)


def test_every_topic_lists_its_event_types() -> None:
    assert events.event_types_of(Topic.BOOKINGS) == ["BookingCreated", "BookingCancelled"]
    assert "FlightScheduled" in events.event_types_of(Topic.FLIGHT_LIFECYCLE)
    assert set(events.TOPIC_EVENT_TYPES) == set(Topic) - {Topic.ENGINE_STATE_CHANGELOG}


@pytest.mark.parametrize("price", ["NaN", "-1.00", "140.005", "Infinity"])
def test_money_must_be_exact_and_not_negative(price: str) -> None:
    raw = msgspec.json.decode(events.encode(booking()))
    raw["total_price"] = price
    with pytest.raises(InvalidEventError, match="total_price"):
        events.decode(Topic.BOOKINGS, msgspec.json.encode(raw))


def test_fare_prices_are_checked_inside_nested_records() -> None:
    scheduled = events.FlightScheduled(
        event_id="e-2", event_time=T0, flight_id="BA210_2025-11-28", airline_code="BA",
        origin_airport="LHR", destination_airport="JFK", scheduled_departure_time=T0,
        scheduled_arrival_time=T0, aircraft_type="A320", total_seats=180,
        cabins=[events.Cabin(cabin_code="Y", seat_count=180)],
        fare_buckets=[events.FareBucketSpec(bucket="K", cabin_code="Y", price=Decimal("140.00"),
                                            seats=90)])
    raw = msgspec.json.decode(events.encode(scheduled))
    assert events.decode(Topic.FLIGHT_LIFECYCLE, msgspec.json.encode(raw)) == scheduled
    raw["fare_buckets"][0]["price"] = "NaN"
    with pytest.raises(InvalidEventError, match="price"):
        events.decode(Topic.FLIGHT_LIFECYCLE, msgspec.json.encode(raw))


def _header_or_none(value: bytes) -> events.EventHeader | None:
    try:
        return events.decode_header(value)
    except InvalidEventError:
        return None


def test_batch_headers_equal_one_by_one_or_none() -> None:
    """decode_headers gives exactly decode_header's results, or None when any value is not a
    header (never a shifted or merged result: two documents in one value, a broken line)."""
    good = events.encode(booking())
    other = events.encode(booking(event_id="e2", event_time=datetime(2025, 11, 2, tzinfo=UTC)))
    assert events.decode_headers([good, other]) == [events.decode_header(good),
                                                   events.decode_header(other)]
    assert events.decode_headers([]) == []
    for odd in (good + b" " + other, b'{"a":{}', good.replace(b"2025-11", b"2299-11"),
                good.replace(b'"1.', b'"9.'), b"[]", b'{"a":1}', b" " + good):
        batch = [good, odd, other]
        assert all_pass_byte_checks(batch)
        assert events.decode_headers(batch) is None
        # conservative only for a value not written as a bare object: it is decided alone
        assert _header_or_none(odd) is None or odd.startswith(b" "), odd
