"""The learned price response: how much a discount lifts bookings, estimated from what happens.

The engine is never told the market's elasticity. It assumes the constant-elasticity form of
``../shared/domain.md`` (a discount ``d`` multiplies demand by ``(1 - d) ** elasticity``) and
estimates the elasticity from its own promotions: while a promotion is live and its bucket still
sells, it counts the seats actually booked in the cabin (*observed*) against the seats its
forecast expected without a discount over the same time (*expected*). Evidence is pooled over
every flight of the partition, per cabin and days-out band, and per discount level.

The estimate of a band is the posterior mode of a Poisson model,

    observed[d] ~ Poisson(expected[d] * (1 - d) ** elasticity)
    elasticity  ~ Normal(prior, prior_sd)

found by a few Newton steps, where ``expected`` is first corrected by the control group's
ratio (below). With no evidence it is the prior: the midpoint of IATA's
short-haul segment values (-0.7 business, -1.5 leisure; InterVISTAS 2007, domain.md), -1.1,
with a standard deviation of 0.4 that covers the published route- and firm-level range.

The control group. The policy discounts flights whose forecast looks weak, and a forecast that
looks weak is, on average, too weak (regression to the mean): their later bookings beat the
forecast with or without a discount, which alone would read as a strong price response. So a
share of the flights the policy would promote is held out (never discounted; see
:class:`airline_engine.revenue_policy.RevenuePolicy`), and their bookings over the same kind of
stretch, against the same forecast, give the *control ratio* observed / expected per cabin and
band: how far the forecast errs on exactly the flights the policy picks. It divides out of the
promoted flights' evidence, and the policy scales its forecasts by it. Shrunk towards 1 by
:data:`CONTROL_PSEUDO_SEATS`, it is 1 until the control group has shown something.

The statistics live in the changelog (:data:`RESPONSE_KEY`), so a restart keeps what was
learned.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Final

import msgspec

#: Changelog key of a partition's price-response statistics (never a flight id: flight ids are
#: contract-checked events' keys, and this one starts with characters they never hold).
RESPONSE_KEY: Final = "\x00price-response"
#: Days-out bands (lower bounds) the response is estimated for: close-in demand is more
#: business and reacts less than demand weeks out.
BANDS: Final = (0.0, 3.0, 7.0, 14.0, 21.0)
PRIOR_ELASTICITY: Final = -1.1
PRIOR_SD: Final = 0.4
#: The estimate never leaves this range (a discount never lowers demand; IATA's most elastic
#: published value is -2.34).
ELASTICITY_RANGE: Final = (-3.0, 0.0)
#: Expected seats of pseudo-evidence at ratio 1 in the control ratio (a few flights' worth).
CONTROL_PSEUDO_SEATS: Final = 30.0


def band_of(days_out: float) -> int:
    """Index of the days-out band ``days_out`` falls in."""
    return max(bisect_right(BANDS, days_out) - 1, 0)


class Evidence(msgspec.Struct, array_like=True):
    """Seats observed and expected (without discount) under one discount level."""

    discount: int
    observed: float = 0.0
    expected: float = 0.0


class ResponseStats(msgspec.Struct):
    """Everything learned, keyed ``"<cabin>/<band>"``; ``version`` grows with every update."""

    evidence: dict[str, list[Evidence]] = {}
    #: The held-out flights' seats, keyed and listed like ``evidence`` (by the discount they
    #: would have had).
    control: dict[str, list[Evidence]] = {}
    version: int = 0


class Estimate(msgspec.Struct, frozen=True, array_like=True):
    """An elasticity and the expected bookings behind it (0: the prior alone), and the control
    ratio it was corrected by."""

    elasticity: float
    evidence: float
    control_ratio: float = 1.0
    sd: float = PRIOR_SD
    """The posterior's standard deviation (Laplace: the curvature at the mode)."""

    def lift(self, discount_percentage: float) -> float:
        """Demand multiplier of a discount: ``(1 - d) ** elasticity``."""
        return (1.0 - discount_percentage / 100.0) ** self.elasticity


