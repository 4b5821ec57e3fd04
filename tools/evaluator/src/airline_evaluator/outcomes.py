"""What happened to every flight of a run, and the figures a revenue manager compares.

The ledger reads the same events the warehouse is built from (bookings net of cancellations,
departures, the engine's decisions), so its numbers mean what ``fact_flight_outcome`` means:
final load factor = passengers still booked at departure / seats; revenue = what those
bookings paid; a promotion's cost = what its bookings would have paid at the undiscounted
price, less what they paid.

It also keeps, per flight, the seats booked (net of cancellations) per day before the scheduled
departure, for booking curves; and :func:`paired_change` compares two runs flight by flight.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
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
DAY_SECONDS = 86400
#: Two-sided 95 % quantile of the normal distribution (the CI of the mean paired difference).
Z95 = 1.96
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
    departure: int = 0  # scheduled departure, epoch seconds
    booked_by_day: dict[int, int] = field(default_factory=dict)
    """whole days before the scheduled departure -> seats booked then, less seats cancelled."""

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
                seats = len(event.passengers)
                flight.bookings[event.booking_id] = (seats, event.total_price, given)
                day = _days_out(flight, event.event_time.timestamp())
                flight.booked_by_day[day] = flight.booked_by_day.get(day, 0) + seats
            elif kind is BookingCancelled:
                flight = self.flights[event.flight_id]
                gone = flight.bookings.pop(event.booking_id, None)
                if gone is not None:
                    day = _days_out(flight, event.event_time.timestamp())
                    flight.booked_by_day[day] = flight.booked_by_day.get(day, 0) - gone[0]
            elif kind is FlightScheduled:
                self.flights[event.flight_id] = FlightOutcome(
                    seats=event.total_seats,
                    departure=int(event.scheduled_departure_time.timestamp()))
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
        promotions = sum(f.promotions for f in departed)
        change = paired_change(self, self if baseline is None else baseline)
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
            promotions=promotions,
            promo_passengers=sum(f.promo_passengers for f in departed),
            discount_given=sum((f.discount_given for f in departed), Decimal(0)),
            promoted=_paired(self, baseline) if baseline is not None else None,
            revenue_change_pct=change.pct,
            revenue_change_ci95=change.ci95,
            promotions_per_flight=promotions / len(departed) if departed else 0.0,
        )

    def promoted_ids(self, baseline: Ledger) -> list[str]:
        """The flights this run promoted that departed in both runs."""
        return [fid for fid, f in self.flights.items() if f.promotions and f.status == "departed"
                and baseline.flights.get(fid, FlightOutcome(0)).status == "departed"]

    @staticmethod
    def merged(parts: Iterable[tuple[str, Ledger]]) -> Ledger:
        """One ledger of several runs (e.g. one per seed), flight ids prefixed ``label/``, so
        the same flight of two seeds stays two flights (and pairs with the same prefix)."""
        out = Ledger()
        for label, ledger in parts:
            out.flights.update((f"{label}/{fid}", f) for fid, f in ledger.flights.items())
            out.decisions += ledger.decisions
            out.closed_flights += ledger.closed_flights
        return out


def _days_out(flight: FlightOutcome, at: float) -> int:
    return max(0, int((flight.departure - at) // DAY_SECONDS))


def booking_curve(flights: Sequence[FlightOutcome], days: int) -> list[float]:
    """Mean seats held ``d`` days before departure, for d = 0..days (index d): bookings made
    ``d`` or more whole days out, net of cancellations made by then (0 when no flights)."""
    totals = [0] * (days + 1)
    for flight in flights:
        held = sum(n for d, n in flight.booked_by_day.items() if d > days)
        for d in range(days, -1, -1):
            held += flight.booked_by_day.get(d, 0)
            totals[d] += held
    return [t / len(flights) if flights else 0.0 for t in totals]


@dataclass(frozen=True)
class Change:
    """A run's revenue against a baseline, paired flight by flight (see :func:`paired_change`)."""

    flights: int
    pct: float
    ci95: tuple[float, float] | None
    mean_difference: float = 0.0


def paired_change(run: Ledger, baseline: Ledger) -> Change:
    """The revenue change of ``run`` against ``baseline`` on the flights departed in both.

    Per flight i the difference d_i = revenue_run_i - revenue_baseline_i (the same customers
    in both runs: common random numbers). The change is mean(d) / mean(baseline revenue) in
    percent, and its 95 % interval mean(d) +- 1.96 sd(d) / sqrt(n), divided by the same
    baseline mean: a normal-approximation interval of the paired mean difference (flights are
    independent; the baseline mean is taken as fixed). Identical runs give exactly [0, 0];
    no interval below two flights."""
    pairs = [(float(f.revenue), float(b.revenue)) for fid, f in run.flights.items()
             if f.status == "departed"
             and (b := baseline.flights.get(fid)) is not None and b.status == "departed"]
    n = len(pairs)
    base_mean = statistics.fmean(b for _, b in pairs) if pairs else 0.0
    if not n or base_mean <= 0:
        return Change(n, 0.0, None)
    diffs = [r - b for r, b in pairs]
    mean = statistics.fmean(diffs)
    pct = mean / base_mean * 100
    if n < 2:
        return Change(n, pct, None, mean)
    half = Z95 * statistics.stdev(diffs) / math.sqrt(n)
    return Change(n, pct, ((mean - half) / base_mean * 100, (mean + half) / base_mean * 100),
                  mean)


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
    ids = run.promoted_ids(baseline)
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
    revenue_change_pct: float = 0.0
    """revenue against the baseline, paired per flight (:func:`paired_change`), in percent"""
    revenue_change_ci95: tuple[float, float] | None = None
    promotions_per_flight: float = 0.0  # PromotionTriggered per departed flight
    oracle_share: float | None = None
    """this run's uplift / the oracle's (None without an oracle or if its uplift is <= 0)"""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (money as exact strings)."""
        return {k: _plain(v) for k, v in self.__dict__.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return round(value, 4) + 0.0  # never "-0.0"
    if isinstance(value, Paired):
        return {k: _plain(v) for k, v in value.__dict__.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _quantile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile of an ascending list (nearest rank), 0 when empty."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]
