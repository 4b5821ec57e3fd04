"""Demand: booking curves, the arrival process, party sizes, willingness to pay and elasticity.

Design, after the simulators cited in ``../shared/domain.md`` (PassengerSim, PODS):

* Each flight draws a total demand per stream (cabin x segment) from a Normal around a base, with
  a coefficient of variation (the "k-factor", about 0.1 to 0.15) and a common component shared
  by the flight's streams (correlation), then spreads it over the horizon by the segment's
  cumulative booking curve F: party arrivals form a non-homogeneous Poisson process with rate
  D * F'(t), sampled exactly by inverting F.
* Willingness to pay is Pareto with shape ``-elasticity`` above the cabin's lowest fare. This
  is what makes the constant-elasticity model exact: the number of customers willing to pay
  price p is then proportional to p ** elasticity, so a discount d on the cheapest open fare
  raises the arrival rate of buyers by (1 - d) ** elasticity (IATA's multiplier), and every
  customer still buys the cheapest open bucket within their own willingness to pay.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

DAY_SECONDS: Final = 86_400

#: PassengerSim 3-market example network (domain.md "Booking curves"): share of final demand
#: already booked at x days out. Leisure has no published 3-day point; it is interpolated.
BUSINESS_CURVE: Final = ((63, 0.06), (31, 0.25), (14, 0.50), (7, 0.70), (3, 0.95), (1, 1.00))
LEISURE_CURVE: Final = ((63, 0.17), (31, 0.53), (14, 0.85), (7, 0.90), (1, 1.00))

#: IATA Economics Briefing No. 9 (2008, after InterVISTAS 2007), short-haul.
ELASTICITY_BUSINESS: Final = -0.7
ELASTICITY_LEISURE: Final = -1.5

#: Party size distributions (illustrative: business mostly travels alone, leisure in pairs and
#: families). Means 1.25 and 1.89 passengers.
BUSINESS_PARTY: Final = ((1, 0.80), (2, 0.15), (3, 0.05))
LEISURE_PARTY: Final = ((1, 0.45), (2, 0.35), (3, 0.08), (4, 0.10), (5, 0.02))

#: Share of each cabin's demand by segment (illustrative short-haul mix).
CABIN_SEGMENT_MIX: Final = {"Y": (("business", 0.25), ("leisure", 0.75)),
                            "J": (("business", 0.85), ("leisure", 0.15))}

#: Channels with shares per segment (the user's WEB plus the other usual ones; illustrative).
CHANNELS: Final = {
    "business": (("WEB", 0.45), ("APP", 0.20), ("AGENT", 0.30), ("CALL_CENTER", 0.05)),
    "leisure": (("WEB", 0.60), ("APP", 0.30), ("AGENT", 0.08), ("CALL_CENTER", 0.02)),
}

#: Correlation of the demand noise of a flight's streams (one flight being popular lifts both
#: segments); illustrative.
STREAM_CORRELATION: Final = 0.5

#: Unconstrained demand is sized as target load factor x seats x this, so the *realised* mean
#: load factor (after spill when cheap buckets close and after cancellations) lands on the
#: target at the defaults. Calibrated with ``tests/producer/test_statistics.py``'s large run.
DEMAND_CALIBRATION: Final = 1.17


class BookingCurve:
    """A cumulative booking curve F(days out): 0 when the flight opens, 1 at departure.

    Piecewise linear through the published points, from (horizon, 0). A horizon shorter than
    the curve's first point truncates the curve and rescales it so it still ends at 1.
    """

    def __init__(self, points: Sequence[tuple[float, float]], horizon_days: float) -> None:
        published = sorted([(0.0, 1.0)] + [(float(d), float(s)) for d, s in points if d > 0])
        horizon = float(horizon_days)
        if horizon > published[-1][0]:
            pts = [*published, (horizon, 0.0)]
        else:
            start = float(np.interp(horizon, [d for d, _ in published], [s for _, s in published]))
            kept = [(d, s) for d, s in published if d < horizon] + [(horizon, start)]
            scale = 1.0 - start if start < 1.0 else 1.0
            pts = [(d, (s - start) / scale) for d, s in kept]
        self.days = np.array([d for d, _ in pts])
        self.shares = np.array([s for _, s in pts])
        self.horizon_days = float(horizon_days)
        # For the inverse: shares increasing with days decreasing.
        self._inv_shares = self.shares[::-1].copy()
        self._inv_days = self.days[::-1].copy()
        self._days_list = [float(d) for d in self.days]
        self._shares_list = [float(x) for x in self.shares]

    def booked_by(self, days_out: float | np.ndarray) -> float | np.ndarray:
        """F: share of final demand booked when ``days_out`` days remain."""
        result = np.interp(days_out, self.days, self.shares)
        return float(result) if np.ndim(result) == 0 else result

    def booked_by_scalar(self, days_out: float) -> float:
        """F for one value, without numpy's per-call overhead (called per flight and tick)."""
        days = self._days_list
        if days_out <= days[0]:
            return self._shares_list[0]
        if days_out >= days[-1]:
            return self._shares_list[-1]
        i = bisect.bisect_right(days, days_out)
        d0, d1 = days[i - 1], days[i]
        s0, s1 = self._shares_list[i - 1], self._shares_list[i]
        return s0 + (s1 - s0) * (days_out - d0) / (d1 - d0)

    def days_out_at(self, share: np.ndarray) -> np.ndarray:
        """F^-1: the days out at which cumulative share ``share`` is reached (for sampling)."""
        return np.interp(share, self._inv_shares, self._inv_days)

    def share_within(self, days: float) -> float:
        """Share of demand booked in the last ``days`` days before departure: 1 - F(days)."""
        return 1.0 - float(self.booked_by(days))


