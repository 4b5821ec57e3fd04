"""The expected booking curve: share of final demand already booked by days before departure.

Default points come from the illustrative mixed curve in ``../shared/domain.md`` (10 % of seats
sold 60 days out, 45 % at 30, 80 % at 7, 95 % at 1; logosorthos aviation articles), with the
curve starting at 0 some 120 days out. Between points the share is linear in days out.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from dataclasses import dataclass


@dataclass(frozen=True)
class BookingCurve:
    """Piecewise-linear cumulative curve ``F(days_out)``; F is 1 at or after departure."""

    days: tuple[float, ...]  # increasing
    shares: tuple[float, ...]  # non-increasing as days grow

    @classmethod
    def parse(cls, text: str) -> BookingCurve:
        """Parse ``"days:share,..."`` (any order); raises ValueError with a readable reason."""
        points: list[tuple[float, float]] = []
        for part in text.split(","):
            day_text, sep, share_text = part.strip().partition(":")
            if not sep:
                raise ValueError(f"curve point {part!r} is not days:share")
            try:
                day, share = float(day_text), float(share_text)
            except ValueError:
                raise ValueError(f"curve point {part!r} is not numeric") from None
            if day < 0 or not 0.0 <= share <= 1.0:
                raise ValueError(f"curve point {part!r}: days >= 0 and 0 <= share <= 1")
            points.append((day, share))
        points.sort()
        if len(points) < 2 or len({d for d, _ in points}) != len(points):
            raise ValueError("a curve needs at least two points with distinct days")
        shares = [s for _, s in points]
        if any(a < b for a, b in itertools.pairwise(shares)):
            raise ValueError("shares must not grow with days out (the curve is cumulative)")
        return cls(tuple(d for d, _ in points), tuple(shares))

    def share(self, days_out: float) -> float:
        """Expected share of final bookings already on hand ``days_out`` days before departure."""
        days = self.days
        if days_out <= days[0]:
            return 1.0 if days_out <= 0 else self.shares[0]
        if days_out >= days[-1]:
            return self.shares[-1]
        i = bisect_left(days, days_out)
        d0, d1 = days[i - 1], days[i]
        s0, s1 = self.shares[i - 1], self.shares[i]
        return s0 + (s1 - s0) * (days_out - d0) / (d1 - d0)
