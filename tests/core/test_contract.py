"""The input contract: any byte sequence is an event or a rejection with a code, never a raise."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from airline_core import events as ev
from airline_core.contract import (
    MAX_DEPTH,
    MAX_VALUE_BYTES,
    Reason,
    Rejection,
    all_pass_byte_checks,
    check_bytes,
    nesting_depth_exceeds,
    read_event,
    read_record,
)
from airline_core.topics import ENGINE_INPUTS, LAKE_TOPICS, Topic
from airline_testkit.synthetic import generate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SAMPLES = generate(flights=3, seed=5)
VALID = {str(t): [ev.encode(e) for topic, e in SAMPLES if topic == t] for t in ENGINE_INPUTS}
CANCEL = (b'{"event_type":"BookingCancelled","event_id":"e1","event_time":'
          b'"2025-01-01T00:00:00Z","schema_version":"1.1","flight_id":"F1","booking_id":"b",'
          b'"fare_bucket":"K","passengers":[{"passenger_id":"p","seat_id":"1A",'
          b'"cabin_code":"Y"}]}')


def _code(topic: str, value: bytes | None) -> str:
    result = read_event(topic, value)
    return str(result.code) if isinstance(result, Rejection) else "ok"


def test_every_simulated_event_is_accepted() -> None:
    for topic, values in VALID.items():
        assert values, topic
        assert {_code(topic, v) for v in values} == {"ok"}, topic


@pytest.mark.parametrize(("topic", "value", "code"), [
    ("bookings", None, "tombstone"),
    ("bookings", b"", "empty_value"),
    ("bookings", b'{"a":"' + b"x" * MAX_VALUE_BYTES + b'"}', "oversized"),
    ("bookings", CANCEL.replace(b",", b",\n", 1), "multiline"),
    ("bookings", CANCEL[:-1] + b',"x":' + b"[" * 50_000 + b"]" * 50_000 + b"}", "too_deep"),
    ("bookings", CANCEL.replace(b'"e1"', b'"e\xff\xfe"'), "not_utf8"),
    ("bookings", CANCEL.replace(b'"p"', b'"p\\u0000"'), "nul_character"),
    ("bookings", b"{not json", "not_json"),
    ("bookings", CANCEL.replace(b'"b"', b'"\\ud800"'), "not_json"),
    ("seat_map", CANCEL, "wrong_topic"),
    ("bookings", CANCEL.replace(b'"BookingCancelled"', b'"Nope"'), "wrong_topic"),
    ("bookings", b'{"event_id":"x"}', "wrong_topic"),
    ("bookings", CANCEL.replace(b'"1.1"', b'"2.0"'), "unsupported_schema"),
    ("bookings", CANCEL.replace(b"2025-01-01", b"2999-01-01"), "time_out_of_range"),
    ("bookings", CANCEL.replace(b"2025-01-01", b"1969-12-31"), "time_out_of_range"),
    ("bookings", CANCEL.replace(b'"K"', b"7"), "invalid_field"),
    ("bookings", CANCEL.replace(b'"e1"', b'"' + b"e" * 200 + b'"'), "invalid_field"),
    ("bookings", CANCEL.replace(b'"passengers":[', b'"passengers":[{"passenger_id":"q",'
                                b'"seat_id":"2A","cabin_code":"Y"},' * 9), "invalid_field"),
])
def test_each_rejection_has_its_code(topic: str, value: bytes | None, code: str) -> None:
    assert _code(topic, value) == code


def test_ranges_that_the_warehouse_could_not_hold_are_rejected() -> None:
    seat = json.loads(VALID["seat_map"][0])
    snap = json.loads(VALID["seat_inventory"][0])
    for topic, event, field, value in [
        ("seat_map", seat, "row", 2**40),
        ("seat_inventory", snap, "time_to_departure_minutes", 2**62),
        ("seat_inventory", snap, "time_to_departure_minutes", -(2**31)),
    ]:
        bad = dict(event, **{field: value})
        assert _code(topic, json.dumps(bad).encode()) == "invalid_field", field
    money = json.loads(VALID["bookings"][0])
    for price in ("140.001", "-1.00", "100000000.00", "NaN", "1e3"):
        assert _code("bookings", json.dumps(dict(money, total_price=price)).encode()) in {
            "invalid_field"}, price


def test_a_flight_on_sale_longer_than_the_horizon_is_implausible() -> None:
    flight = json.loads(next(v for v in VALID["flight_lifecycle"] if b"FlightScheduled" in v))
    far = dict(flight, scheduled_departure_time="2099-01-01T00:00:00Z",
               scheduled_arrival_time="2099-01-01T02:00:00Z")
    assert _code("flight_lifecycle", json.dumps(far).encode()) == "time_out_of_range"


def test_key_must_be_the_flight() -> None:
    event = read_event("bookings", CANCEL)
    assert not isinstance(event, Rejection)
    assert read_record("bookings", b"F1", CANCEL) == event
    missing, other = read_record("bookings", None, CANCEL), read_record("bookings", b"F2", CANCEL)
    assert isinstance(missing, Rejection) and missing.code is Reason.MISSING_KEY
    assert isinstance(other, Rejection) and other.code is Reason.KEY_MISMATCH


def test_depth_check_ignores_brackets_inside_strings() -> None:
    text = b'{"reason":"' + b"[{" * 40 + b'","x":[[1]]}'
    assert not nesting_depth_exceeds(text)
    assert nesting_depth_exceeds(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    assert not nesting_depth_exceeds(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)


def _json_values() -> st.SearchStrategy[Any]:
    leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(topic=st.sampled_from([str(t) for t in LAKE_TOPICS]), value=st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(topic: str, value: bytes) -> None:
    result = read_event(topic, value)
    assert isinstance(result, Rejection | ev.Event)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(topic=st.sampled_from([str(t) for t in ENGINE_INPUTS]), data=st.data())
def test_mutated_valid_events_never_raise(topic: str, data: st.DataObject) -> None:
    """A valid event with one field replaced by any JSON value, or a few bytes flipped."""
    original = data.draw(st.sampled_from(VALID[topic]))
    event = json.loads(original)
    field = data.draw(st.sampled_from(sorted(event)))
    event[field] = data.draw(_json_values())
    for value in (json.dumps(event).encode(), _flip(original, data)):
        result = read_event(topic, value)
        assert isinstance(result, Rejection | ev.Event)
        if isinstance(result, ev.Event):  # what is accepted re-encodes within the contract
            assert not isinstance(read_event(topic, ev.encode(result)), Rejection)


def _flip(value: bytes, data: st.DataObject) -> bytes:
    position = data.draw(st.integers(0, len(value) - 1))
    byte = data.draw(st.integers(0, 255))
    return value[:position] + bytes([byte]) + value[position + 1:]


def test_decode_raises_only_invalid_event_errors() -> None:
    from airline_core.errors import InvalidEventError

    for value in (b"\xff", b"[" * 100_000, None, CANCEL.replace(b"2025", b"2999")):
        with pytest.raises(InvalidEventError):
            ev.decode(Topic.BOOKINGS, value)


@pytest.mark.parametrize(("amount", "valid"), [
    ("0", True), ("0.00", True), ("140", True), ("140.5", True), ("99999999.99", True),
    ("140.001", False), ("1.000", False), ("1E+2", False), ("1e3", False), ("-0.01", False),
    ("NaN", False), ("Infinity", False), ("100000000.00", False)])
def test_check_money_accepts_plain_amounts_only(amount: str, valid: bool) -> None:
    """Built in code or decoded, money is 0 to 99,999,999.99 with at most two decimals."""
    if valid:
        ev.check_money("price", Decimal(amount))
    else:
        with pytest.raises(ValueError, match="is not an amount"):
            ev.check_money("price", Decimal(amount))


#: Values each failing one byte check, or legal but outside the batch check's fast path.
ODD_VALUES = [None, b"", b"{\n}", b"{\r}", b"[" * (MAX_DEPTH + 1), b"\xff\xfe",
              b"x" * (MAX_VALUE_BYTES + 1), b'{"a":"\\u0000"}', '{"name":"Zoë"}'.encode(),
              b'{"a":"u0000"}']


def _batch_values() -> st.SearchStrategy[bytes | None]:
    every_topic = [v for values in VALID.values() for v in values]
    return (st.sampled_from(every_topic) | st.sampled_from(ODD_VALUES)
            | st.binary(max_size=60))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(batch=st.lists(_batch_values(), max_size=12))
def test_the_batch_byte_check_is_exact_when_it_passes(batch: list[bytes | None]) -> None:
    """True only when every value passes ``check_bytes``; False for a batch of passing values
    only when it holds non-ASCII bytes or the text ``u0000`` (the documented conservative case)."""
    each_passes = all(check_bytes(v) is None for v in batch)
    verdict = all_pass_byte_checks(batch)
    if verdict:
        assert each_passes
    elif each_passes:
        joined = b" ".join(v or b"" for v in batch)
        assert not joined.isascii() or b"u0000" in joined
