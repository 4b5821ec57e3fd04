"""The events tests and benchmarks build by hand, from :mod:`airline_core.events` alone.

Three kinds, each with its own reference instant so none depends on another's dates:

- single events around one flight (:data:`FLIGHT`, departing :data:`DEPARTURE`, 20 days after
  :data:`T0`), each with a readable fixed id: what the engine's unit tests assert on;
- :func:`lake_event`: one valid event for any lake topic, with a scattered event time (from
  :data:`LAKE_T0`): volume for the lake writer, where only bytes and coordinates matter;
- :func:`make_world`: a few flights with every event type and the facts a test checks (from
  :data:`WORLD_T0`): what an ETL run must load.

The longer, curve-shaped stream of many flights is :mod:`airline_testkit.synthetic`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from airline_core import events as ev
from airline_core.ids import derive_id
from airline_core.topics import Topic

# --------------------------------------------------------------------------- one flight
T0 = datetime(2025, 11, 1, tzinfo=UTC)
FLIGHT = "BA210_2025-11-21"
DEPARTURE = T0 + timedelta(days=20)


def at(days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
    """T0 plus an offset."""
    return T0 + timedelta(days=days, hours=hours, minutes=minutes)


def scheduled(flight_id: str = FLIGHT, seats: int = 100, when: datetime = T0,
              departure: datetime = DEPARTURE) -> ev.FlightScheduled:
    """A 100-seat, one-cabin flight departing 20 days after T0; K is the cheapest bucket."""
    return ev.FlightScheduled(
        event_id=f"sched-{flight_id}", event_time=when, flight_id=flight_id, airline_code="BA",
        origin_airport="LHR", destination_airport="JFK", scheduled_departure_time=departure,
        scheduled_arrival_time=departure + timedelta(hours=8), aircraft_type="A320",
        total_seats=seats, cabins=[ev.Cabin(cabin_code="Y", seat_count=seats)],
        fare_buckets=[ev.FareBucketSpec(bucket="M", cabin_code="Y", price=Decimal("180"),
                                        seats=seats // 2),
                      ev.FareBucketSpec(bucket="K", cabin_code="Y", price=Decimal("140"),
                                        seats=seats // 2)])


def booking(n: int, when: datetime, seats: int = 1, flight_id: str = FLIGHT
            ) -> ev.BookingCreated:
    """Booking number ``n`` of ``seats`` passengers."""
    return ev.BookingCreated(
        event_id=f"book-{flight_id}-{n}", event_time=when, flight_id=flight_id,
        booking_id=f"b{n}", channel="WEB", fare_bucket="K", currency="GBP",
        total_price=Decimal("140") * seats,
        passengers=[ev.Passenger(passenger_id=f"p{n}-{i}", seat_id=f"{n}{'ABCDEF'[i % 6]}",
                                 cabin_code="Y") for i in range(seats)])


def cancel(n: int, when: datetime, seats: int = 1, flight_id: str = FLIGHT
           ) -> ev.BookingCancelled:
    """Cancel booking ``n``."""
    made = booking(n, when, seats, flight_id)
    return ev.BookingCancelled(event_id=f"cancel-{flight_id}-{n}", event_time=when,
                               flight_id=flight_id, booking_id=made.booking_id,
                               fare_bucket="K", passengers=made.passengers)


def snapshot(when: datetime, flight_id: str = FLIGHT) -> ev.CabinInventorySnapshot:
    """An inventory snapshot (a tick of event time for the flight)."""
    return ev.CabinInventorySnapshot(
        event_id=f"snap-{flight_id}-{when.isoformat()}", event_time=when, flight_id=flight_id,
        time_to_departure_minutes=0, cabins=[])


def departed(when: datetime = DEPARTURE, flight_id: str = FLIGHT) -> ev.FlightDeparted:
    """The flight leaves."""
    return ev.FlightDeparted(event_id=f"dep-{flight_id}", event_time=when, flight_id=flight_id,
                             actual_departure_time=when)


def cancelled(when: datetime, flight_id: str = FLIGHT) -> ev.FlightCancelled:
    """The flight is cancelled."""
    return ev.FlightCancelled(event_id=f"cxl-{flight_id}", event_time=when, flight_id=flight_id)


# --------------------------------------------------------------------------- lake volume
LAKE_T0 = datetime(2025, 11, 27, 20, 0, tzinfo=UTC)


def lake_event(topic: Topic, n: str, rng: random.Random) -> ev.Event:
    """A valid event for ``topic`` with a deterministic id (from ``n``) and an event time
    scattered over four days (not monotonic: the lake files by event date)."""
    flight = f"BA{rng.randrange(20):03d}_2025-11-30"
    common: dict[str, Any] = {"event_id": derive_id("lake-test", n), "flight_id": flight,
                              "event_time": LAKE_T0 + timedelta(minutes=rng.randrange(4 * 24 * 60))}
    passengers = [ev.Passenger(passenger_id="p1", seat_id="12C", cabin_code="Y")]
    if topic == Topic.FLIGHT_LIFECYCLE:
        return ev.CheckInOpened(**common)
    if topic == Topic.BOOKINGS:
        return ev.BookingCancelled(**common, booking_id=n, fare_bucket="K",
                                   passengers=passengers)
    if topic == Topic.SEAT_INVENTORY:
        return ev.CabinInventorySnapshot(**common, time_to_departure_minutes=600, cabins=[])
    if topic == Topic.SEAT_MAP:
        return ev.SeatAssigned(**common, booking_id=n, passenger_id="p1", seat_id="12C",
                               row=12, letter="C", cabin_code="Y")
    if topic == Topic.INVENTORY_METRICS:
        return ev.CabinInventoryMetrics(**common, booked_seats=1, total_seats=180,
                                        load_factor=0.01, minutes_to_departure=600)
    if topic == Topic.PROMO_DECISIONS:
        return ev.PromotionEnded(**common, promo_id=n, decision_source="RULE_ENGINE",
                                 reason="recovered")
    return ev.DeadLetter(**common, source_topic="bookings", source_partition=0,
                         source_offset=1, reason="test", component="test",
                         original_value_b64="e30=")


# --------------------------------------------------------------------------- a small world
WORLD_T0 = datetime(2025, 11, 20, 8, 0, tzinfo=UTC)


@dataclass
class World:
    """Events per topic plus the facts a test asserts on."""

    by_topic: dict[str, list[ev.Event]] = field(default_factory=dict)
    passengers: int = 0  # booked passengers (fact_booking rows)
    cancelled_passengers: int = 0
    departed: set[str] = field(default_factory=set)

    def add(self, topic: str, event: ev.Event) -> None:
        """Append ``event`` to ``topic``."""
        self.by_topic.setdefault(topic, []).append(event)

    def count(self, topic: str) -> int:
        """Events of ``topic``."""
        return len(self.by_topic.get(topic, []))


def make_world(flights: int = 3, bookings_per_flight: int = 6, tag: str = "w") -> World:
    """A small deterministic world exercising every event type (``tag`` keeps the flight and
    event ids of two worlds apart)."""
    w = World()
    t0 = WORLD_T0
    for f in range(flights):
        fid = f"BA{200 + f}_{tag}_2025-11-28"
        dep = datetime(2025, 11, 28, 10, 0, tzinfo=UTC) + timedelta(hours=f)

        def eid(*parts: object, fid: str = fid) -> str:
            return derive_id("test", tag, fid, *parts)

        w.add("flight_lifecycle", ev.FlightScheduled(
            event_id=eid("sched"), event_time=t0, flight_id=fid, airline_code="BA",
            origin_airport="LHR", destination_airport="JFK" if f % 2 else "CDG",
            scheduled_departure_time=dep, scheduled_arrival_time=dep + timedelta(hours=2),
            aircraft_type="A320", total_seats=180, flight_number=f"BA{200 + f}",
            cabins=[ev.Cabin(cabin_code="J", seat_count=30), ev.Cabin(cabin_code="Y",
                                                                        seat_count=150)]))
        w.add("flight_lifecycle", ev.CheckInOpened(
            event_id=eid("ci"), event_time=dep - timedelta(hours=24), flight_id=fid))
        if f == 1:
            w.add("flight_lifecycle", ev.FlightDelayed(
                event_id=eid("delay"), event_time=dep - timedelta(hours=2), flight_id=fid,
                new_departure_time=dep + timedelta(minutes=30), delay_minutes=30, reason="ATC"))
        if f == flights - 1 and flights > 2:
            w.add("flight_lifecycle", ev.FlightCancelled(
                event_id=eid("cancel"), event_time=dep - timedelta(hours=1), flight_id=fid,
                reason="weather"))
        else:
            w.add("flight_lifecycle", ev.FlightDeparted(
                event_id=eid("dep"), event_time=dep, flight_id=fid, actual_departure_time=dep))
            w.departed.add(fid)
        promo_id = eid("promo")
        promo_start = t0 + timedelta(days=3)
        w.add("promo_decisions", ev.PromotionTriggered(
            event_id=eid("promo-t"), event_time=promo_start, flight_id=fid,
            decision_source="RULE_ENGINE", current_load_factor=0.4, minutes_to_departure=5000,
            target_fare_bucket="K", discount_percentage=10, promo_id=promo_id, tier=1,
            reason="slow pace", inputs={"pace": 0.5}, policy_version="v1"))
        w.add("promo_decisions", ev.PromotionEnded(
            event_id=eid("promo-e"), event_time=promo_start + timedelta(hours=12), flight_id=fid,
            promo_id=promo_id, decision_source="RULE_ENGINE", reason="recovered"))
        booked = 0
        for b in range(bookings_per_flight):
            bt = t0 + timedelta(days=1, hours=10 * b)
            n = 1 + b % 3
            bid = eid("booking", b)
            pax = [ev.Passenger(passenger_id=eid("pax", b, p), seat_id=f"{10 + b}{'ABC'[p]}",
                                cabin_code="Y") for p in range(n)]
            in_promo = promo_start <= bt < promo_start + timedelta(hours=12)
            w.add("bookings", ev.BookingCreated(
                event_id=eid("bc", b), event_time=bt, flight_id=fid, booking_id=bid,
                channel="WEB", fare_bucket="K", currency="GBP",
                total_price=Decimal("100.00") * n + Decimal("0.01"), passengers=pax,
                segment="leisure", promo_id=promo_id if in_promo else None,
                discount_percentage=10 if in_promo else 0))
            w.passengers += n
            booked += n
            for p in pax:
                w.add("seat_map", ev.SeatAssigned(
                    event_id=eid("sa", b, p.passenger_id), event_time=bt, flight_id=fid,
                    booking_id=bid, passenger_id=p.passenger_id, seat_id=p.seat_id,
                    row=10 + b, letter=p.seat_id[-1], cabin_code="Y"))
            if b == 1:
                w.add("bookings", ev.BookingCancelled(
                    event_id=eid("bx", b), event_time=bt + timedelta(hours=1), flight_id=fid,
                    booking_id=bid, fare_bucket="K", passengers=pax, reason="changed plans"))
                w.cancelled_passengers += n
                booked -= n
            w.add("inventory_metrics", ev.CabinInventoryMetrics(
                event_id=eid("m", b), event_time=bt + timedelta(minutes=1), flight_id=fid,
                booked_seats=booked, total_seats=180, load_factor=round(booked / 180, 4),
                minutes_to_departure=int((dep - bt).total_seconds() // 60),
                seats_remaining=180 - booked, bookings_last_hour=1, bookings_last_day=2,
                expected_booked_to_date=1.5 * b, forecast_load_factor=0.8,
                active_discount_percentage=10 if in_promo else 0,
                active_promo_id=promo_id if in_promo else None, state_version=b))
            w.add("seat_inventory", ev.CabinInventorySnapshot(
                event_id=eid("snap", b), event_time=bt, flight_id=fid,
                time_to_departure_minutes=int((dep - bt).total_seconds() // 60),
                cabins=[ev.CabinAvailability(cabin_code="Y", fare_buckets=[
                    ev.BucketAvailability(bucket="K", available_seats=100, price=Decimal(140))])]))
        if f == 0:
            w.add("dead_letter", ev.DeadLetter(
                event_id=eid("dl"), event_time=t0, flight_id=fid, source_topic="bookings",
                source_partition=0, source_offset=7, reason="undecodable JSON", component="engine",
                original_value_b64="e30=", original_key_b64=None, headers=[("h", None)]))
    return w
