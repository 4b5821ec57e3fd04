"""Helpers of the producer tests: fast settings and a checker of every stream invariant.

The checker replays a stream (in-process ticks or records read back from Kafka) the way a
consumer would, and fails with a message naming the flight and event on the first violation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from airline_core.config import KafkaSettings
from airline_core.events import (
    BookingCancelled,
    BookingCreated,
    CabinInventorySnapshot,
    Event,
    FlightCancelled,
    FlightDeparted,
    FlightScheduled,
    SeatAssigned,
    SeatReleased,
    encode,
)
from airline_core.topics import Topic, physical_name
from airline_producer.kafka_sink import PRODUCED_TOPICS, tick_of
from airline_producer.settings import Settings
from airline_producer.simulation import Simulation, Tick
from airline_testkit import kafka as kit


def small_settings(**changes: object) -> Settings:
    """A short, fast run: few flights, a short horizon, sparse snapshots."""
    values: dict[str, object] = {"flights": 6, "days": 2, "booking_horizon_days": 21,
                                 "snapshot_interval_minutes": 720}
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


def tick_events(ticks: Iterable[Tick]) -> list[tuple[Topic, Event]]:
    """All events of the ticks, in order."""
    return [item for tick in ticks for item in tick.events]


@dataclass
class FlightView:
    """What a consumer knows about one flight after replaying the stream."""

    scheduled: FlightScheduled
    departure: datetime
    closed: bool = False
    cabin_seats: dict[str, int] = field(default_factory=dict)
    taken: dict[str, tuple[str, str]] = field(default_factory=dict)  # seat -> (booking, cabin)
    departed: bool = False
    bookings: dict[str, BookingCreated] = field(default_factory=dict)
    pending_seats: dict[str, set[str]] = field(default_factory=dict)  # booking -> seats to assign
    pending_releases: dict[str, set[str]] = field(default_factory=dict)
    booked_total: int = 0
    cancelled_bookings: int = 0

    @property
    def load_factor(self) -> float:
        """Seats taken over seats on board."""
        return len(self.taken) / self.scheduled.total_seats


def check_stream(events: Iterable[tuple[Topic | str, Event]]) -> dict[str, FlightView]:
    """Assert every invariant of the producer's stream; return the final view per flight."""
    flights: dict[str, FlightView] = {}
    last_time: dict[tuple[str, str], datetime] = {}
    for topic, event in events:
        fid = event.flight_id
        key = (str(topic), fid)
        assert last_time.get(key, event.event_time) <= event.event_time, \
            f"{fid}: {type(event).__name__} at {event.event_time} goes back in time on {topic}"
        last_time[key] = event.event_time
        if isinstance(event, FlightScheduled):
            assert fid not in flights, f"{fid} scheduled twice"
            flights[fid] = FlightView(event, event.scheduled_departure_time,
                                      cabin_seats={c.cabin_code: c.seat_count
                                                   for c in event.cabins})
            assert sum(b.seats for b in event.fare_buckets) == event.total_seats
            continue
        assert fid in flights, f"{type(event).__name__} for unscheduled flight {fid}"
        view = flights[fid]
        assert not view.closed, f"{type(event).__name__} for {fid} after it departed/cancelled"
        if isinstance(event, FlightDeparted | FlightCancelled):
            assert not view.pending_seats and not view.pending_releases, f"{fid}: seats pending"
            view.closed = True
            view.departed = isinstance(event, FlightDeparted)
        elif isinstance(event, BookingCreated):
            assert event.event_time < view.departure, f"{fid}: booking after departure"
            assert event.booking_id not in view.bookings, f"{fid}: booking id reused"
            _check_price(view.scheduled, event)
            view.bookings[event.booking_id] = event
            view.pending_seats[event.booking_id] = {p.seat_id for p in event.passengers}
            assert len(view.pending_seats[event.booking_id]) == len(event.passengers)
            view.booked_total += 1
        elif isinstance(event, SeatAssigned):
            wanted = view.pending_seats.get(event.booking_id)
            assert wanted is not None and event.seat_id in wanted, \
                f"{fid}: seat {event.seat_id} assigned without its booking"
            assert event.seat_id not in view.taken, f"{fid}: seat {event.seat_id} sold twice"
            assert event.seat_id == f"{event.row}{event.letter}"
            wanted.discard(event.seat_id)
            if not wanted:
                del view.pending_seats[event.booking_id]
            view.taken[event.seat_id] = (event.booking_id, event.cabin_code)
            cabin_taken = sum(1 for _, c in view.taken.values() if c == event.cabin_code)
            assert cabin_taken <= view.cabin_seats[event.cabin_code], f"{fid}: cabin oversold"
            assert len(view.taken) <= view.scheduled.total_seats, f"{fid}: oversold"
        elif isinstance(event, BookingCancelled):
            booking = view.bookings.pop(event.booking_id, None)
            assert booking is not None, f"{fid}: cancellation of unknown/cancelled booking"
            assert {p.seat_id for p in event.passengers} == \
                {p.seat_id for p in booking.passengers}
            view.pending_releases[event.booking_id] = {p.seat_id for p in event.passengers}
            view.cancelled_bookings += 1
        elif isinstance(event, SeatReleased):
            wanted = view.pending_releases.get(event.booking_id)
            assert wanted is not None and event.seat_id in wanted
            assert view.taken.pop(event.seat_id)[0] == event.booking_id, f"{fid}: wrong release"
            wanted.discard(event.seat_id)
            if not wanted:
                del view.pending_releases[event.booking_id]
        elif isinstance(event, CabinInventorySnapshot):
            for cabin in event.cabins:
                free = view.cabin_seats[cabin.cabin_code] - sum(
                    1 for _, c in view.taken.values() if c == cabin.cabin_code)
                for bucket in cabin.fare_buckets:
                    assert bucket.available_seats <= free, f"{fid}: snapshot offers taken seats"
    return flights


