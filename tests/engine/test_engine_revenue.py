"""The revenue policy: learned price response, demand forecast, revenue model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from airline_engine.curve import BookingCurve
from airline_engine.forecast import DAY_S, demand_forecast
from airline_engine.market import Market
from airline_engine.response import (
    PRIOR_ELASTICITY,
    Evidence,
    PriceResponse,
    decode_stats,
    encode_stats,
)
from airline_engine.revenue import Rung, walk
from airline_engine.settings import DEFAULT_CURVE
from airline_engine.state import BucketCapacity, FlightState, Promo


def test_the_response_is_the_prior_without_evidence_and_learns_the_truth_with_it() -> None:
    response = PriceResponse()
    assert response.estimate("Y", 25.0).elasticity == PRIOR_ELASTICITY
    rng = np.random.default_rng(3)
    truth = -1.6
    for _ in range(400):
        expected = 2.0
        for discount in (15, 35):
            observed = rng.poisson(expected * (1 - discount / 100) ** truth)
            response.observe("Y", 25.0, discount, float(observed), expected)
    learned = response.estimate("Y", 25.0)
    assert learned.elasticity == pytest.approx(truth, abs=0.15)
    assert learned.evidence == pytest.approx(1600.0)
    # Other bands and cabins keep the prior; a restart keeps what was learned.
    assert response.estimate("Y", 2.0).elasticity == PRIOR_ELASTICITY
    restored = PriceResponse()
    restored.adopt(decode_stats(encode_stats(response.stats)))
    assert restored.estimate("Y", 25.0) == learned


def test_the_forecast_leans_on_the_flight_once_much_of_the_curve_has_passed() -> None:
    early = demand_forecast(booked=5, share=0.05, prior_final=100, prior_cv=0.5)
    late = demand_forecast(booked=90, share=0.6, prior_final=100, prior_cv=0.5)
    assert early.final == pytest.approx(100, rel=0.1)  # mostly the prior
    assert late.final == pytest.approx(150, rel=0.05)  # mostly 90 / 0.6
    assert late.low < late.remaining < late.high


def test_a_discount_pays_only_where_seats_would_fly_empty() -> None:
    ladder = [Rung(140.0, 30.0), Rung(180.0, 40.0), Rung(220.0, 20.0)]
    weak, _ = walk(ladder, 10.0, 0, -1.5)
    weak_promoted, seats = walk(ladder, 10.0, 35, -1.5)
    assert weak == pytest.approx(10 * 140)
    assert weak_promoted == pytest.approx(10 * 0.65 ** -1.5 * 91.0)
    assert weak_promoted > weak and seats > 10
    # Inelastic demand: the discount only dilutes.
    assert walk(ladder, 10.0, 35, -0.7)[0] < walk(ladder, 10.0, 0, -0.7)[0]
    # Demand that fills the cabin anyway: a discount gives money away.
    full, taken = walk(ladder, 500.0, 0, -1.5)
    assert taken == pytest.approx(90.0)
    assert walk(ladder, 500.0, 35, -1.5)[0] < full
    assert math.isclose(walk([], 10.0, 10, -1.0)[0], 0.0)


def test_the_control_group_divides_the_forecasts_error_out_of_the_response() -> None:
    """Flights picked for looking weak book ``bias`` x their forecast with or without a
    discount; only the held-out ones show it, and only they keep the estimate honest."""
    rng = np.random.default_rng(5)
    truth, bias = -1.0, 1.25
    naive, corrected = PriceResponse(), PriceResponse()
    for _ in range(2000):
        expected = 2.0
        for discount in (15, 35):
            observed = float(rng.poisson(expected * bias * (1 - discount / 100) ** truth))
            naive.observe("Y", 25.0, discount, observed, expected)
            corrected.observe("Y", 25.0, discount, observed, expected)
            held = float(rng.poisson(expected * bias))
            corrected.observe_control("Y", 25.0, discount, held, expected)
    fooled = naive.estimate("Y", 25.0)
    honest = corrected.estimate("Y", 25.0)
    assert fooled.elasticity < truth - 0.3  # regression to the mean read as price response
    assert honest.elasticity == pytest.approx(truth, abs=0.15)
    assert honest.control_ratio == pytest.approx(bias, abs=0.08)
    assert 0.0 < honest.sd < fooled.sd * 1.5 < 0.4
    restored = PriceResponse()
    restored.adopt(decode_stats(encode_stats(corrected.stats)))
    assert restored.estimate("Y", 25.0) == honest


def _promoted_flight() -> FlightState:
    """A 100-seat flight 30 days out with 20 seats booked and 25 % off its cheapest bucket."""
    departure = 100 * DAY_S
    return FlightState(
        flight_id="F1", scheduled=True, departure_s=departure, total_seats=100,
        cabins={"Y": 100}, buckets=[BucketCapacity("K", "Y", "80.00", 60),
                                    BucketCapacity("M", "Y", "150.00", 40)],
        booked=20, booked_by_cabin={"Y": 20}, booked_by_bucket={"K": 20},
        promo=Promo("p1", 2, 25, "K", departure - 30 * DAY_S, "expected_revenue_gain"))


def _evidence_after_bookings(prior: float) -> list[Evidence]:
    """The evidence a market with ``prior`` gathers from the same ten bookings of 2 seats."""
    market = Market(BookingCurve.parse(DEFAULT_CURVE), 0.8, PriceResponse(prior=prior))
    flight = _promoted_flight()
    now = flight.departure_s - 30 * DAY_S
    market.on_event(flight, now)  # the exposure begins with the decision
    for _ in range(10):
        now += DAY_S / 2
        flight.booked += 2
        flight.booked_by_cabin["Y"] += 2
        flight.booked_by_bucket["K"] += 2
        market.on_booking(flight, {"Y": 2}, now)
        market.on_event(flight, now)
    return market.response.stats.evidence["Y/4"]


def test_the_promotions_counterfactual_never_depends_on_the_estimate() -> None:
    """Each stretch of a promotion is measured against the forecast made when it began: the
    seats the discount brought (set apart by the estimate of the day) cannot lower the
    counterfactual, or a too-elastic estimate would read its own error as evidence."""
    elastic, inelastic = _evidence_after_bookings(-2.5), _evidence_after_bookings(-0.3)
    assert elastic == inelastic
    (row,) = elastic
    assert (row.discount, row.observed) == (25, 20.0) and row.expected > 0.0
