"""``revenue``: discount a flight only where the expected revenue to departure rises.

At each review of a flight inside the decision window (at most once per ``review_minutes`` of
event time, and at every event while a promotion is live for the terminal ends), the policy:

1. forecasts the target cabin's remaining demand at undiscounted fares, with its uncertainty
   (:func:`airline_engine.forecast.demand_forecast`: pickup from the booking curve plus what
   the flight's own bookings show);
2. takes the partition's learned price response for the cabin and days out
   (:mod:`airline_engine.response`);
3. computes the expected revenue to departure for no discount and for each discount level
   (:mod:`airline_engine.revenue`: dilution on customers who would have bought anyway, the
   customers the discount adds, spoilage, later customers moved up the fare ladder);
4. starts the best discount when it beats no discount by at least ``min_gain`` (a share of the
   expected revenue without); with a promotion live, moves to another level only when that
   beats the live one by ``min_gain``, and ends it when no discount does at least as well
   (``forecast_recovered``) or the target bucket has sold out.

Every decision carries the forecast, its interval, the response estimate, the expected revenue
with and without, and the reason (:class:`~airline_core.events.DecisionExplanation`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Final

from airline_core.events import DecisionExplanation

from airline_engine.forecast import DemandForecast, FlightView
from airline_engine.market import Market
from airline_engine.policy import Decision, End, Inputs, Trigger, closed, terminal_end
from airline_engine.response import Estimate
from airline_engine.revenue import Outlook, ladder, outlook, target_cabin
from airline_engine.state import FlightState

REVENUE_VERSION: Final = "revenue-1"


@dataclass(frozen=True)
class RevenuePolicy:
    """Expected-revenue maximisation over a few discount levels, with hysteresis."""

    discounts: tuple[int, ...] = (5, 10, 15, 25, 35)
    window_start_minutes: int = 42 * 24 * 60
    window_end_minutes: int = 120
    review_minutes: int = 3 * 24 * 60
    min_gain: float = 0.01
    change_gain: float = 0.05
    holdout_share: float = 0.1
    version: str = REVENUE_VERSION

    def may_act(self, flight: FlightState, now_s: float) -> bool:
        """A live promotion can always end; otherwise only at a review inside the window."""
        if flight.promo is not None:
            return True
        seconds_out = flight.departure_s - now_s
        return (self.window_end_minutes * 60 <= seconds_out <= self.window_start_minutes * 60
                and self._review_due(flight, now_s))

    def _review_due(self, flight: FlightState, now_s: float) -> bool:
        last = flight.last_review_s
        return last is None or now_s - last >= self.review_minutes * 60

    def decide(self, flight: FlightState, view: FlightView, now_s: float,
               market: Market | None = None) -> Decision | None:
        """See the module docstring. Records the review time in the flight's state; a
        held-out flight's decisions change only its ``shadow_discount``."""
        if market is None:
            raise ValueError("the revenue policy needs the partition's market")
        if not self.held_out(flight.flight_id):
            return self._decide(flight, view, now_s, market)
        if closed(flight, view):
            flight.shadow_discount = 0
            return None
        decision = self._decide(flight, view, now_s, market)
        if isinstance(decision, Trigger):
            flight.shadow_discount = decision.discount_percentage
        elif isinstance(decision, End):
            flight.shadow_discount = 0
        return None

    def held_out(self, flight_id: str) -> bool:
        """Whether the flight is in the control group: a stable ``holdout_share`` of flights,
        by a hash of the flight id (the same on every replica and after every restart)."""
        key = zlib.crc32(flight_id.encode() + b"/holdout") % 10_000
        return key < self.holdout_share * 10_000

    def _decide(self, flight: FlightState, view: FlightView, now_s: float,
                market: Market) -> Decision | None:
        end = terminal_end(flight, view)
        if end is not None:
            return end
        if closed(flight, view) or not self._review_due(flight, now_s):
            return None
        flight.last_review_s = now_s
        promo = flight.promo
        live = promo.discount_percentage if promo is not None else flight.shadow_discount
        rungs, free = ladder(flight, target_cabin(flight))
        if not rungs or rungs[0].seats <= 0:
            return None if not live else End("target_bucket_sold_out")
        in_window = self.window_end_minutes <= view.minutes_to_departure \
            <= self.window_start_minutes
        estimate = market.estimate(flight, now_s)
        forecast = market.forecast(flight, now_s, estimate)
        options = {d: outlook(rungs, free, forecast, d, estimate.elasticity)
                   for d in (0, *self.discounts)}
        without = options[0]
        current = options.get(live) or outlook(rungs, free, forecast, live,
                                               estimate.elasticity)
        best = max(self.discounts, key=lambda d: (options[d].revenue, -d))
        if not live:
            threshold = self.min_gain * max(without.revenue, 1.0)
            if in_window and options[best].revenue - without.revenue >= threshold:
                return self._trigger(best, "expected_revenue_gain", 0, flight, view, forecast,
                                     estimate, options[best], without, rungs[0].seats)
            return None
        change = self.change_gain * max(without.revenue, 1.0)
        if without.revenue - current.revenue >= change:
            return End("forecast_recovered",
                       _explain(forecast, estimate, current, without))
        if in_window and best != live and options[best].revenue - current.revenue >= change:
            return self._trigger(best, "step_up" if best > live else "step_down",
                                 promo.tier if promo is not None else 0, flight, view, forecast,
                                 estimate, options[best], without, rungs[0].seats)
        return None

    def _trigger(self, discount: int, reason: str, previous_tier: int, flight: FlightState,
                 view: FlightView, forecast: DemandForecast, estimate: Estimate,
                 chosen: Outlook, without: Outlook, bucket_seats: float) -> Trigger:
        inputs: Inputs = {
            "booked_seats": view.booked,
            "capacity": view.capacity,
            "days_to_departure": round(view.days_out, 4),
            "target_bucket_seats_left": round(bucket_seats, 1),
            "lifted_seats": round(flight.lifted_seats, 3),
            "control_ratio": round(estimate.control_ratio, 4),
            "elasticity_estimate": round(estimate.elasticity, 4),
            "elasticity_sd": round(estimate.sd, 4),
            "previous_tier": previous_tier,
            "min_gain": self.min_gain,
            "review_minutes": self.review_minutes,
        }
        return Trigger(self.discounts.index(discount) + 1, discount, reason, inputs,
                       _explain(forecast, estimate, chosen, without))


def _explain(forecast: DemandForecast, estimate: Estimate, chosen: Outlook,
             without: Outlook) -> DecisionExplanation:
    return DecisionExplanation(
        forecast_demand=round(forecast.remaining, 3),
        forecast_low=round(forecast.low, 3),
        forecast_high=round(forecast.high, 3),
        expected_spoilage=round(without.spoilage, 3),
        response_elasticity=round(estimate.elasticity, 4),
        response_evidence=round(estimate.evidence, 3),
        expected_revenue_with=round(chosen.revenue, 2),
        expected_revenue_without=round(without.revenue, 2))
