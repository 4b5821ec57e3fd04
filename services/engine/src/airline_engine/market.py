"""What the engine knows about demand beyond one flight: the curve, the prior, the response.

One :class:`Market` per partition (its core owns it). It forecasts a flight's remaining demand
in the cabin a promotion discounts, and learns the price response from the flight's own
promotions: between two events of a promoted flight whose target bucket still sells, the seats
booked in the cabin are the *observed*, the seats expected over the same stretch of the booking
curve without a discount the *expected* (:mod:`airline_engine.response`). The expected comes
from the forecast made when the exposure began (``exposure_final``), before any seat the
discount brought: later forecasts set those seats apart by the estimate of the day
(``lifted_seats``, so the policy reads demand at undiscounted fares), and measuring against them
would let an estimate confirm itself (too elastic, it sets apart too much, lowers the
counterfactual and reads as a strong response). A held-out flight's would-be promotion
(``shadow_discount``) is counted the same way, as the control group's evidence.
"""

from __future__ import annotations

from airline_engine.curve import BookingCurve
from airline_engine.forecast import DAY_S, DemandForecast, demand_forecast
from airline_engine.response import Estimate, PriceResponse
from airline_engine.revenue import ladder, target_cabin
from airline_engine.state import FlightState

#: Prior uncertainty of a flight's final demand, as a coefficient of variation. Wide on purpose
#: (PODS/PassengerSim k-factors are 0.1 to 0.15 around a *known* base; ours is not known): by
#: three weeks out the flight's own bookings dominate.
PRIOR_DEMAND_CV = 0.5


class Market:
    """The partition's booking curve, demand prior and learned price response."""

    def __init__(self, curve: BookingCurve, target_load_factor: float,
                 response: PriceResponse | None = None,
                 prior_cv: float = PRIOR_DEMAND_CV) -> None:
        self.curve = curve
        self.target_load_factor = target_load_factor
        self.response = response if response is not None else PriceResponse()
        self.prior_cv = prior_cv

    def demand(self, flight: FlightState, now_s: float) -> DemandForecast:
        """Remaining demand of the flight's target cabin at undiscounted fares."""
        cabin = target_cabin(flight)
        seats = flight.cabins.get(cabin, 0)
        booked = flight.booked_by_cabin.get(cabin, 0) - flight.lifted_seats
        share = self.curve.share(max(flight.departure_s - now_s, 0.0) / DAY_S)
        return demand_forecast(booked, share, self.target_load_factor * seats, self.prior_cv)

    def estimate(self, flight: FlightState, now_s: float) -> Estimate:
        """The price response for the flight's target cabin at ``now_s``."""
        return self.response.estimate(target_cabin(flight),
                                      max(flight.departure_s - now_s, 0.0) / DAY_S)

    def forecast(self, flight: FlightState, now_s: float, estimate: Estimate) -> DemandForecast:
        """:meth:`demand` corrected by the control ratio of ``estimate``: what the policy
        decides on (the raw forecast errs on the flights it picks)."""
        raw = self.demand(flight, now_s)
        ratio = estimate.control_ratio
        if ratio == 1.0:
            return raw
        remaining = raw.remaining * ratio
        return DemandForecast(remaining, raw.sd * ratio, raw.low * ratio, raw.high * ratio,
                              raw.final - raw.remaining + remaining)

    @staticmethod
    def exposed(flight: FlightState) -> bool:
        """Whether a promotion, or a held-out flight's would-be one, is live: the stretches
        the response learns from."""
        return flight.promo is not None or flight.shadow_discount != 0

    def on_booking(self, flight: FlightState, cabin_seats: dict[str, int], now_s: float) -> None:
        """A booking while a promotion (or a held-out flight's would-be one) is live: count it,
        and set apart what a real discount brought."""
        if not self.exposed(flight):
            return
        promo = flight.promo
        seats = cabin_seats.get(target_cabin(flight), 0)
        if seats:
            flight.exposure_seats += seats
            if promo is None:
                return
            lift = self.estimate(flight, now_s).lift(promo.discount_percentage)
            flight.lifted_seats += seats * (1.0 - 1.0 / lift) if lift > 1.0 else 0.0

    def on_event(self, flight: FlightState, now_s: float) -> bool:
        """Close the exposure stretch that ends at this event of a promoted (or held-out)
        flight; True when the statistics changed."""
        promo = flight.promo
        if not self.exposed(flight):
            flight.exposure_s = None
            flight.exposure_seats = 0
            flight.exposure_final = None
            return False
        if flight.exposure_final is None:
            flight.exposure_final = self.demand(flight, now_s).final
        start = flight.exposure_s
        learned = False
        if start is not None and now_s > start and flight.exposure_open:
            days_from = max(flight.departure_s - start, 0.0) / DAY_S
            days_to = max(flight.departure_s - now_s, 0.0) / DAY_S
            expected = flight.exposure_final * (self.curve.share(days_to)
                                                - self.curve.share(days_from))
            if promo is None:
                self.response.observe_control(target_cabin(flight), days_from,
                                              flight.shadow_discount,
                                              float(flight.exposure_seats), max(expected, 0.0))
            else:
                self.response.observe(target_cabin(flight), days_from, promo.discount_percentage,
                                      float(flight.exposure_seats), max(expected, 0.0))
            learned = True
        if start is None or now_s > start:
            rungs, _ = ladder(flight, target_cabin(flight))
            flight.exposure_s = now_s
            flight.exposure_seats = 0
            flight.exposure_open = bool(rungs) and rungs[0].seats > 0
        return learned
