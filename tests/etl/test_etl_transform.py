"""Unit tests of the functional core: validation, legacy ids, dedupe, table rows (no server)."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import polars as pl
import pytest
from airline_core import events as ev
from airline_core.errors import InvalidEventError
from airline_core.ids import derive_id
from airline_etl import tables, transform
from airline_testkit.events import make_world


def _lines(lines: list[str], legacy: bool = False, source: str = "f.jsonl") -> pl.DataFrame:
    return pl.DataFrame({
        "line": lines, "source_file": [source] * len(lines),
        "line_number": list(range(1, len(lines) + 1)), "legacy": [legacy] * len(lines),
    }, schema={"line": pl.String, "source_file": pl.String, "line_number": pl.Int64,
               "legacy": pl.Boolean})


def _encoded(events: list[ev.Event]) -> list[str]:
    return [ev.encode(e).decode() for e in events]


def test_every_event_of_the_contract_validates() -> None:
    world = make_world()
    for topic, events in world.by_topic.items():
        result = transform.validate(_lines(_encoded(events)), topic)
        assert result.rejects.height == 0, result.rejects.to_dicts()
        assert result.events.height == len(events)


def test_types_are_cast() -> None:
    world = make_world(flights=1, bookings_per_flight=1)
    result = transform.validate(_lines(_encoded(world.by_topic["bookings"])), "bookings")
    schema = result.events.schema
    assert schema["event_time"] == pl.Datetime("us", "UTC")
    assert schema["total_price"] == pl.Decimal(10, 2)
    assert schema["discount_percentage"] == pl.Int64
    assert result.events["total_price"][0] == Decimal("100.01")


def test_duplicates_are_dropped_by_event_id() -> None:
    lines = _encoded(make_world(flights=1).by_topic["inventory_metrics"])
    result = transform.validate(_lines(lines + lines[:3]), "inventory_metrics")
    assert result.events.height == len(lines)
    assert result.duplicates == 3
    assert result.rejects.height == 0


@pytest.mark.parametrize(("line", "code"), [
    ("not json", "not_json"),
    ('{"event_type": "BookingCreated"', "not_json"),
    ("[1, 2]", "invalid_field"),
    ("null", "invalid_field"),
    ("", "empty_value"),
    ('{"event_type": "FlightScheduled", "event_id": "e", "event_time": "2025-11-20T08:00:00Z",'
     ' "flight_id": "F"}', "wrong_topic"),
    ('{"event_type": "BookingCreated", "event_time": "2025-11-20T08:00:00Z", "flight_id": "F"}',
     "invalid_field"),
    ('{"event_type": "BookingCancelled", "event_id": "e", "event_time": "2025-11-20 08:00",'
     ' "flight_id": "F", "booking_id": "b", "fare_bucket": "K", "passengers": []}',
     "invalid_field"),
    ('{"event_type": "BookingCreated", "event_id": "e", "event_time": "2025-11-20T08:00:00Z",'
     ' "flight_id": "F", "booking_id": "b", "channel": "WEB", "fare_bucket": "K",'
     ' "currency": "GBP", "total_price": "-1.00", "passengers": [{"passenger_id": "p",'
     ' "seat_id": "1A", "cabin_code": "Y"}]}', "invalid_field"),
    ('{"event_type": "BookingCreated", "event_id": "e", "event_time": "2025-11-20T08:00:00Z",'
     ' "flight_id": "F", "booking_id": "b", "channel": "WEB", "fare_bucket": "K",'
     ' "currency": "GBP", "total_price": "1.00", "passengers": []}', "invalid_field"),
    ('{"event_type": "BookingCreated", "event_id": "e", "event_time": "2025-11-20T08:00:00Z",'
     ' "flight_id": "F", "booking_id": "b", "channel": "WEB", "fare_bucket": "K",'
     ' "currency": "GBP", "total_price": "1.00", "passengers": [{"passenger_id": "p"}]}',
     "invalid_field"),
    ('{"event_type": "BookingCreated", "event_id": "e", "event_time": "2025-11-20T08:00:00Z",'
     ' "schema_version": "2.0", "flight_id": "F"}', "unsupported_schema"),
    ('{"event_type": "BookingCancelled", "event_id": "e", "event_time": "2999-11-20T08:00:00Z",'
     ' "flight_id": "F", "booking_id": "b", "fare_bucket": "K", "passengers": '
     '[{"passenger_id": "p", "seat_id": "1A", "cabin_code": "Y"}]}', "time_out_of_range"),
])
def test_malformed_lines_become_rejects_with_reasons(line: str, code: str) -> None:
    """The reject carries the contract's code, and its reason text is the contract's."""
    from airline_core.contract import Rejection, read_event

    good = _encoded(make_world(flights=1, bookings_per_flight=2).by_topic["bookings"])
    result = transform.validate(_lines([*good, line]), "bookings")
    assert result.events.height == len(good)
    assert result.rejects.height == 1
    reject = result.rejects.row(0, named=True)
    verdict = read_event("bookings", line.encode())
    assert isinstance(verdict, Rejection)
    assert (reject["reason_code"], reject["reason"]) == (code, verdict.text)
    assert reject["line_number"] == len(good) + 1
    assert reject["raw_line"] == line
    assert reject["source_file"] == "f.jsonl"


def test_metrics_out_of_range_are_rejected() -> None:
    line = json.dumps({"event_type": "CabinInventoryMetrics", "event_id": "m1",
                       "event_time": "2025-11-20T08:00:00Z", "flight_id": "F",
                       "booked_seats": 10, "total_seats": 180, "load_factor": 1.5,
                       "minutes_to_departure": 100})
    result = transform.validate(_lines([line]), "inventory_metrics")
    assert result.rejects["reason"][0].startswith("invalid_field: Expected `float` <= 1.0")


def test_integers_too_big_for_their_columns_are_rejected() -> None:
    line = json.dumps({"event_type": "CabinInventoryMetrics", "event_id": "m1",
                       "event_time": "2025-11-20T08:00:00Z", "flight_id": "F",
                       "booked_seats": 2**31, "total_seats": 180, "load_factor": 0.5,
                       "minutes_to_departure": 100, "forecast_load_factor": 42.0})
    result = transform.validate(_lines([line]), "inventory_metrics")
    assert result.rejects["reason_code"].to_list() == ["invalid_field"]
    assert "$.booked_seats" in result.rejects["reason"][0]
    ok = transform.validate(_lines([line.replace(str(2**31), "10")]), "inventory_metrics")
    metrics = tables.staging_rows(ok)["inventory_metrics"]
    assert metrics["forecast_load_factor"].to_list() == [9.9999]  # clipped to numeric(5,4)


def test_legacy_lines_get_stable_derived_ids() -> None:
    record = {"event_type": "CabinInventoryMetrics", "event_time": "2025-11-20T08:00:00Z",
              "flight_id": "BA210_2025-11-28", "booked_seats": 10, "total_seats": 180,
              "load_factor": 0.056, "minutes_to_departure": 600}
    line = json.dumps(record)
    result = transform.validate(_lines([line], legacy=True), "inventory_metrics")
    expected = derive_id("legacy", "inventory_metrics", hashlib.sha256(line.encode()).hexdigest())
    assert result.events["event_id"].to_list() == [expected]
    metrics = tables.staging_rows(result)["inventory_metrics"]
    assert metrics["seats_remaining"].to_list() == [170]  # derived: the old events lack it
    # The same line in the new layout (not legacy) has no id: a reject, not a guess.
    assert transform.validate(_lines([line]), "inventory_metrics").rejects.height == 1


def test_one_fact_booking_row_per_passenger_and_prices_split_exactly() -> None:
    world = make_world(flights=1, bookings_per_flight=3)
    result = transform.validate(_lines(_encoded(world.by_topic["bookings"])), "bookings")
    rows = tables.staging_rows(result)
    booking = rows["booking"]
    assert booking.height == world.passengers
    three = booking.filter(pl.col("passenger_count") == 3)
    assert sorted(three["passenger_index"].to_list()) == [0, 1, 2]
    assert rows["booking_cancellation"].height == 2  # booking 1 had two passengers
    assert rows["ledger"].height == result.events.height


def test_decode_isolates_bad_lines_in_big_batches() -> None:
    good = _encoded(make_world(flights=2).by_topic["seat_map"])
    lines = good * 50
    bad_positions = {7, 300, len(lines) - 1}
    lines = [("{broken" if i in bad_positions else line) for i, line in enumerate(lines)]
    decoded, rejects = transform.decode_lines(_lines(lines), "seat_map")
    assert decoded.height == len(lines) - len(bad_positions)
    assert sorted(rejects["line_number"].to_list()) == sorted(p + 1 for p in bad_positions)


def _booking_line(price: str, **extra: str) -> str:
    return json.dumps({
        "event_type": "BookingCreated", "event_id": f"e-{price}", "flight_id": "F",
        "event_time": "2025-11-20T08:00:00Z", "booking_id": "b", "channel": "WEB",
        "fare_bucket": "K", "currency": "GBP", "total_price": price,
        "passengers": [{"passenger_id": "p", "seat_id": "1A", "cabin_code": "Y"}], **extra})


@pytest.mark.parametrize("price", ["140.005", "140.999", "1e3", "1E3", "-1.00", "+1.00",
                                   "123456789.00", "1.", ".5", " 1.00", "1,00", "NaN", "inf",
                                   "\u0661\u0662.00", ""])
def test_money_that_a_cast_would_round_or_reinterpret_is_rejected(price: str) -> None:
    """A price is loaded exactly as written or not at all: never rounded to the cent."""
    result = transform.validate(_lines([_booking_line(price)]), "bookings")
    assert result.events.height == 0
    assert result.rejects["reason_code"].to_list() == ["invalid_field"]


@pytest.mark.parametrize(("price", "exact"), [
    ("140", "140.00"), ("140.5", "140.50"), ("140.05", "140.05"), ("0", "0.00"),
    ("99999999.99", "99999999.99")])
def test_money_within_numeric_10_2_is_loaded_exactly(price: str, exact: str) -> None:
    result = transform.validate(_lines([_booking_line(price)]), "bookings")
    assert result.rejects.height == 0
    assert result.events["total_price"].to_list() == [Decimal(exact)]


@pytest.mark.parametrize(("version", "ok"), [
    ("1.0", True), ("1.7", True), (f"{ev.SCHEMA_MAJOR}.12", True), ("2.0", False),
    ("0.9", False), ("1", False), ("1.x", False), ("v1.0", False)])
def test_schema_version_follows_the_contracts_rule(version: str, ok: bool) -> None:
    """The ETL accepts exactly what ``airline_core.events.check_schema_version`` accepts."""
    result = transform.validate(_lines([_booking_line("1.00", schema_version=version)]),
                                "bookings")
    try:
        ev.check_schema_version(version)
        contract_ok = True
    except (InvalidEventError, ValueError):
        contract_ok = False
    assert ok == contract_ok
    assert (result.events.height == 1) == ok
    if not ok:
        assert result.rejects["reason_code"].to_list() == ["unsupported_schema"]


def _explained_line(explanation: dict[str, object] | None = None, event_id: str = "p1",
                    explained: bool = True) -> str:
    """A PromotionTriggered line with an explanation (its fields overridden by ``explanation``;
    None leaves one out), or without one."""
    why = {"forecast_demand": 42.5, "forecast_low": 30.0, "forecast_high": 55.0,
           "expected_spoilage": 12.0, "response_elasticity": -1.5, "response_evidence": 0.0,
           "expected_revenue_with": 1500.25, "expected_revenue_without": 1400.0,
           **(explanation or {})}
    line = {
        "event_type": "PromotionTriggered", "event_id": event_id, "flight_id": "F",
        "event_time": "2025-11-20T08:00:00Z", "schema_version": "1.2",
        "decision_source": "PACE", "current_load_factor": 0.2, "minutes_to_departure": 900,
        "target_fare_bucket": "K", "discount_percentage": 10}
    if explained:
        line["explanation"] = {k: v for k, v in why.items() if v is not None}
    return json.dumps(line)


def test_an_explanation_is_flattened_into_typed_columns() -> None:
    lines = [_explained_line(), _explained_line(event_id="p2", explained=False)]
    result = transform.validate(_lines(lines), "promo_decisions")
    assert result.rejects.height == 0
    rows = tables.staging_rows(result)["promotion"].sort("event_id")
    assert rows.select(transform.EXPLANATION_FIELDS).rows() == [
        (42.5, 30.0, 55.0, 12.0, -1.5, 0.0, 1500.25, 1400.0), (None,) * 8]


@pytest.mark.parametrize("explanation", [
    {"forecast_high": 1e8 + 1}, {"expected_revenue_without": -1e9}, {"forecast_low": None},
    {"response_elasticity": "steep"}])
def test_explanations_the_columns_cannot_hold_are_rejected_by_both(
        explanation: dict[str, object]) -> None:
    """The contract rejects them, and so would the ETL's own checks (numeric(12,3) and
    numeric(12,2) hold the contract's bound, ±1e8, and nothing more)."""
    line = _explained_line(explanation)
    assert transform.validate(_lines([line]), "promo_decisions").rejects[
        "reason_code"].to_list() == ["invalid_field"]
    unjudged = _lines([line]).with_columns(pl.lit(None, pl.String).alias("contract_reason"),
                                           pl.lit(None, pl.String).alias("reason_code"))
    own = transform.validate(unjudged, "promo_decisions")
    assert own.events.height == 0
    assert own.rejects["reason_code"].to_list() == ["warehouse_refused"]