def _check_price(scheduled: FlightScheduled, booking: BookingCreated) -> None:
    spec = next(b for b in scheduled.fare_buckets if b.bucket == booking.fare_bucket)
    unit = (spec.price * (100 - booking.discount_percentage) / 100).quantize(Decimal("0.01"))
    assert booking.total_price == unit * len(booking.passengers), \
        f"{booking.flight_id}: price {booking.total_price} != {unit} x {len(booking.passengers)}"
    assert (booking.promo_id is None) == (booking.discount_percentage == 0)
    assert all(p.cabin_code == spec.cabin_code for p in booking.passengers)


def final_load_factors(flights: dict[str, FlightView]) -> list[float]:
    """Load factor at departure of every flight that departed."""
    return [v.load_factor for v in flights.values() if v.departed]


def by_type(events: Iterable[tuple[Topic | str, Event]]) -> dict[str, list[Event]]:
    """Events grouped by type name."""
    grouped: dict[str, list[Event]] = defaultdict(list)
    for _, event in events:
        grouped[type(event).__name__].append(event)
    return grouped


# --------------------------------------------------------------------------- broker helpers
PARTITIONS = 3
RUN = {"seed": 7, "flights": 10, "days": 2, "booking_horizon_days": 21,
       "snapshot_interval_minutes": 720, "transaction_max_ticks": 24}

Records = dict[tuple[str, int], list[tuple[bytes, bytes, int | None]]]


def create_topics(bootstrap: str, prefix: str) -> KafkaSettings:
    """Every registry topic (the producer's and promo_decisions among them) under ``prefix``,
    3 partitions each; the producer's client settings on them."""
    return kit.create_topics(bootstrap, prefix, PARTITIONS)


def read_all(kafka: KafkaSettings) -> Records:
    """Every committed record of the producer's topics, per (logical topic, partition) that
    holds any: (key, value, tick header)."""
    names = {physical_name(t, kafka.topic_prefix): str(t) for t in PRODUCED_TOPICS}
    read = kit.read_to_end(kafka.bootstrap_servers, names, PARTITIONS)
    return {(names[name], p): [(r.key or b"", r.value or b"", tick_of(r.headers))
                               for r in records]
            for name, per_partition in read.items() for p, records in per_partition.items()
            if records}


def per_key(records: Records) -> dict[tuple[str, bytes], list[bytes]]:
    """Values per (topic, key) in partition order: what per-key ordering promises."""
    result: dict[tuple[str, bytes], list[bytes]] = defaultdict(list)
    for (topic, _), items in sorted(records.items()):
        for key, value, _ in items:
            result[(topic, key)].append(value)
    return dict(result)


def expected_per_key() -> dict[tuple[str, bytes], list[bytes]]:
    """The uninterrupted in-process run of the same settings, per (topic, key)."""
    result: dict[tuple[str, bytes], list[bytes]] = defaultdict(list)
    for tick in Simulation(small_settings(**RUN)).run():
        for topic, event in tick.events:
            result[(topic.value, event.key)].append(encode(event))
    return dict(result)
