"""Expected revenue of a cabin to departure under a discount on its cheapest bucket.

A fluid model of the fare ladder, with the same assumptions the engine makes everywhere: the
customers still to come (the demand forecast, at undiscounted fares) each buy the cheapest open
bucket they are willing to pay for; willingness to pay has constant elasticity, so a discount d
on the cheapest bucket multiplies its buyers by ``(1 - d) ** elasticity`` and a customer of the
cheapest fare p0 also pays a dearer p with probability ``(p0 / p) ** -elasticity``. The cheapest
bucket sells until its seats are gone, then the next one, and so on; the discount pays on every
seat the bucket sells (the dilution on customers who would have bought anyway) and brings
customers who would not have flown, and selling the bucket out sooner moves later customers up
the ladder. The expectation is taken over the forecast's uncertainty (Gauss-Hermite, five
points), which is what makes spoilage, the seats likely to fly empty, count.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from airline_engine.forecast import DemandForecast
from airline_engine.state import FlightState

#: Five-point Gauss-Hermite nodes and weights for a standard Normal expectation.
NODES: Final = ((-2.856970, 0.011257), (-1.355626, 0.222076), (0.0, 0.533333),
                (1.355626, 0.222076), (2.856970, 0.011257))


class Rung(NamedTuple):
    """A step of the ladder: a bucket's price and the seats it can still add."""

    price: float
    seats: float


class Outlook(NamedTuple):
    """Expected revenue to departure and expected empty seats at departure."""

    revenue: float
    spoilage: float


def target_cabin(flight: FlightState) -> str:
    """The cabin of the flight's target bucket (the one a promotion discounts)."""
    for b in flight.buckets:
        if b.bucket == flight.target_fare_bucket:
            return b.cabin_code
    return next(iter(flight.cabins), "")


def ladder(flight: FlightState, cabin: str) -> tuple[list[Rung], float]:
    """The cabin's buckets cheapest first with the seats each can still add (nested
    availability, as sold), and the cabin's free seats."""
    free = float(max(flight.cabins.get(cabin, 0) - flight.booked_by_cabin.get(cabin, 0), 0))
    buckets = sorted((b for b in flight.buckets if b.cabin_code == cabin),
                     key=lambda b: (float(b.price), b.bucket))
    rungs: list[Rung] = []
    limit = sold = 0
    previous = 0.0
    for b in buckets:
        limit += b.seats
        sold += flight.booked_by_bucket.get(b.bucket, 0)
        cap = max(min(free, float(limit - sold)), previous)
        rungs.append(Rung(float(b.price), cap - previous))
        previous = cap
    return rungs, free


def walk(rungs: list[Rung], demand: float, discount: float, elasticity: float
         ) -> tuple[float, float]:
    """Revenue and seats taken when ``demand`` customers (at undiscounted fares) meet the
    ladder, with ``discount`` (percent) on the cheapest rung."""
    if not rungs or demand <= 0.0:
        return 0.0, 0.0
    reference = rungs[0].price
    revenue = taken = 0.0
    left = demand
    for index, (price, seats) in enumerate(rungs):
        if left <= 0.0:
            break
        if index == 0:
            rate = (1.0 - discount / 100.0) ** elasticity
            paid = price * (1.0 - discount / 100.0)
        else:
            rate = (reference / price) ** -elasticity if price > 0 else 1.0
            paid = price
        if rate <= 0.0:
            continue
        sold = min(seats, left * rate)
        revenue += sold * paid
        taken += sold
        left -= sold / rate
    return revenue, taken


def outlook(rungs: list[Rung], free: float, forecast: DemandForecast, discount: float,
            elasticity: float) -> Outlook:
    """Expected revenue and spoilage over the forecast's uncertainty."""
    revenue = spoilage = 0.0
    for z, weight in NODES:
        earned, taken = walk(rungs, max(forecast.remaining + z * forecast.sd, 0.0), discount,
                             elasticity)
        revenue += weight * earned
        spoilage += weight * max(free - taken, 0.0)
    return Outlook(revenue, spoilage)