@dataclass(frozen=True)
class Stream:
    """One demand stream of a flight: customers of a segment wanting a cabin."""

    cabin: str
    segment: str
    mean_passengers: float
    curve: BookingCurve
    elasticity: float
    party_sizes: np.ndarray
    party_probs: np.ndarray
    channels: tuple[str, ...]
    channel_probs: np.ndarray

    @property
    def mean_party(self) -> float:
        """Mean party size."""
        return float(np.dot(self.party_sizes, self.party_probs))

    @property
    def mean_parties(self) -> float:
        """Mean number of party arrivals (at the base price)."""
        return self.mean_passengers / self.mean_party


def elasticity_multiplier(price_ratio: float, elasticity: float) -> float:
    """Constant-elasticity demand multiplier for a price at ``price_ratio`` of the reference:
    ``price_ratio ** elasticity`` (a 10 % cut at -1.5 gives about 1.17; domain.md)."""
    return float(price_ratio ** elasticity)


def pareto_wtp(rng: np.random.Generator, floor: float, elasticity: float, n: int,
               low: float = 0.0) -> np.ndarray:
    """``n`` willingness-to-pay draws, Pareto(scale ``floor``, shape ``-elasticity``).

    ``low`` > 0 restricts to draws below ``floor / low ** (1 / shape)``: uniform u in (low, 1]
    gives ``floor * u ** (1 / elasticity)``; used for the extra customers a discount brings.
    """
    u = rng.uniform(low, 1.0, n)
    u = np.where(u <= 0.0, np.nextafter(0.0, 1.0), u)
    return floor * u ** (1.0 / elasticity)


