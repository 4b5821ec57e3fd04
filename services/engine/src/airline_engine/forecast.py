"""Pace and an explainable pickup forecast of a flight's final load factor.

Additive pickup (``../shared/domain.md``, Weatherford and Kimes 2003): final bookings = bookings
on hand + the pickup still expected from now to departure. With no history of similar
departures yet, the expected pickup comes from the booking curve: a flight expected to end at
``target_load_factor x capacity`` seats should still gain that times ``1 - F(days out)``.

* expected bookings to date = target x capacity x F(days out)
* pace = bookings on hand / expected bookings to date (1.0 = on the curve)
* forecast final bookings = min(capacity, on hand + target x capacity x (1 - F(days out)))
"""

from __future__ import annotations

from bisect import bisect_right
from typing import NamedTuple

from airline_engine.curve import BookingCurve
from airline_engine.state import FlightState

HOUR_S = 3600.0
DAY_S = 86400.0


class FlightView(NamedTuple):
    """The numbers a decision reads, computed once per event (all from event time)."""

    booked: int
    capacity: int
    seats_remaining: int
    load_factor: float
    minutes_to_departure: int
    days_out: float
    curve_share: float
    expected_booked_to_date: float
    forecast_final_bookings: float
    forecast_load_factor: float
    pace: float | None
    bookings_last_hour: int
    bookings_last_day: int


def bookings_since(recent: list[float], since_s: float) -> int:
    """How many booking times in ``recent`` (sorted) are after ``since_s``."""
    return len(recent) - bisect_right(recent, since_s)


def view_of(flight: FlightState, now_s: float, curve: BookingCurve,
            target_load_factor: float) -> FlightView:
    """The flight's pace and forecast at event time ``now_s``."""
    capacity = flight.total_seats
    booked = flight.booked
    seconds_out = flight.departure_s - now_s
    minutes = int(seconds_out // 60)
    days_out = max(seconds_out, 0.0) / DAY_S
    share = curve.share(days_out)
    expected_final = target_load_factor * capacity
    expected = expected_final * share
    forecast = min(float(capacity), booked + expected_final * (1.0 - share))
    recent = flight.recent_bookings
    return FlightView(
        booked=booked,
        capacity=capacity,
        seats_remaining=max(capacity - booked, 0),
        load_factor=round(min(booked / capacity, 1.0), 3) if capacity else 0.0,
        minutes_to_departure=minutes,
        days_out=days_out,
        curve_share=share,
        expected_booked_to_date=expected,
        forecast_final_bookings=forecast,
        forecast_load_factor=round(forecast / capacity, 3) if capacity else 0.0,
        pace=(booked / expected) if expected > 0 else None,
        bookings_last_hour=bookings_since(recent, now_s - HOUR_S),
        bookings_last_day=bookings_since(recent, now_s - DAY_S),
    )


#: z of a two-sided 90 % interval.
Z90 = 1.6449


class DemandForecast(NamedTuple):
    """Seats one cabin will still book from now to departure at its undiscounted fares.

    ``remaining`` is the mean, ``sd`` its standard deviation (what the flight's own bookings do
    not pin down, plus the randomness of arrivals still to come), ``low``/``high`` the 90 %
    interval, ``final`` the whole departure's demand (seats on hand + remaining)."""

    remaining: float
    sd: float
    low: float
    high: float
    final: float


def demand_forecast(booked: float, share: float, prior_final: float,
                    prior_cv: float) -> DemandForecast:
    """Additive pickup with the flight's own evidence (``../shared/domain.md``).

    Final demand has a prior ``Normal(prior_final, prior_cv x prior_final)``; the bookings on
    hand, a share ``share`` of it by the booking curve, say ``booked / share`` with the variance
    of a Poisson count. The two are combined by precision, and the pickup still to come is the
    estimate times ``1 - share``. ``booked`` counts seats at undiscounted prices (bookings a
    discount brought are taken out by the caller)."""
    share = min(max(share, 0.0), 1.0)
    booked = max(booked, 0.0)
    prior_var = max(prior_cv * prior_final, 1.0) ** 2
    if share <= 0.01:
        final, var = prior_final, prior_var
    else:
        own = booked / share
        own_var = max(booked, 1.0) / (share * share)
        weight = own_var / (own_var + prior_var)
        final = weight * prior_final + (1.0 - weight) * own
        var = prior_var * own_var / (prior_var + own_var)
    remaining = max(final * (1.0 - share), 0.0)
    sd = (var * (1.0 - share) ** 2 + remaining) ** 0.5
    return DemandForecast(remaining, sd, max(remaining - Z90 * sd, 0.0), remaining + Z90 * sd,
                          booked + remaining)
