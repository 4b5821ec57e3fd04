"""The functional core: tracking, metrics, decisions, unknown flights, state records."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from airline_core import events as ev
from airline_core.ids import derived_event_id
from airline_core.topics import Topic
from airline_engine.core import CoreConfig, EngineCore, Output
from airline_engine.curve import BookingCurve
from airline_engine.errors import StateFormatError
from airline_engine.policy import Iteration2Policy, PacePolicy
from airline_engine.state import STATE_FORMAT, decode_record, encode_record
from airline_testkit.events import (
    DEPARTURE,
    FLIGHT,
    at,
    booking,
    cancel,
    cancelled,
    departed,
    scheduled,
    snapshot,
)
from airline_testkit.synthetic import generate

CURVE = BookingCurve.parse("0:1,10:0.5,20:0")
REPO_ROOT = Path(__file__).resolve().parents[2]


def _core(policy: Any = None, metrics_minutes: float = 15) -> EngineCore:
    return EngineCore(CoreConfig(
        policy=policy or PacePolicy(target_load_factor=1.0), curve=CURVE,
        target_load_factor=1.0, metrics_interval_s=metrics_minutes * 60,
        unknown_flight_s=3600))


def _apply(core: EngineCore, *events: Any) -> list[Output]:
    topics: dict[type, Topic] = {ev.BookingCreated: Topic.BOOKINGS,
                                 ev.BookingCancelled: Topic.BOOKINGS,
                                 ev.CabinInventorySnapshot: Topic.SEAT_INVENTORY}
    out: list[Output] = []
    for event in events:
        out.extend(core.apply(str(topics.get(type(event), Topic.FLIGHT_LIFECYCLE)), event))
    return out


def _of(out: list[Output], kind: Any) -> list[Any]:
    return [o.event for o in out if isinstance(o.event, kind)]


def test_bookings_and_cancellations_move_seats() -> None:
    core = _core()
    out = _apply(core, scheduled(), booking(1, at(hours=1), seats=2), booking(2, at(hours=2)),
                 booking(2, at(hours=2)),  # the same event again: a no-op
                 booking(2, at(hours=3)),  # the same event id, other content: a conflict
                 cancel(1, at(hours=4), seats=2),
                 cancel(1, at(hours=4), seats=2),  # the same cancellation again: a no-op
                 cancel(9, at(hours=5)))  # a booking never made
    flight = core.flights[FLIGHT]
    assert flight.booked == 1
    assert flight.booked_by_cabin == {"Y": 1}
    assert flight.booked_by_bucket == {"K": 1}
    assert list(flight.parties) == ["b2"]
    assert flight.version == 4  # rejected events and exact repeats change nothing
    assert flight.target_fare_bucket == "K"
    assert [d.reason_code for d in _of(out, ev.DeadLetter)] == [
        "conflicting_duplicate", "unknown_booking"]


def test_business_rules_send_events_to_dead_letter() -> None:
    """Before the sale opens, more seats than the cabin has, a sale after the flight closed,
    another schedule for a scheduled flight: each is a dead letter that changes nothing."""
    core = _core()
    _apply(core, scheduled(seats=4, when=at(hours=1)))
    out = _apply(core, snapshot(at(minutes=30)))  # dated before the opening
    out += _apply(core, booking(1, at(hours=2), seats=3), booking(2, at(hours=3), seats=2),
                  booking(3, at(hours=3), seats=1),
                  scheduled(seats=5, when=at(hours=4)),  # another aircraft: refused
                  scheduled(seats=4, when=at(hours=4)),  # the same schedule again: a no-op
                  departed(at(days=20)), booking(4, at(days=20, minutes=1)),
                  cancel(3, at(days=20, minutes=2)))
    assert [d.reason_code for d in _of(out, ev.DeadLetter)] == [
        "before_sale_opening", "oversold_cabin", "inconsistent_schedule", "flight_closed",
        "flight_closed"]
    flight = core.flights[FLIGHT]
    assert (flight.booked, flight.cabins) == (4, {"Y": 4})
    # parked while its flight is unknown, then replayed when the schedule arrives
    snapshot_letters = _of(_apply(core, snapshot(at(hours=4), "F2"),
                                  scheduled("F2", when=at(hours=5))), ev.DeadLetter)
    assert [d.reason_code for d in snapshot_letters] == ["before_sale_opening"]


def test_metrics_are_rate_limited_in_event_time() -> None:
    core = _core()
    out = _apply(core, scheduled())  # scheduling always reports
    assert len(_of(out, ev.CabinInventoryMetrics)) == 1
    assert _of(_apply(core, booking(1, at(minutes=5))), ev.CabinInventoryMetrics) == []
    metrics = _of(_apply(core, booking(2, at(minutes=15))), ev.CabinInventoryMetrics)
    assert [m.booked_seats for m in metrics] == [2]
    assert metrics[0].event_id == derived_event_id("book-BA210_2025-11-21-2", "metrics")
    assert metrics[0].minutes_to_departure == 20 * 1440 - 15
    assert metrics[0].seats_remaining == 98
    assert metrics[0].bookings_last_hour == 2
    assert metrics[0].state_version == 3
    # A snapshot changes no seat count: nothing pending, nothing emitted.
    assert _of(_apply(core, snapshot(at(hours=2))), ev.CabinInventoryMetrics) == []


def test_a_slow_flight_gets_a_promotion_that_ends_at_departure() -> None:
    """The window opens 14 days out (6 days after T0), where the curve expects 30 seats."""
    core = _core()
    out = _apply(core, scheduled(), booking(1, at(days=1)), snapshot(at(days=5)),
                 snapshot(at(days=6)))
    triggered = _of(out, ev.PromotionTriggered)
    assert len(triggered) == 1
    promo = triggered[0]
    assert promo.event_id == derived_event_id(f"snap-{FLIGHT}-{at(days=6).isoformat()}",
                                              "promotion")
    assert (promo.tier, promo.discount_percentage, promo.target_fare_bucket) == (1, 5, "K")
    assert promo.decision_source == "RULE_ENGINE" and promo.policy_version == "pace-1"
    assert promo.minutes_to_departure == 14 * 1440
    assert promo.current_load_factor == 0.01
    # The decision is reported in the metrics of the same event.
    metrics = _of(out, ev.CabinInventoryMetrics)[-1]
    assert metrics.active_promo_id == promo.promo_id
    assert metrics.active_discount_percentage == 5
    ended = _of(_apply(core, departed()), ev.PromotionEnded)
    assert [(e.promo_id, e.reason) for e in ended] == [(promo.promo_id, "departed")]
    assert core.flights[FLIGHT].promo is None
    assert _of(_apply(core, snapshot(DEPARTURE)), ev.PromotionTriggered) == []


def test_cancelled_flight_ends_its_promotion_and_gets_no_more() -> None:
    core = _core(Iteration2Policy())
    out = _apply(core, scheduled(), snapshot(at(days=15)), cancelled(at(days=16)),
                 snapshot(at(days=17)))
    assert [type(e).__name__ for e in _of(out, ev.PromotionTriggered | ev.PromotionEnded)] == \
        ["PromotionTriggered", "PromotionEnded"]
    assert _of(out, ev.PromotionEnded)[0].reason == "cancelled"


def test_events_wait_for_their_flight_to_be_scheduled() -> None:
    core = _core()
    assert _apply(core, booking(1, at(minutes=1)), booking(2, at(minutes=2))) == []
    assert len(core.flights[FLIGHT].parked) == 2
    assert FLIGHT in core.take_dirty()  # parked events are state: they go to the changelog
    _apply(core, scheduled(when=at(minutes=0)))  # dated before them, arriving after them
    assert core.flights[FLIGHT].booked == 2
    assert core.flights[FLIGHT].parked == []


def test_events_of_a_flight_never_scheduled_expire_to_dead_letter() -> None:
    core = _core()
    _apply(core, scheduled("OTHER_1"), booking(1, at(minutes=1)))
    core.take_dirty()
    assert _apply(core, snapshot(at(minutes=60), "OTHER_1")) == []
    out = _apply(core, snapshot(at(minutes=62), "OTHER_1"))
    letters = _of(out, ev.DeadLetter)
    assert len(letters) == 1
    assert letters[0].flight_id == FLIGHT and "unknown flight" in letters[0].reason
    assert letters[0].source_topic == "bookings"
    assert FLIGHT not in core.flights and FLIGHT in core.take_dirty()  # -> tombstone


def test_same_input_same_output() -> None:
    events = generate(flights=4, seed=3)
    first = _core().apply_all((str(t), e) for t, e in events)
    second = _core().apply_all((str(t), e) for t, e in events)
    assert [ev.encode(o.event) for o in first] == [ev.encode(o.event) for o in second]
    assert _of(first, ev.PromotionTriggered)


def test_state_record_round_trip_and_newer_format_refused() -> None:
    core = _core()
    _apply(core, scheduled(), booking(1, at(hours=1), seats=3), snapshot(at(days=6)))
    flight = core.flights[FLIGHT]
    record = decode_record(encode_record(flight, {"bookings": 7}))
    assert record.format == STATE_FORMAT
    assert record.flight == flight
    assert record.offsets == {"bookings": 7}
    newer = msgspec.json.encode({"format": STATE_FORMAT + 1, "flight": {"flight_id": "x"}})
    with pytest.raises(StateFormatError):
        decode_record(newer)


def test_restored_core_continues_like_an_uninterrupted_one() -> None:
    events = [(str(t), e) for t, e in generate(flights=3, seed=5)]
    half = len(events) // 2
    whole = _core()
    expected = whole.apply_all(events)
    first = _core()
    out = first.apply_all(events[:half])
    second = _core()
    for flight in first.flights.values():
        second.restore(decode_record(encode_record(flight, {})).flight)
    out += second.apply_all(events[half:])
    assert [ev.encode(o.event) for o in out] == [ev.encode(o.event) for o in expected]


def test_closed_flights_are_forgotten_after_the_retention() -> None:
    core = EngineCore(CoreConfig(policy=PacePolicy(), curve=CURVE, closed_retention_s=86400))
    _apply(core, scheduled(), scheduled("OTHER_1"), departed())
    core.take_dirty()
    _apply(core, snapshot(DEPARTURE + timedelta(hours=23), "OTHER_1"))
    assert FLIGHT in core.flights
    _apply(core, snapshot(DEPARTURE + timedelta(hours=25), "OTHER_1"))
    assert FLIGHT not in core.flights and FLIGHT in core.take_dirty()
