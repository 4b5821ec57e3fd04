"""The simulation: a generator of ticks of events in simulated time. No Kafka, no wall clock.

``Simulation(settings, lookup).run()`` yields one :class:`Tick` per ``tick_minutes`` of simulated
time, from the first flight opening for sale to the last departure, each with its events in time
order. The only input from outside is ``lookup(flight_id, tick_start)``: the live discount of a
flight, asked at every tick boundary, so a decision applies from the first boundary at or after
its effective time, never earlier. With no lookup the loop is open.

Randomness (common random numbers): every flight has its own generators seeded from
``SeedSequence([seed, key(flight_id)])``
(demand, operations, booking-time draws, promotion draws), so adding flights never shifts another
flight's draws and a discount changes only the flight it touches. Base demand is drawn when a
flight opens; the extra customers a discount brings come from the flight's promotion generator,
so a promotion never changes the base arrivals. Customers a discount of up to 35 % could bring
are drawn when the flight opens too (:data:`LATENT_PRICE_FLOOR`), and every party carries its
own cancellation draws: two runs that differ only in their promotions meet exactly the same
customers, and differ only in who books what at which price.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import numpy as np
from airline_core.events import (
    BoardingStarted,
    BookingCancelled,
    BookingCreated,
    BucketAvailability,
    Cabin,
    CabinAvailability,
    CabinInventorySnapshot,
    CheckInOpened,
    Event,
    FareBucketSpec,
    FlightCancelled,
    FlightDelayed,
    FlightDeparted,
    FlightScheduled,
    Passenger,
    SeatAssigned,
    SeatReleased,
)
from airline_core.ids import derive_id
from airline_core.topics import Topic

from airline_producer.demand import (
    DAY_SECONDS,
    DemandModel,
    Stream,
    draw_arrivals,
    draw_stream_demands,
)
from airline_producer.inventory import CabinInventory, FlightInventory
from airline_producer.network import CURRENCY, Flight, build_schedule, epoch_seconds
from airline_producer.settings import Settings

CHECK_IN_BEFORE: Final = 24 * 3600
BOARDING_BEFORE: Final = 40 * 60
#: A booking is never cancelled in the last 3 hours (that would be a no-show, not modelled).
CANCEL_CUTOFF: Final = 3 * 3600
HUNDRED: Final = Decimal(100)
CENT: Final = Decimal("0.01")
MAX_DEMAND_DISCOUNT: Final = 0.9
#: Customers willing to pay from this share of the cabin's lowest fare up to that fare are drawn
#: when the flight opens, whether or not a discount ever reaches them ("latent" customers: they
#: book only at a price they accept). So every discount down to 35 % meets the same customers
#: in every run (common random numbers: a policy and the oracle are compared on identical
#: draws); only deeper discounts draw the rest of their customers tick by tick.
LATENT_PRICE_FLOOR: Final = 0.65

# Action kinds, in the order they run when they share a second (the rank).
_OPEN, _FLIGHT_CANCEL, _CHECKIN, _DELAY, _BOARDING, _DEPART, _CANCEL, _ARRIVAL, _SNAPSHOT = range(9)


@dataclass(frozen=True, slots=True)
class ActiveDiscount:
    """A live promotion on one flight: ``percentage`` off ``bucket``'s price."""

    promo_id: str
    bucket: str
    percentage: int


#: ``lookup(flight_id, tick_start_epoch_seconds)``: the discount live at that instant, if any.
DiscountLookup = Callable[[str, int], ActiveDiscount | None]


@dataclass(frozen=True, slots=True)
class Tick:
    """One tick of simulated time, [start, end) in epoch seconds, with its events in order."""

    index: int
    start: int
    end: int
    events: list[tuple[Topic, Event]]


@dataclass(slots=True)
class _Booking:
    bucket: str
    cabin: str
    passengers: list[tuple[str, tuple[str, int, str]]]


