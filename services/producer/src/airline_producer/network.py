"""The schedule: which flights exist, when they leave, what they carry and what they cost.

Plain values only. The default network is a hub (London Heathrow, airline code ``BA`` as in the
user's ``BA210_2025-11-28``) with short-haul routes flown by the user's A320 (180 seats, cabins
Y 150 / J 30). The Y cabin's buckets are the user's Y 220 / M 180 / K 140 GBP with the user's
Y 20 / M 40 seats and K taking the rest of the cabin (90), so the authorizations sum to the cabin;
the J cabin has one bucket J. Route list and block times are illustrative (a teaching network).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Final

from airline_core.errors import ConfigError

AIRLINE_CODE: Final = "BA"
HUB: Final = "LHR"
CURRENCY: Final = "GBP"

#: (destination, block minutes) of the hub's short-haul routes (illustrative).
ROUTES: Final[tuple[tuple[str, int], ...]] = (
    ("CDG", 75), ("AMS", 80), ("FRA", 95), ("MAD", 140), ("BCN", 130), ("FCO", 150),
    ("MUC", 110), ("ZRH", 100), ("GVA", 95), ("DUB", 80), ("EDI", 85), ("GLA", 85),
    ("MAN", 60), ("CPH", 115), ("ARN", 150), ("OSL", 130), ("BRU", 70), ("LIS", 160),
    ("ATH", 220), ("VIE", 130), ("PRG", 115), ("BER", 110), ("HEL", 170), ("WAW", 150),
    ("BUD", 150), ("NCE", 120), ("MXP", 115), ("VCE", 125), ("LYS", 95), ("HAM", 95),
)
#: Departures per route per day before more routes are used ("several departures a day").
DEPARTURES_PER_ROUTE: Final = 3
MAX_DEPARTURES_PER_ROUTE: Final = 20
FIRST_DEPARTURE_MINUTE: Final = 6 * 60  # 06:00 UTC
LAST_DEPARTURE_MINUTE: Final = 21 * 60 + 30  # 21:30 UTC


@dataclass(frozen=True, slots=True)
class CabinLayout:
    """A cabin: its code, seat rows and seat letters (seats = rows x letters)."""

    code: str
    first_row: int
    rows: int
    letters: str

    @property
    def seat_count(self) -> int:
        """Seats in the cabin."""
        return self.rows * len(self.letters)

    def seats(self) -> list[tuple[str, int, str]]:
        """Every seat as (seat id, row, letter), front to back, in letter order."""
        return [(f"{row}{letter}", row, letter)
                for row in range(self.first_row, self.first_row + self.rows)
                for letter in self.letters]


@dataclass(frozen=True, slots=True)
class Bucket:
    """A fare bucket: its cabin, base price and own seat authorization (nested, see inventory)."""

    code: str
    cabin: str
    price: Decimal
    seats: int


@dataclass(frozen=True, slots=True)
class Aircraft:
    """An aircraft type with its cabins and fare buckets (buckets dearest first per cabin)."""

    type_code: str
    cabins: tuple[CabinLayout, ...]
    buckets: tuple[Bucket, ...]

    @property
    def total_seats(self) -> int:
        """Seats on board."""
        return sum(c.seat_count for c in self.cabins)

    def cabin_buckets(self, cabin: str) -> tuple[Bucket, ...]:
        """The buckets of one cabin, dearest first."""
        return tuple(b for b in self.buckets if b.cabin == cabin)


#: The user's A320: 180 seats, J 30 (rows 1-5) and Y 150 (rows 6-30), six abreast.
A320: Final = Aircraft(
    type_code="A320",
    cabins=(CabinLayout("J", 1, 5, "ABCDEF"), CabinLayout("Y", 6, 25, "ABCDEF")),
    buckets=(
        # J price is illustrative (short-haul business fare); Y/M/K are the user's fares.
        Bucket("J", "J", Decimal("480.00"), 30),
        Bucket("Y", "Y", Decimal("220.00"), 20),
        Bucket("M", "Y", Decimal("180.00"), 40),
        Bucket("K", "Y", Decimal("140.00"), 90),
    ),
)


@dataclass(frozen=True, slots=True)
class Flight:
    """One departure. Times are integer seconds since the Unix epoch (UTC) for speed."""

    index: int
    flight_id: str
    flight_number: str
    airline_code: str
    origin: str
    destination: str
    departure: int
    arrival: int
    aircraft: Aircraft


def epoch_seconds(day: date, minute_of_day: int = 0) -> int:
    """Seconds since the epoch of ``day`` at ``minute_of_day`` UTC."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return int(midnight.timestamp()) + minute_of_day * 60


def build_schedule(flights: int, days: int, start: date, aircraft: Aircraft = A320
                   ) -> list[Flight]:
    """``flights`` departures over ``days`` days from ``start``, in departure order.

    Each day gets an even share (the last day the remainder); a day's flights use as few hub
    routes as give each route about ``DEPARTURES_PER_ROUTE`` departures, spread over the day.
    Flight numbers are per route and slot, so ``BA210`` is the same route and slot every day.
    """
    if flights <= 0 or days <= 0:
        raise ConfigError("flights and days must be positive")
    per_day = math.ceil(flights / days)
    n_routes = min(len(ROUTES), math.ceil(per_day / DEPARTURES_PER_ROUTE))
    deps = math.ceil(per_day / n_routes)
    if deps > MAX_DEPARTURES_PER_ROUTE:
        raise ConfigError(f"{flights} flights over {days} days needs {deps} departures per route "
                          f"a day (at most {MAX_DEPARTURES_PER_ROUTE}); use more --days")
    span = LAST_DEPARTURE_MINUTE - FIRST_DEPARTURE_MINUTE
    slots: list[tuple[int, int, int]] = []  # (minute of day, route, departure index)
    for route in range(n_routes):
        for dep in range(deps):
            base = FIRST_DEPARTURE_MINUTE + (span * dep) // deps
            minute = base + (route * 7) % max(1, span // deps)
            slots.append((minute, route, dep))
    slots.sort()
    result: list[Flight] = []
    for day_index in range(days):
        day = start + timedelta(days=day_index)
        todays = slots[: min(per_day, flights - len(result))]
        for minute, route, dep in todays:
            destination, block = ROUTES[route]
            number = f"{AIRLINE_CODE}{100 + route * 2 * MAX_DEPARTURES_PER_ROUTE + dep * 2}"
            departure = epoch_seconds(day, minute)
            result.append(Flight(
                index=len(result), flight_id=f"{number}_{day.isoformat()}",
                flight_number=number, airline_code=AIRLINE_CODE, origin=HUB,
                destination=destination, departure=departure,
                arrival=departure + block * 60, aircraft=aircraft))
        if len(result) >= flights:
            break
    return result
