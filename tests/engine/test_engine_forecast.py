"""Booking curve, pace and pickup forecast: hand-computed numbers."""

from __future__ import annotations

import pytest
from airline_engine.curve import BookingCurve
from airline_engine.forecast import view_of
from airline_engine.settings import DEFAULT_CURVE
from airline_engine.state import FlightState
from airline_testkit.events import DEPARTURE, FLIGHT, at

CURVE = BookingCurve.parse("0:1,10:0.5,20:0")


def test_curve_is_linear_between_points_and_one_at_departure() -> None:
    assert CURVE.share(20) == 0.0
    assert CURVE.share(30) == 0.0  # before the first point: its share
    assert CURVE.share(15) == pytest.approx(0.25)
    assert CURVE.share(10) == pytest.approx(0.5)
    assert CURVE.share(5) == pytest.approx(0.75)
    assert CURVE.share(0) == 1.0
    assert CURVE.share(-1) == 1.0


def test_default_curve_matches_domain_figures() -> None:
    curve = BookingCurve.parse(DEFAULT_CURVE)
    assert curve.share(60) == pytest.approx(0.10)
    assert curve.share(30) == pytest.approx(0.45)
    assert curve.share(7) == pytest.approx(0.80)
    assert curve.share(1) == pytest.approx(0.95)
    # 14 days: 0.80 - (0.80 - 0.45) * 7 / 23
    assert curve.share(14) == pytest.approx(0.693478, abs=1e-6)


@pytest.mark.parametrize("text", ["", "1:2", "10:0.5", "0:1,10:0.5,5:0.2", "x:1,0:1"])
def test_bad_curves_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        BookingCurve.parse(text)


def _flight(booked: int, times: list[float] | None = None) -> FlightState:
    return FlightState(FLIGHT, scheduled=True, total_seats=100, booked=booked,
                       departure_s=DEPARTURE.timestamp(), recent_bookings=times or [])


def test_view_at_ten_days_out() -> None:
    """Capacity 100, target 1.0, 30 booked at 10 days out on a curve at 0.5 there:
    expected 50, pace 0.6, forecast 30 + 100 x (1 - 0.5) = 80 seats, load factor 0.8."""
    now = at(days=10)
    view = view_of(_flight(30), now.timestamp(), CURVE, 1.0)
    assert view.minutes_to_departure == 10 * 24 * 60
    assert view.days_out == pytest.approx(10)
    assert view.expected_booked_to_date == pytest.approx(50)
    assert view.pace == pytest.approx(0.6)
    assert view.forecast_final_bookings == pytest.approx(80)
    assert view.forecast_load_factor == 0.8
    assert view.load_factor == 0.3
    assert view.seats_remaining == 70


def test_forecast_is_capped_at_capacity_and_uses_target() -> None:
    """Target 0.8: expected final 80; at 5 days out (share 0.75) 90 booked -> 90 + 80 x 0.25 =
    110, capped at 100."""
    view = view_of(_flight(90), at(days=15).timestamp(), CURVE, 0.8)
    assert view.expected_booked_to_date == pytest.approx(60)
    assert view.forecast_final_bookings == 100
    assert view.forecast_load_factor == 1.0


def test_booking_windows_count_the_last_hour_and_day() -> None:
    now = at(days=10)
    t = now.timestamp()
    times = [t - 86400 - 1, t - 86400 + 1, t - 3600 - 1, t - 3599, t - 60, t]
    view = view_of(_flight(6, times), t, CURVE, 1.0)
    assert view.bookings_last_hour == 3
    assert view.bookings_last_day == 5


def test_no_pace_before_the_curve_expects_anything() -> None:
    view = view_of(_flight(0), at(days=-5).timestamp(), CURVE, 1.0)  # 25 days out
    assert view.expected_booked_to_date == 0
    assert view.pace is None
