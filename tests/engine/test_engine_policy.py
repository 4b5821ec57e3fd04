"""The pace and iteration-2 policies on hand-computed flights.

Flight: 100 seats, target load factor 1.0, curve 0:1,10:0.5,20:0 (linear), departs 20 days
after T0. At 10 days out the curve expects 50 seats; behind means < 0.85 x 50 = 42.5 booked.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from airline_engine.curve import BookingCurve
from airline_engine.forecast import view_of
from airline_engine.policy import Decision, End, Iteration2Policy, PacePolicy, Policy, Trigger
from airline_engine.state import CANCELLED, DEPARTED, FlightState, Promo
from airline_testkit.events import DEPARTURE, FLIGHT, at

CURVE = BookingCurve.parse("0:1,10:0.5,20:0")
PACE = PacePolicy(tiers=(5, 10, 15, 25), margin=0.15, recovery_margin=0.05,
                  min_expected_seats=5, window_start_minutes=14 * 1440, window_end_minutes=120,
                  cooldown_minutes=360, target_load_factor=1.0)
TEN_DAYS_OUT = at(days=10)


def _flight(booked: int, promo_tier: int = 0, changed: datetime | None = None,
            status: str = "open", bookings: list[float] | None = None,
            started: int = 0) -> FlightState:
    flight = FlightState(FLIGHT, scheduled=True, status=status, total_seats=100, booked=booked,
                         departure_s=DEPARTURE.timestamp(), recent_bookings=bookings or [],
                         promos_started=started)
    if promo_tier:
        flight.promo = Promo("promo-1", promo_tier, PACE.tiers[promo_tier - 1], "K",
                             (changed or at()).timestamp(), "behind_curve")
        flight.promos_started = max(started, 1)
    if changed is not None:
        flight.last_promo_change_s = changed.timestamp()
    return flight


def _decide(flight: FlightState, now: datetime = TEN_DAYS_OUT,
            policy: Policy = PACE) -> Decision | None:
    return policy.decide(flight, view_of(flight, now.timestamp(), CURVE, 1.0), now.timestamp())


def test_behind_by_the_margin_starts_tier_one() -> None:
    decision = _decide(_flight(42))
    assert isinstance(decision, Trigger)
    assert (decision.tier, decision.discount_percentage, decision.reason) == (1, 5, "behind_curve")
    assert decision.inputs["expected_booked_to_date"] == 50.0
    assert decision.inputs["pace"] == 0.84
    assert decision.inputs["behind_threshold"] == 0.85
    assert decision.inputs["forecast_load_factor"] == 0.92  # 42 + 100 x 0.5


def test_within_the_margin_does_nothing() -> None:
    assert _decide(_flight(43)) is None


def test_outside_the_decision_window_does_nothing() -> None:
    assert _decide(_flight(0), at(days=5)) is None  # 15 days out: window opens at 14
    assert _decide(_flight(0), at(days=20, minutes=-119)) is None  # 119 minutes out: closed


def test_too_early_to_judge_pace() -> None:
    """At 19.5 days out the curve expects 2.5 seats: under the 5-seat minimum."""
    policy = PacePolicy(window_start_minutes=20 * 1440, target_load_factor=1.0)
    assert _decide(_flight(0), at(hours=12), policy) is None


def test_escalates_one_tier_after_the_cooldown_while_still_behind() -> None:
    assert _decide(_flight(30, 1, changed=at(days=10, hours=-5))) is None  # 5 h < 6 h cooldown
    decision = _decide(_flight(30, 1, changed=at(days=10, hours=-6)))
    assert isinstance(decision, Trigger)
    assert (decision.tier, decision.discount_percentage, decision.reason) == \
        (2, 10, "still_behind")
    assert decision.inputs["previous_tier"] == 1


def test_no_escalation_past_the_last_tier() -> None:
    assert _decide(_flight(0, 4, changed=at(days=1))) is None


def test_recovery_ends_the_promotion_after_the_cooldown() -> None:
    """Recovered means >= 0.95 x 50 = 47.5 booked."""
    assert _decide(_flight(47, 1, changed=at(days=9))) is None  # still between the margins
    assert _decide(_flight(48, 1, changed=at(days=9, hours=20))) is None  # cooling down
    assert _decide(_flight(48, 1, changed=at(days=9))) == End("recovered")


@pytest.mark.parametrize(("flight", "now", "reason"), [
    (_flight(100, 1, changed=at(days=10)), TEN_DAYS_OUT, "full"),
    (_flight(10, 1, changed=at(days=10), status=CANCELLED), TEN_DAYS_OUT, "cancelled"),
    (_flight(10, 1, changed=at(days=10), status=DEPARTED), TEN_DAYS_OUT, "departed"),
    (_flight(10, 1, changed=at(days=19, hours=23)), DEPARTURE, "departed"),
])
def test_terminal_states_end_at_once(flight: FlightState, now: datetime, reason: str) -> None:
    assert _decide(flight, now) == End(reason)


@pytest.mark.parametrize("status", [CANCELLED, DEPARTED])
def test_nothing_fires_on_closed_flights(status: str) -> None:
    assert _decide(_flight(0, status=status)) is None


def test_nothing_fires_on_a_full_flight() -> None:
    assert _decide(_flight(100)) is None


# --------------------------------------------------------------------------- iteration 2
ITER2 = Iteration2Policy()


def _hour_of_bookings(count: int, now: datetime) -> list[float]:
    return [now.timestamp() - 60 * (i + 1) for i in range(count)]


def test_iteration2_fires_once_two_to_seven_days_out_with_few_bookings() -> None:
    now = at(days=15)  # 5 days out
    decision = _decide(_flight(10, bookings=_hour_of_bookings(4, now)), now, ITER2)
    assert isinstance(decision, Trigger)
    assert (decision.discount_percentage, decision.reason) == \
        (10, "iteration2_low_hourly_bookings")
    assert decision.inputs["bookings_last_hour"] == 4


def test_iteration2_holds_back() -> None:
    now = at(days=15)
    assert _decide(_flight(10, bookings=_hour_of_bookings(5, now)), now, ITER2) is None
    assert _decide(_flight(10, started=1), now, ITER2) is None  # already fired once
    assert _decide(_flight(10), at(days=12, minutes=-1), ITER2) is None  # > 7 days out
    assert _decide(_flight(10), at(days=18, minutes=1), ITER2) is None  # < 2 days out


def test_iteration2_ends_on_departure() -> None:
    assert _decide(_flight(10, 1, status=DEPARTED), at(days=20), ITER2) == End("departed")
