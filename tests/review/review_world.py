"""The review tests' world: ``make_world`` plus one promotion of the revenue policy with its
explanation, so every review relation has rows and one decision has a counterfactual."""

from __future__ import annotations

from datetime import timedelta

from airline_core import events as ev
from airline_testkit.events import WORLD_T0, World, make_world

#: The flight whose promotion carries an explanation, and that explanation.
EXPLAINED_FLIGHT = "BA200_rv_2025-11-28"
EXPLANATION = ev.DecisionExplanation(
    forecast_demand=4.0, forecast_low=1.5, forecast_high=7.0, expected_spoilage=60.0,
    response_elasticity=-1.4, response_evidence=12.0, expected_revenue_with=1820.5,
    expected_revenue_without=1700.25)


def explained_world() -> World:
    """``make_world`` with one more promotion of the revenue policy, explained."""
    world = make_world(flights=4, bookings_per_flight=8, tag="rv")
    world.add("promo_decisions", ev.PromotionTriggered(
        event_id="review-explained", event_time=WORLD_T0 + timedelta(days=1, hours=5),
        flight_id=EXPLAINED_FLIGHT, decision_source="REVENUE_POLICY", current_load_factor=0.05,
        minutes_to_departure=9000, target_fare_bucket="K", discount_percentage=15,
        promo_id="review-promo", tier=2, reason="expected revenue rises",
        policy_version="revenue-1", explanation=EXPLANATION))
    return world
