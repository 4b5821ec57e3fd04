"""Small hand-made events for the engine's unit tests (times in whole days/hours from T0)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from airline_core import events as ev

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