class PriceResponse:
    """The statistics and the estimates they give (cached until new evidence arrives)."""

    def __init__(self, prior: float = PRIOR_ELASTICITY, prior_sd: float = PRIOR_SD,
                 stats: ResponseStats | None = None) -> None:
        self.prior = prior
        self.prior_sd = prior_sd
        self.stats = stats if stats is not None else ResponseStats()
        self._cache: dict[str, Estimate] = {}

    def adopt(self, stats: ResponseStats) -> None:
        """Take statistics restored from the changelog."""
        self.stats = stats
        self._cache.clear()

    def observe(self, cabin: str, days_out: float, discount: int, observed: float,
                expected: float) -> None:
        """Add seats booked (``observed``) against the seats expected without the discount."""
        self._add(self.stats.evidence, cabin, days_out, discount, observed, expected)

    def observe_control(self, cabin: str, days_out: float, discount: int, observed: float,
                        expected: float) -> None:
        """Add a held-out flight's seats booked against the seats expected, under the discount
        it would have had."""
        self._add(self.stats.control, cabin, days_out, discount, observed, expected)

    def _add(self, table: dict[str, list[Evidence]], cabin: str, days_out: float,
             discount: int, observed: float, expected: float) -> None:
        if expected <= 0.0 and observed <= 0.0:
            return
        key = f"{cabin}/{band_of(days_out)}"
        rows = table.setdefault(key, [])
        for row in rows:
            if row.discount == discount:
                break
        else:
            row = Evidence(discount)
            rows.append(row)
            rows.sort(key=lambda r: r.discount)
        row.observed += observed
        row.expected += expected
        self.stats.version += 1
        self._cache.pop(key, None)

    def estimate(self, cabin: str, days_out: float) -> Estimate:
        """The elasticity for a cabin at ``days_out`` days before departure."""
        key = f"{cabin}/{band_of(days_out)}"
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = posterior_mode(
                self.stats.evidence.get(key, []), self.prior, self.prior_sd,
                self.stats.control.get(key, []))
        return cached


def control_ratios(control: list[Evidence]) -> tuple[float, dict[int, float]]:
    """The control ratio pooled over discounts (shrunk towards 1) and per would-be discount
    (shrunk towards the pooled one), each by :data:`CONTROL_PSEUDO_SEATS` of pseudo-evidence:
    deeper discounts go to weaker-looking flights, whose forecasts err more."""
    pseudo = CONTROL_PSEUDO_SEATS
    observed = sum(r.observed for r in control)
    expected = sum(r.expected for r in control)
    pooled = (observed + pseudo) / (expected + pseudo)
    return pooled, {r.discount: (r.observed + pseudo * pooled) / (r.expected + pseudo)
                    for r in control}


def posterior_mode(rows: list[Evidence], prior: float, prior_sd: float,
                   control: list[Evidence] | None = None) -> Estimate:
    """Newton steps on the log posterior of the elasticity (concave, so they converge), with
    each row's expected seats scaled by its discount's control ratio."""
    pooled, by_discount = control_ratios(control or [])
    used = [(math.log(1.0 - r.discount / 100.0), r.observed,
             r.expected * by_discount.get(r.discount, pooled))
            for r in rows if 0 < r.discount < 100 and r.expected > 0.0]
    evidence = sum(e for _, _, e in used)
    ratio = round(pooled, 6)
    if not used:
        return Estimate(prior, 0.0, ratio, prior_sd)
    low, high = ELASTICITY_RANGE
    eps = prior
    precision = 1.0 / (prior_sd * prior_sd)
    for _ in range(8):
        gradient = -(eps - prior) * precision
        curvature = -precision
        for log_price, observed, expected in used:
            mean = expected * math.exp(eps * log_price)
            gradient += log_price * (observed - mean)
            curvature -= log_price * log_price * mean
        step = gradient / curvature
        eps = min(max(eps - step, low), high)
        if abs(step) < 1e-6:
            break
    curvature = -precision - sum(lp * lp * e * math.exp(eps * lp) for lp, _, e in used)
    return Estimate(round(eps, 6), round(evidence, 3), ratio,
                    round(math.sqrt(-1.0 / curvature), 6))


_ENCODER: Final = msgspec.json.Encoder()
_DECODER: Final = msgspec.json.Decoder(ResponseStats)


def encode_stats(stats: ResponseStats) -> bytes:
    """The changelog value of a partition's statistics."""
    return _ENCODER.encode(stats)


def decode_stats(value: bytes) -> ResponseStats:
    """Read a changelog value written by :func:`encode_stats`."""
    return _DECODER.decode(value)
