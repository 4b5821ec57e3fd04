"""A flight's inventory: nested fare-bucket availability and the seat map. Never oversold.

Nesting (standard revenue-management practice): each bucket has its own authorization; a bucket
may sell its own seats and those of every cheaper bucket of its cabin, so its booking limit is
the sum of its authorization and the cheaper ones'. Sales of a bucket and of cheaper buckets
count against that limit, and nothing is sold beyond the cabin's free seats::

    available(b) = min(cabin free seats, limit(b) - sold(b and cheaper buckets))

so K closes after its 90 seats while M and Y still sell, and Y can always sell the last seat.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from airline_producer.network import Aircraft, Bucket, CabinLayout


@dataclass(slots=True)
class CabinInventory:
    """One cabin: its buckets (dearest first), what each sold, and its free seats."""

    layout: CabinLayout
    buckets: tuple[Bucket, ...]
    limits: dict[str, int]
    sold: dict[str, int]
    seat_table: list[tuple[str, int, str]]
    free: list[int] = field(default_factory=list)
    seat_index: dict[str, int] = field(default_factory=dict)
    #: Sales and releases so far: availability changes only with them.
    changes: int = 0

    @classmethod
    def create(cls, layout: CabinLayout, buckets: tuple[Bucket, ...]) -> CabinInventory:
        """An empty cabin; limits nest the buckets' authorizations (dearest first)."""
        limits: dict[str, int] = {}
        running = 0
        for bucket in reversed(buckets):  # cheapest first
            running += bucket.seats
            limits[bucket.code] = running
        seat_table = layout.seats()
        return cls(layout, buckets, limits, dict.fromkeys(limits, 0), seat_table,
                   list(range(len(seat_table))), {s[0]: i for i, s in enumerate(seat_table)})

    @property
    def capacity(self) -> int:
        """Seats in the cabin."""
        return len(self.seat_table)

    @property
    def booked(self) -> int:
        """Seats currently taken."""
        return self.capacity - len(self.free)

    def available(self, code: str) -> int:
        """Seats bucket ``code`` may still sell (nested; never more than the free seats)."""
        sold_nested = 0
        for bucket in reversed(self.buckets):  # cheapest first, up to and including ``code``
            sold_nested += self.sold[bucket.code]
            if bucket.code == code:
                break
        return max(0, min(len(self.free), self.limits[code] - sold_nested))

    def book(self, code: str, count: int, rng: np.random.Generator) -> list[tuple[str, int, str]]:
        """Sell ``count`` seats in bucket ``code`` and assign them: the party sits together
        from a random free seat onwards (next free seats in seat order). Raises ``ValueError``
        if the bucket cannot sell that many, so an oversale can never happen silently."""
        if count <= 0 or self.available(code) < count:
            raise ValueError(f"bucket {code} cannot sell {count} seats")
        start = int(rng.integers(len(self.free)))
        if start + count > len(self.free):
            start = len(self.free) - count
        taken = self.free[start:start + count]
        del self.free[start:start + count]
        self.sold[code] += count
        self.changes += 1
        return [self.seat_table[i] for i in taken]

    def release(self, code: str, seat_ids: list[str]) -> None:
        """Free the seats of a cancelled booking in bucket ``code``."""
        for seat_id in seat_ids:
            ordinal = self.seat_index[seat_id]
            pos = bisect.bisect_left(self.free, ordinal)
            if pos < len(self.free) and self.free[pos] == ordinal:
                raise ValueError(f"seat {seat_id} is already free")
            self.free.insert(pos, ordinal)
        self.sold[code] -= len(seat_ids)
        self.changes += 1


@dataclass(slots=True)
class FlightInventory:
    """All cabins of a flight."""

    cabins: dict[str, CabinInventory]

    @classmethod
    def create(cls, aircraft: Aircraft) -> FlightInventory:
        """An empty aircraft."""
        return cls({layout.code: CabinInventory.create(layout, aircraft.cabin_buckets(layout.code))
                    for layout in aircraft.cabins})

    @property
    def booked(self) -> int:
        """Seats taken on the whole flight."""
        return sum(c.booked for c in self.cabins.values())

    @property
    def capacity(self) -> int:
        """Seats on the flight."""
        return sum(c.capacity for c in self.cabins.values())
