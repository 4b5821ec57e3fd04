"""A deterministic synthetic event stream for tests, crash runs and benchmarks.

Test data, so it lives here and not in the engine it feeds. Built directly from
:mod:`airline_core.events` (no dependency on the producer, whose simulation is under test
elsewhere): flights open for sale, book along the engine's default booking curve at a
per-flight demand level (some strong, some weak so the policy has work), cancel a few
bookings, assign seats, publish inventory snapshots and depart. Same seed, same events, same
ids.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from airline_core import events as ev
from airline_core.ids import derive_id
from airline_core.topics import Topic
from airline_engine.curve import BookingCurve
from airline_engine.settings import DEFAULT_CURVE

START = datetime(2025, 11, 1, tzinfo=UTC)
BUCKETS = (("Y", "J", Decimal("520.00"), 30), ("M", "Y", Decimal("180.00"), 40),
           ("K", "Y", Decimal("140.00"), 110))


def _days_out(curve: BookingCurve, share: float) -> float:
    """Inverse of the curve: days out at which ``share`` of final demand is booked."""
    lo, hi = 0.0, curve.days[-1]
    for _ in range(40):
        mid = (lo + hi) / 2
        if curve.share(mid) > share:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def generate(flights: int = 10, seed: int = 7, days: int = 40,
             snapshot_hours: int = 12) -> list[tuple[Topic, Any]]:
    """Events of ``flights`` flights in event-time order (ties: lifecycle first).

    Flights open ``days`` days before departure; bookings follow the default booking curve,
    each flight at a demand level of 40 % to 110 % of the curve's target (weak flights fall
    behind and get promotions). Demand the curve expects before opening books in the first
    minutes (a pre-sale block).
    """
    rng = random.Random(seed)
    curve = BookingCurve.parse(DEFAULT_CURVE)
    out: list[tuple[datetime, int, int, Topic, Any]] = []
    seq = 0

    def add(topic: Topic, event: Any) -> None:
        nonlocal seq
        rank = (Topic.FLIGHT_LIFECYCLE, Topic.BOOKINGS, Topic.SEAT_MAP,
                Topic.SEAT_INVENTORY).index(topic)
        out.append((event.event_time, rank, seq, topic, event))
        seq += 1

    for n in range(flights):
        flight_id = f"BA{200 + n}_{(START + timedelta(days=days)).date()}"
        opened = START + timedelta(minutes=17 * n)
        departure = START + timedelta(days=days, hours=n % 24)
        add(Topic.FLIGHT_LIFECYCLE, ev.FlightScheduled(
            event_id=derive_id(seed, flight_id, "scheduled"), event_time=opened,
            flight_id=flight_id, airline_code="BA", origin_airport="LHR",
            destination_airport="JFK", scheduled_departure_time=departure,
            scheduled_arrival_time=departure + timedelta(hours=8), aircraft_type="A320",
            total_seats=180, cabins=[ev.Cabin(cabin_code="Y", seat_count=150),
                                     ev.Cabin(cabin_code="J", seat_count=30)],
            flight_number=f"BA{200 + n}",
            fare_buckets=[ev.FareBucketSpec(bucket=b, cabin_code=c, price=p, seats=s)
                          for b, c, p, s in BUCKETS]))
        demand = int(150 * rng.choice((0.4, 0.7, 1.0, 1.1)) / 1.6)  # parties of 1.6 on average
        offsets = sorted(_days_out(curve, rng.random())
                         for _ in range(demand))
        booked = 0
        seats_left = {"Y": 150, "J": 30}
        live: list[tuple[str, list[ev.Passenger], str, datetime]] = []
        for i, days_out in enumerate(reversed(offsets)):
            t = max(departure - timedelta(seconds=int(days_out * 86400) + 600),
                    opened + timedelta(minutes=1))
            size = rng.choice((1, 1, 1, 2, 3))
            if booked + size > 180:
                break
            bucket, cabin = rng.choice((("K", "Y"), ("K", "Y"), ("M", "Y"), ("Y", "J")))
            if seats_left[cabin] < size:  # never oversell a cabin: the engine would refuse it
                bucket, cabin = "K", "Y"
                if seats_left[cabin] < size:
                    break
            seats_left[cabin] -= size
            booking_id = derive_id(seed, flight_id, "booking", i)
            pax = [ev.Passenger(passenger_id=derive_id(booking_id, k),
                                seat_id=f"{(booked + k) // 6 + 1}{'ABCDEF'[(booked + k) % 6]}",
                                cabin_code=cabin) for k in range(size)]
            add(Topic.BOOKINGS, ev.BookingCreated(
                event_id=derive_id(booking_id, "created"), event_time=t, flight_id=flight_id,
                booking_id=booking_id, channel="WEB", fare_bucket=bucket, currency="GBP",
                total_price=Decimal("140.00") * size, passengers=pax))
            for k, p in enumerate(pax):
                add(Topic.SEAT_MAP, ev.SeatAssigned(
                    event_id=derive_id(booking_id, "seat", k), event_time=t,
                    flight_id=flight_id, booking_id=booking_id, passenger_id=p.passenger_id,
                    seat_id=p.seat_id, row=(booked + k) // 6 + 1,
                    letter="ABCDEF"[(booked + k) % 6], cabin_code=cabin))
            booked += size
            live.append((booking_id, pax, bucket, t))
            if rng.random() < 0.05 and live:
                cid, cpax, cbucket, _ct = live.pop(rng.randrange(len(live)))
                seats_left[cpax[0].cabin_code] += len(cpax)
                add(Topic.BOOKINGS, ev.BookingCancelled(
                    event_id=derive_id(cid, "cancelled"), event_time=t + timedelta(minutes=1),
                    flight_id=flight_id, booking_id=cid, fare_bucket=cbucket, passengers=cpax))
                booked -= len(cpax)
        t = opened
        while t < departure:
            add(Topic.SEAT_INVENTORY, ev.CabinInventorySnapshot(
                event_id=derive_id(seed, flight_id, "snapshot", t.isoformat()), event_time=t,
                flight_id=flight_id,
                time_to_departure_minutes=int((departure - t).total_seconds() // 60),
                cabins=[ev.CabinAvailability(cabin_code="Y", fare_buckets=[
                    ev.BucketAvailability(bucket="K", available_seats=100, price=Decimal("140"))
                ])]))
            t += timedelta(hours=snapshot_hours)
        add(Topic.FLIGHT_LIFECYCLE, ev.FlightDeparted(
            event_id=derive_id(seed, flight_id, "departed"), event_time=departure,
            flight_id=flight_id, actual_departure_time=departure))
    out.sort(key=lambda item: (item[0], item[1], item[2]))
    return [(topic, event) for _, _, _, topic, event in out]