@dataclass(slots=True)
class FlightState:
    """Everything the simulation knows about one flight while it runs."""

    flight: Flight
    inventory: FlightInventory
    streams: list[Stream]
    mean_parties: list[float]
    rng_book: np.random.Generator
    rng_promo: np.random.Generator
    departure: int
    discount: ActiveDiscount | None = None
    closed: bool = False
    cancelled: bool = False
    bookings: dict[str, _Booking] = field(default_factory=dict)
    booking_seq: int = 0
    event_seq: int = 0
    #: cabin -> ((its inventory's changes, the discount), the availability last snapshot).
    availability: dict[str, tuple[tuple[int, ActiveDiscount | None], CabinAvailability]] = \
        field(default_factory=dict)


def flight_key(flight_id: str) -> int:
    """A stable 64-bit number of a flight id, for seeding its generators."""
    return int.from_bytes(hashlib.blake2b(flight_id.encode(), digest_size=8).digest(), "big")


def flight_rngs(seed: int, flight_id: str) -> list[np.random.Generator]:
    """The flight's four generators: demand, operations, booking-time, promotion."""
    children = np.random.SeedSequence([seed, flight_key(flight_id)]).spawn(4)
    return [np.random.Generator(np.random.PCG64(c)) for c in children]


def _dt(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def discounted(price: Decimal, percentage: int) -> Decimal:
    """``price`` less ``percentage`` %, to the penny."""
    return (price * (HUNDRED - percentage) / HUNDRED).quantize(CENT)


class Simulation:
    """The whole simulated world of one run; :meth:`run` yields its ticks."""

    def __init__(self, settings: Settings, lookup: DiscountLookup | None = None,
                 model: DemandModel | None = None, flights: list[Flight] | None = None) -> None:
        self.settings = settings
        self.lookup = lookup
        self.model = model or DemandModel(
            horizon_days=settings.booking_horizon_days,
            target_load_factor=settings.target_load_factor, demand_cv=settings.demand_cv,
            elasticities={"business": settings.elasticity_business,
                          "leisure": settings.elasticity_leisure})
        self.flights = flights if flights is not None else build_schedule(
            settings.flights, settings.days, settings.first_departure_date)
        self.seed = settings.seed
        self.tick_seconds = settings.tick_minutes * 60
        self.snapshot_seconds = settings.snapshot_interval_minutes * 60
        self.horizon_seconds = round(self.model.horizon_days * DAY_SECONDS)
        first_open = min(f.departure for f in self.flights) - self.horizon_seconds
        self.origin = first_open - first_open % self.tick_seconds
        self.states: dict[int, FlightState] = {}
        self.counts: Counter[str] = Counter()
        self._heap: list[tuple[int, int, int, int, int, Any]] = []
        self._seq = 0
        self._open_order = sorted(self.flights, key=lambda f: (f.departure, f.index))
        aircraft = self.flights[0].aircraft
        self._cabin_seats = [(c.code, c.seat_count) for c in aircraft.cabins]
        self._buckets = {b.code: b for b in aircraft.buckets}
        self._reference = {c.code: float(min(b.price for b in aircraft.cabin_buckets(c.code)))
                           for c in aircraft.cabins}

    # ------------------------------------------------------------------ public
    def tick_start(self, index: int) -> int:
        """Epoch seconds at which tick ``index`` starts."""
        return self.origin + index * self.tick_seconds

    def live_flight_ids(self) -> list[str]:
        """Flights open for sale and not yet departed or cancelled."""
        return [s.flight.flight_id for s in self.states.values() if not s.closed]

    def run(self) -> Iterator[Tick]:
        """Yield every tick until every flight has departed or been cancelled."""
        for flight in self._open_order:
            self._push(flight.departure - self.horizon_seconds, _OPEN, flight.index, None)
        pending = 0  # flights in _open_order not yet scheduled for snapshots
        live: list[int] = []  # flights opened (or opening this tick) and not closed
        index = 0
        while self._heap or live:
            start = self.tick_start(index)
            end = start + self.tick_seconds
            while pending < len(self._open_order) and \
                    self._open_order[pending].departure - self.horizon_seconds < end:
                live.append(self._open_order[pending].index)
                pending += 1
            live = [i for i in live if not (i in self.states and self.states[i].closed)]
            if self.lookup is not None:
                self._apply_discounts(live, start, end)
            self._push_snapshots(live, start, end)
            events: list[tuple[Topic, Event]] = []
            heap = self._heap
            while heap and heap[0][0] < end:
                time, kind, _, flight_index, _, payload = heapq.heappop(heap)
                self._process(time, kind, flight_index, payload, events)
            yield Tick(index, start, end, events)
            index += 1

    # ------------------------------------------------------------------ scheduling
    def _push(self, time: int, kind: int, flight_index: int, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (time, kind, self._seq, flight_index, 0, payload))

    def _push_snapshots(self, live: list[int], start: int, end: int) -> None:
        step = self.snapshot_seconds
        first = start + (-start) % step
        for ts in range(first, end, step):
            for i in live:
                flight = self.flights[i]
                if flight.departure - self.horizon_seconds <= ts:
                    self._push(ts, _SNAPSHOT, i, None)

    def _apply_discounts(self, live: list[int], start: int, end: int) -> None:
        assert self.lookup is not None
        for i in live:
            state = self.states.get(i)
            if state is None or state.closed:
                continue
            discount = self.lookup(state.flight.flight_id, start)
            state.discount = discount
            if discount is not None and discount.percentage > 0:
                self._draw_promotion_arrivals(state, discount, start, end)

    def _draw_promotion_arrivals(self, state: FlightState, discount: ActiveDiscount,
                                 start: int, end: int) -> None:
        """The customers a discount adds in [start, end): those whose willingness to pay lies
        between the discounted price and the cabin's reference (lowest) fare."""
        # Undiscounted prices are never below the cabin's lowest fare (the reference), so
        # only the target bucket, open and discounted below the reference, adds customers.
        bucket = self._buckets.get(discount.bucket)
        if bucket is None:
            return
        reference = self._reference[bucket.cabin]
        price = float(bucket.price) * (100 - discount.percentage) / 100
        if price >= reference:
            return
        cabin = state.inventory.cabins[bucket.cabin]
        if cabin.available(bucket.code) <= 0:
            return
        # The constant-elasticity model has no meaning at a zero price: a discount beyond
        # MAX_DEMAND_DISCOUNT still shows in the price but adds no more demand.
        floor = max(price, reference * (1.0 - MAX_DEMAND_DISCOUNT))
        latent = reference * LATENT_PRICE_FLOOR
        if floor >= latent:
            return  # every customer this price reaches was drawn at opening
        days_from = (state.departure - start) / DAY_SECONDS
        days_to = max(0.0, (state.departure - end) / DAY_SECONDS)
        ratio = floor / reference
        for s_index, stream in enumerate(state.streams):
            if stream.cabin != bucket.cabin:
                continue
            share_from = stream.curve.booked_by_scalar(days_from)
            share_to = stream.curve.booked_by_scalar(days_to)
            if share_to <= share_from:
                continue
            extra = ratio ** stream.elasticity - LATENT_PRICE_FLOOR ** stream.elasticity
            mean = state.mean_parties[s_index] * extra * (share_to - share_from)
            # Draw the count first: most ticks bring no extra customer, and then nothing else
            # needs drawing (this keeps the closed loop as fast as the open one).
            n = int(state.rng_promo.poisson(mean)) if mean > 0 else 0
            if n == 0:
                continue
            arrivals = draw_arrivals(
                state.rng_promo, stream, 0.0, state.departure, share_from, share_to,
                wtp_floor=floor, wtp_low=(LATENT_PRICE_FLOOR / ratio) ** stream.elasticity, n=n)
            self._push_arrivals(state, s_index, arrivals, lower=start)

    def _push_arrivals(self, state: FlightState, s_index: int, arrivals: Any,
                       lower: int = 0, latent: bool = False) -> None:
        idx = state.flight.index
        for t, size, wtp, channel, (u_cancel, u_when) in zip(
                arrivals.times.tolist(), arrivals.sizes.tolist(), arrivals.wtp.tolist(),
                arrivals.channels.tolist(), arrivals.cancel_draws.tolist(), strict=True):
            self._push(max(int(t), lower), _ARRIVAL, idx,
                       (s_index, size, wtp, channel, u_cancel, u_when, latent))

    # ------------------------------------------------------------------ processing
    def _process(self, time: int, kind: int, i: int, payload: Any,
                 out: list[tuple[Topic, Event]]) -> None:
        if kind == _OPEN:
            self._open(time, self.flights[i], out)
            return
        state = self.states[i]
        if state.closed:
            return
        if kind == _ARRIVAL:
            self._arrival(time, state, payload, out)
        elif kind == _SNAPSHOT:
            self._snapshot(time, state, out)
        elif kind == _CANCEL:
            self._cancel_booking(time, state, payload, out)
        elif kind == _CHECKIN:
            self._emit(out, Topic.FLIGHT_LIFECYCLE, CheckInOpened(**self._common(state, time)))
        elif kind == _DELAY:
            new_departure, minutes = payload
            state.departure = new_departure
            self._emit(out, Topic.FLIGHT_LIFECYCLE, FlightDelayed(
                **self._common(state, time), new_departure_time=_dt(new_departure),
                delay_minutes=minutes, reason="operational"))
        elif kind == _BOARDING:
            self._emit(out, Topic.FLIGHT_LIFECYCLE, BoardingStarted(**self._common(state, time)))
        elif kind == _DEPART:
            self._emit(out, Topic.FLIGHT_LIFECYCLE, FlightDeparted(
                **self._common(state, time), actual_departure_time=_dt(time)))
            state.closed = True
            self.counts["flights_departed"] += 1
        elif kind == _FLIGHT_CANCEL:
            self._emit(out, Topic.FLIGHT_LIFECYCLE, FlightCancelled(
                **self._common(state, time), reason="operational"))
            state.closed = state.cancelled = True
            self.counts["flights_cancelled"] += 1

    def _common(self, state: FlightState, time: int) -> dict[str, Any]:
        state.event_seq += 1
        flight_id = state.flight.flight_id
        return {"event_id": derive_id("producer", self.seed, flight_id, state.event_seq),
                "event_time": _dt(time), "flight_id": flight_id}

    def _emit(self, out: list[tuple[Topic, Event]], topic: Topic, event: Event) -> None:
        out.append((topic, event))

    def _open(self, time: int, flight: Flight, out: list[tuple[Topic, Event]]) -> None:
        rng_demand, rng_ops, rng_book, rng_promo = flight_rngs(self.seed, flight.flight_id)
        streams = self.model.streams(self._cabin_seats)
        demands = draw_stream_demands(rng_demand, streams, self.model.demand_cv,
                                      self.model.stream_correlation)
        state = FlightState(
            flight=flight, inventory=FlightInventory.create(flight.aircraft), streams=streams,
            mean_parties=[d / s.mean_party for d, s in zip(demands, streams, strict=True)],
            rng_book=rng_book, rng_promo=rng_promo, departure=flight.departure)
        self.states[flight.index] = state
        aircraft = flight.aircraft
        self._emit(out, Topic.FLIGHT_LIFECYCLE, FlightScheduled(
            **self._common(state, time), airline_code=flight.airline_code,
            origin_airport=flight.origin, destination_airport=flight.destination,
            scheduled_departure_time=_dt(flight.departure),
            scheduled_arrival_time=_dt(flight.arrival), aircraft_type=aircraft.type_code,
            total_seats=aircraft.total_seats,
            cabins=[Cabin(cabin_code=c.code, seat_count=c.seat_count) for c in aircraft.cabins],
            flight_number=flight.flight_number,
            fare_buckets=[FareBucketSpec(bucket=b.code, cabin_code=b.cabin, price=b.price,
                                         seats=b.seats) for b in aircraft.buckets],
            currency=CURRENCY))
        for s_index, stream in enumerate(streams):
            reference = float(min(b.price for b in aircraft.cabin_buckets(stream.cabin)))
            arrivals = draw_arrivals(rng_demand, stream, state.mean_parties[s_index],
                                     flight.departure, wtp_floor=reference)
            self._push_arrivals(state, s_index, arrivals, lower=time)
            if self.lookup is None:
                continue  # open loop: no discount will ever reach them
            # Customers below the lowest fare, down to LATENT_PRICE_FLOOR of it.
            extra = LATENT_PRICE_FLOOR ** stream.elasticity - 1.0
            latent = draw_arrivals(
                rng_promo, stream, state.mean_parties[s_index] * extra, flight.departure,
                wtp_floor=reference * LATENT_PRICE_FLOOR,
                wtp_low=LATENT_PRICE_FLOOR ** -stream.elasticity)
            self._push_arrivals(state, s_index, latent, lower=time, latent=True)
        self._schedule_operations(time, flight, rng_ops)

    def _schedule_operations(self, opened: int, flight: Flight, rng: np.random.Generator
                             ) -> None:
        """Check-in, boarding and departure; a delay or a cancellation at the configured rates.
        Always the same number of draws, so outcomes never shift later draws."""
        u_cancel, u_delay, u_when, u_minutes = rng.random(4)
        dep = flight.departure
        i = flight.index
        if u_cancel < self.settings.flight_cancellation_rate:
            # Announced 2 to 48 hours before departure.
            announced = max(opened + 1, dep - int(2 * 3600 + u_when * 46 * 3600))
            if announced > dep - CHECK_IN_BEFORE:
                self._push(dep - CHECK_IN_BEFORE, _CHECKIN, i, None)
            self._push(announced, _FLIGHT_CANCEL, i, None)
            return
        actual = dep
        self._push(dep - CHECK_IN_BEFORE, _CHECKIN, i, None)
        if u_delay < self.settings.flight_delay_rate:
            # At least 15 minutes (the usual threshold), mean about 45, at most 6 hours.
            minutes = min(360, 15 + int(-30.0 * np.log1p(-u_minutes)))
            actual = dep + minutes * 60
            announced = dep - int(30 * 60 + u_when * 150 * 60)  # 30 min to 3 h before
            self._push(announced, _DELAY, i, (actual, minutes))
        self._push(actual - BOARDING_BEFORE, _BOARDING, i, None)
        self._push(actual, _DEPART, i, None)

    def _price(self, state: FlightState, code: str, base: Decimal) -> Decimal:
        discount = state.discount
        if discount is not None and discount.bucket == code and discount.percentage > 0:
            return discounted(base, discount.percentage)
        return base

    def _arrival(self, time: int, state: FlightState, payload: Any,
                 out: list[tuple[Topic, Event]]) -> None:
        s_index, size, wtp, channel, u_cancel, u_when, latent = payload
        if time >= state.departure - BOARDING_BEFORE:
            return
        if latent and state.discount is None:
            return  # below every undiscounted fare: not a customer today
        stream = state.streams[s_index]
        cabin = state.inventory.cabins[stream.cabin]
        options = sorted(
            ((self._price(state, b.code, b.price), -n, b) for n, b in enumerate(cabin.buckets)),
            key=lambda o: (o[0], o[1]))
        for price, _, bucket in options:
            if float(price) > wtp:
                break
            if cabin.available(bucket.code) >= size:
                self._book(time, state, stream, bucket.code, price, size, channel,
                           (u_cancel, u_when), out)
                return
        if not latent:
            self.counts["walk_aways"] += 1

    def _book(self, time: int, state: FlightState, stream: Stream, code: str, price: Decimal,
              size: int, channel: int, cancel_draws: tuple[float, float],
              out: list[tuple[Topic, Event]]) -> None:
        flight_id = state.flight.flight_id
        state.booking_seq += 1
        booking_id = derive_id("booking", self.seed, flight_id, state.booking_seq)
        seats = state.inventory.cabins[stream.cabin].book(code, size, state.rng_book)
        passengers = [(derive_id("passenger", self.seed, flight_id, state.booking_seq, k), seat)
                      for k, seat in enumerate(seats)]
        state.bookings[booking_id] = _Booking(code, stream.cabin, passengers)
        discount = state.discount
        promo = discount if discount is not None and discount.bucket == code \
            and discount.percentage > 0 else None
        self._emit(out, Topic.BOOKINGS, BookingCreated(
            **self._common(state, time), booking_id=booking_id,
            channel=stream.channels[channel], fare_bucket=code, currency=CURRENCY,
            total_price=price * size,
            passengers=[Passenger(passenger_id=pid, seat_id=seat[0], cabin_code=stream.cabin)
                        for pid, seat in passengers],
            segment=stream.segment, promo_id=promo.promo_id if promo else None,
            discount_percentage=promo.percentage if promo else 0))
        for pid, (seat_id, row, letter) in passengers:
            self._emit(out, Topic.SEAT_MAP, SeatAssigned(
                **self._common(state, time), booking_id=booking_id, passenger_id=pid,
                seat_id=seat_id, row=row, letter=letter, cabin_code=stream.cabin))
        self.counts["bookings"] += 1
        self.counts["passengers"] += size
        self.counts[f"bookings_{stream.segment}"] += 1
        u_cancel, u_when = cancel_draws
        last = state.flight.departure - CANCEL_CUTOFF
        if u_cancel < self.settings.booking_cancellation_rate and last > time + 1:
            self._push(time + 1 + int(u_when * (last - time - 1)), _CANCEL,
                       state.flight.index, booking_id)

    def _cancel_booking(self, time: int, state: FlightState, booking_id: str,
                        out: list[tuple[Topic, Event]]) -> None:
        booking = state.bookings.pop(booking_id)
        state.inventory.cabins[booking.cabin].release(
            booking.bucket, [seat[0] for _, seat in booking.passengers])
        self._emit(out, Topic.BOOKINGS, BookingCancelled(
            **self._common(state, time), booking_id=booking_id, fare_bucket=booking.bucket,
            passengers=[Passenger(passenger_id=pid, seat_id=seat[0], cabin_code=booking.cabin)
                        for pid, seat in booking.passengers],
            reason="customer"))
        for pid, (seat_id, row, letter) in booking.passengers:
            self._emit(out, Topic.SEAT_MAP, SeatReleased(
                **self._common(state, time), booking_id=booking_id, passenger_id=pid,
                seat_id=seat_id, row=row, letter=letter, cabin_code=booking.cabin))
        self.counts["cancellations"] += 1

    def _snapshot(self, time: int, state: FlightState, out: list[tuple[Topic, Event]]) -> None:
        cabins = [self._availability(state, code, cabin)
                  for code, cabin in state.inventory.cabins.items()]
        self._emit(out, Topic.SEAT_INVENTORY, CabinInventorySnapshot(
            **self._common(state, time),
            time_to_departure_minutes=(state.departure - time) // 60, cabins=cabins,
            currency=CURRENCY))

    def _availability(self, state: FlightState, code: str,
                      cabin: CabinInventory) -> CabinAvailability:
        """A cabin's buckets, seats and current prices. Built again only after a sale, a
        release or a change of discount: most snapshots find a cabin as the one before did,
        and events are immutable, so the last one is shared (building one object per bucket
        was a third of the simulation's time)."""
        key = (cabin.changes, state.discount)
        cached = state.availability.get(code)
        if cached is not None and cached[0] == key:
            return cached[1]
        built = CabinAvailability(cabin_code=code, fare_buckets=[
            BucketAvailability(bucket=b.code, available_seats=cabin.available(b.code),
                               price=self._price(state, b.code, b.price))
            for b in cabin.buckets])
        state.availability[code] = (key, built)
        return built


def simulate(settings: Settings, lookup: DiscountLookup | None = None,
             model: DemandModel | None = None) -> tuple[Simulation, list[Tick]]:
    """Run a whole simulation in process (tests, benchmarks); returns it and all its ticks."""
    sim = Simulation(settings, lookup, model)
    return sim, list(sim.run())


__all__ = ["ActiveDiscount", "DiscountLookup", "Simulation", "Tick", "epoch_seconds", "simulate"]
