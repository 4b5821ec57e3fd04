"""Statistical tests on large seeded runs: each fails when its parameter is moved by 20 %.

Every test computes its tolerance from the sampling error (3.5 standard errors) and first asserts
that this tolerance is less than half of what a 20 % move of the parameter would change, so the
test is sensitive enough by construction; then it checks the observed value.

* Booking curve: share of bookings made in the last 7 / 14 / 30 days per segment equals
  1 - F(days) of the configured curve (demand well below capacity, so the curve and not spill
  shapes the timing).
* Load factor: mean final load factor without promotions inside the band 75-90 % (around
  IATA's 82.6 % / 83.5 %) and near the configured target; at target x 0.8 and x 1.2 it is not.
* Elasticity: a constant 30 % discount on K raises the booking rate by (0.7) ** elasticity per
  segment (the same base arrivals in both runs: common random numbers).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import cache

import numpy as np
import pytest
from airline_core.events import BookingCreated
from airline_producer.demand import BUSINESS_CURVE, LEISURE_CURVE, BookingCurve
from airline_producer.settings import Settings
from airline_producer.simulation import ActiveDiscount, Simulation

pytestmark = pytest.mark.slow

SEED = 20251128
DAY = 86_400
SPARSE = {"snapshot_interval_minutes": 10**6, "tick_minutes": 360}
#: Low demand (K rarely closes) so curves and elasticity are seen without spill.
LOW = Settings(seed=SEED, flights=840, days=7, target_load_factor=0.25,
               **SPARSE)  # type: ignore[arg-type]
SIGMAS = 3.5
DISCOUNT = 30


def _bookings(sim: Simulation) -> Iterator[tuple[BookingCreated, float]]:
    """(booking, days before scheduled departure) of every booking of a run."""
    departures = {f.flight_id: f.departure for f in sim.flights}
    for tick in sim.run():
        for _, event in tick.events:
            if isinstance(event, BookingCreated):
                yield event, (departures[event.flight_id] - event.event_time.timestamp()) / DAY


@cache
def low_run(discount: int) -> list[tuple[BookingCreated, float]]:
    """The low-demand run, open loop (0) or with a constant discount on K everywhere."""
    lookup = (lambda _f, _t: ActiveDiscount("test", "K", discount)) if discount else None
    return list(_bookings(Simulation(LOW, lookup)))


@pytest.mark.parametrize("segment", ["business", "leisure"])
def test_booking_curve_shares(segment: str) -> None:
    curve = BookingCurve(BUSINESS_CURVE if segment == "business" else LEISURE_CURVE, 90)
    days_out = np.array([d for b, d in low_run(0) if b.segment == segment])
    n = len(days_out)
    assert n > 8000, f"run too small: {n} {segment} bookings"
    for window in (7, 14, 30):
        expected = curve.share_within(window)
        tolerance = SIGMAS * math.sqrt(expected * (1 - expected) / n)
        assert tolerance < 0.5 * 0.2 * expected, "run too small to detect a 20 % move"
        observed = float(np.mean(days_out <= window))
        assert abs(observed - expected) <= tolerance, \
            f"{segment}: {observed:.4f} of bookings in the last {window} days, curve {expected:.4f}"


@cache
def mean_load_factor(target: float) -> tuple[float, int]:
    """Mean final load factor of departed flights without promotions, and their count."""
    sim = Simulation(Settings(seed=SEED, flights=270, days=3, target_load_factor=target,
                              **SPARSE))  # type: ignore[arg-type]
    for _ in sim.run():
        pass
    lfs = [s.inventory.booked / s.inventory.capacity for s in sim.states.values()
           if not s.cancelled]
    return float(np.mean(lfs)), len(lfs)


BAND = (0.75, 0.90)


def test_mean_load_factor_in_band() -> None:
    mean, n = mean_load_factor(0.83)
    assert n > 250
    assert BAND[0] <= mean <= BAND[1], f"mean load factor {mean:.3f} outside {BAND}"
    assert abs(mean - 0.83) <= 0.03, f"mean load factor {mean:.3f} far from the target 0.83"


@pytest.mark.parametrize("factor", [0.8, 1.2])
def test_load_factor_moved_by_20_percent_leaves_band(factor: float) -> None:
    mean, _ = mean_load_factor(0.83 * factor)
    assert not BAND[0] <= mean <= BAND[1], \
        f"target x {factor} still gives {mean:.3f}: the band would not catch the move"


@pytest.mark.parametrize(("segment", "elasticity"), [("business", -0.7), ("leisure", -1.5)])
def test_discount_raises_booking_rate_by_elasticity(segment: str, elasticity: float) -> None:
    def count(run: list[tuple[BookingCreated, float]]) -> int:
        # Y cabin, where the discount is; demand is low enough that K stays open.
        return sum(1 for b, _ in run if b.segment == segment and b.fare_bucket in "YMK")

    base, treated = count(low_run(0)), count(low_run(DISCOUNT))
    expected = (1 - DISCOUNT / 100) ** elasticity
    # Extra bookings are Poisson on top of identical base arrivals.
    tolerance = SIGMAS * math.sqrt(max(treated - base, 1)) / base
    moved = min(abs((1 - DISCOUNT / 100) ** (elasticity * m) - expected) for m in (0.8, 1.2))
    assert tolerance < 0.5 * moved, "run too small to detect a 20 % move of the elasticity"
    ratio = treated / base
    assert abs(ratio - expected) <= tolerance, \
        f"{segment}: discount raised bookings x{ratio:.3f}, elasticity says x{expected:.3f}"
