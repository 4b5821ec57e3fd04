"""What happened to every flight of a run, and the figures a revenue manager compares.

The ledger reads the same events the warehouse is built from (bookings net of cancellations,
departures, the engine's decisions), so its numbers mean what ``fact_flight_outcome`` means:
final load factor = passengers still booked at departure / seats; revenue = what those
bookings paid; a promotion's cost = what its bookings would have paid at the undiscounted
price, less what they paid.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from airline_core.events import (
    BookingCancelled,
    BookingCreated,
    FlightCancelled,
    FlightDeparted,
    FlightScheduled,
    PromotionTriggered,
)
from airline_core.topics import Topic

HUNDRED = Decimal(100)
#: The load-factor band the simulator is calibrated to without promotions (IATA's ~83 %).
BAND = (0.75, 0.90)


@dataclass
class FlightOutcome:
    """One flight: its seats, its live bookings, its promotions, how it ended."""

    seats: int
    bookings: dict[str, tuple[int, Decimal, Decimal]] = field(default_factory=dict)
    """booking id -> (passengers, price paid, discount given) for bookings not cancelled."""
    promotions: int = 0
    max_discount: int = 0
    status: str = "open"  # open | departed | cancelled

    @property
    def passengers(self) -> int:
        return sum(p for p, _, _ in self.bookings.values())

    @property
    def load_factor(self) -> float:
        return self.passengers / self.seats if self.seats else 0.0

    @property
    def revenue(self) -> Decimal:
        return sum((paid for _, paid, _ in self.bookings.values()), Decimal(0))

    @property
    def discount_given(self) -> Decimal:
        return sum((given for _, _, given in self.bookings.values()), Decimal(0))

    @property
    def promo_passengers(self) -> int:
        return sum(p for p, _, given in self.bookings.values() if given)


class Ledger:
    """Accumulates outcomes from the event stream of one run."""

    def __init__(self) -> None:
        self.flights: dict[str, FlightOutcome] = {}
        self.decisions: list[Any] = []
        self.closed_flights = 0

    def record_inputs(self, events: Iterable[tuple[Topic, Any]]) -> None:
        """Take the producer's events of one tick (flight lifecycle and bookings matter)."""
        for _, event in events:
            kind = type(event)
            if kind is BookingCreated:
                flight = self.flights[event.flight_id]
                given = Decimal(0)
                if event.promo_id and event.discount_percentage:
                    full = event.total_price * HUNDRED / (HUNDRED - event.discount_percentage)
                    given = (full - event.total_price).quantize(Decimal("0.01"))
                flight.bookings[event.booking_id] = (len(event.passengers), event.total_price,
                                                     given)
            elif kind is BookingCancelled:
                self.flights[event.flight_id].bookings.pop(event.booking_id, None)
            elif kind is FlightScheduled:
                self.flights[event.flight_id] = FlightOutcome(seats=event.total_seats)
            elif kind is FlightDeparted:
                self.flights[event.flight_id].status = "departed"
                self.closed_flights += 1
            elif kind is FlightCancelled:
                self.flights[event.flight_id].status = "cancelled"
                self.closed_flights += 1

    def record_decision(self, event: Any) -> None:
        """Take one of the engine's ``promo_decisions`` events."""
        self.decisions.append(event)
        if isinstance(event, PromotionTriggered):
            flight = self.flights.get(event.flight_id)
            if flight is not None:
                flight.promotions += 1
                flight.max_discount = max(flight.max_discount, event.discount_percentage)

    def summary(self, name: str, baseline: Ledger | None = None) -> PolicyResult:
        """The figures of this run, labelled ``name``; with ``baseline`` (the open-loop run on
        the same demand draws) also the paired comparison on the flights this run promoted."""
        departed = [f for f in self.flights.values() if f.status == "departed"]
        factors = sorted(f.load_factor for f in departed)
        promoted = [f for f in departed if f.promotions]
        low, high = BAND
        return PolicyResult(
            name=name,
            flights=len(self.flights),
            departed=len(departed),
            mean_load_factor=statistics.fmean(factors) if factors else 0.0,
            p10_load_factor=_quantile(factors, 0.10),
            in_band_share=(sum(low <= lf <= high for lf in factors) / len(factors)
                           if factors else 0.0),
            revenue=sum((f.revenue for f in departed), Decimal(0)),
            flights_promoted=len(promoted),
            promotions=sum(f.promotions for f in departed),
            promo_passengers=sum(f.promo_passengers for f in departed),
            discount_given=sum((f.discount_given for f in departed), Decimal(0)),
            promoted=_paired(self, baseline) if baseline is not None else None,
        )


@dataclass(frozen=True)
class Paired:
    """The flights a policy promoted (departed in both runs), with and without its decisions:
    what the discounts did to exactly the flights they were meant for."""

    flights: int
    load_factor: float
    baseline_load_factor: float
    revenue: Decimal
    baseline_revenue: Decimal


def _paired(run: Ledger, baseline: Ledger) -> Paired:
    ids = [fid for fid, f in run.flights.items() if f.promotions and f.status == "departed"
           and baseline.flights.get(fid, FlightOutcome(0)).status == "departed"]
    mine = [run.flights[fid] for fid in ids]
    theirs = [baseline.flights[fid] for fid in ids]
    return Paired(
        flights=len(ids),
        load_factor=statistics.fmean(f.load_factor for f in mine) if ids else 0.0,
        baseline_load_factor=statistics.fmean(f.load_factor for f in theirs) if ids else 0.0,
        revenue=sum((f.revenue for f in mine), Decimal(0)),
        baseline_revenue=sum((f.revenue for f in theirs), Decimal(0)))


@dataclass(frozen=True)
class PolicyResult:
    """The comparison figures of one run (departed flights only)."""

    name: str
    flights: int
    departed: int
    mean_load_factor: float
    p10_load_factor: float
    in_band_share: float
    revenue: Decimal
    flights_promoted: int
    promotions: int
    promo_passengers: int
    discount_given: Decimal
    promoted: Paired | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (money as exact strings)."""
        return {k: _plain(v) for k, v in self.__dict__.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, Paired):
        return {k: _plain(v) for k, v in value.__dict__.items()}
    return value


def _quantile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile of an ascending list (nearest rank), 0 when empty."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]