@dataclass(frozen=True)
class DemandModel:
    """Every demand parameter; defaults from domain.md, overridable for tests and what-ifs."""

    horizon_days: float = 90.0
    target_load_factor: float = 0.83
    demand_cv: float = 0.12
    stream_correlation: float = STREAM_CORRELATION
    calibration: float = DEMAND_CALIBRATION
    curves: dict[str, Sequence[tuple[float, float]]] = field(
        default_factory=lambda: {"business": BUSINESS_CURVE, "leisure": LEISURE_CURVE})
    elasticities: dict[str, float] = field(
        default_factory=lambda: {"business": ELASTICITY_BUSINESS, "leisure": ELASTICITY_LEISURE})
    party_sizes: dict[str, Sequence[tuple[int, float]]] = field(
        default_factory=lambda: {"business": BUSINESS_PARTY, "leisure": LEISURE_PARTY})
    cabin_mix: dict[str, Sequence[tuple[str, float]]] = field(
        default_factory=lambda: dict(CABIN_SEGMENT_MIX))
    channels: dict[str, Sequence[tuple[str, float]]] = field(
        default_factory=lambda: dict(CHANNELS))

    def curve(self, segment: str) -> BookingCurve:
        """The booking curve of a segment over this model's horizon."""
        return BookingCurve(self.curves[segment], self.horizon_days)

    def streams(self, cabin_seats: Sequence[tuple[str, int]]) -> list[Stream]:
        """The demand streams of a flight with these cabins (code, seats), in a fixed order."""
        curves = {seg: self.curve(seg) for seg in self.curves}
        result = []
        for cabin, seats in cabin_seats:
            for segment, share in self.cabin_mix[cabin]:
                sizes = self.party_sizes[segment]
                chans = self.channels[segment]
                result.append(Stream(
                    cabin=cabin, segment=segment,
                    mean_passengers=self.target_load_factor * seats * self.calibration * share,
                    curve=curves[segment], elasticity=self.elasticities[segment],
                    party_sizes=np.array([s for s, _ in sizes]),
                    party_probs=_normalised([p for _, p in sizes]),
                    channels=tuple(c for c, _ in chans),
                    channel_probs=_normalised([p for _, p in chans])))
        return result


def _normalised(weights: Sequence[float]) -> np.ndarray:
    arr = np.array(weights, dtype=float)
    return arr / arr.sum()


def draw_stream_demands(rng: np.random.Generator, streams: Sequence[Stream], cv: float,
                        correlation: float) -> list[float]:
    """A flight's total demand (passengers) per stream: Normal around the base, k-factor
    ``cv``, with a component common to the flight's streams; never negative."""
    common = rng.standard_normal()
    own = rng.standard_normal(len(streams))
    mix = np.sqrt(max(0.0, 1.0 - correlation * correlation))
    return [max(0.0, s.mean_passengers * (1.0 + cv * (correlation * common + mix * z)))
            for s, z in zip(streams, own, strict=True)]


@dataclass(frozen=True, slots=True)
class Arrivals:
    """Party arrivals of one stream: times (epoch seconds), sizes, willingness to pay per seat,
    channel indices, and two uniforms per party that decide whether and when its booking is
    later cancelled (drawn with the party, so whether one party books never changes another's
    cancellation: common random numbers across policies)."""

    times: np.ndarray
    sizes: np.ndarray
    wtp: np.ndarray
    channels: np.ndarray
    cancel_draws: np.ndarray


def draw_arrivals(rng: np.random.Generator, stream: Stream, mean_parties: float,
                  departure: int, share_from: float = 0.0, share_to: float = 1.0,
                  wtp_floor: float = 1.0, wtp_low: float = 0.0, n: int | None = None
                  ) -> Arrivals:
    """Poisson(mean_parties * (share_to - share_from)) party arrivals in the part of the curve
    between cumulative shares ``share_from`` and ``share_to``, exactly by inverting F
    (``n`` given: exactly that many, when the caller drew the count itself)."""
    if n is None:
        n = int(rng.poisson(max(0.0, mean_parties * (share_to - share_from))))
    shares = rng.uniform(share_from, share_to, n)
    days_out = stream.curve.days_out_at(shares)
    times = departure - np.ceil(days_out * DAY_SECONDS).astype(np.int64)
    sizes = rng.choice(stream.party_sizes, size=n, p=stream.party_probs)
    wtp = pareto_wtp(rng, wtp_floor, stream.elasticity, n, wtp_low)
    channels = rng.choice(len(stream.channels), size=n, p=stream.channel_probs)
    return Arrivals(times, sizes, wtp, channels, rng.random((n, 2)))
