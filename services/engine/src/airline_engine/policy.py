"""Promotion policies: plain functions of a flight's state and view, no Kafka.

A policy answers one question per event: start, escalate or end a promotion, or do nothing.
It never fires on a full, cancelled or departed flight; it ends a live promotion when the
flight fills, is cancelled or departs.

``revenue`` (default, :mod:`airline_engine.revenue_policy`): the discount that maximises the
expected revenue to departure, from a demand forecast and a learned price response.

``pace``: a flight is *behind* when its bookings are below ``(1 - margin)`` times
what the booking curve expects by now. Inside the decision window a behind flight gets the
first tier; if it is still behind after the cooldown it escalates one tier at a time; once it is
back within ``recovery_margin`` of the curve (and the cooldown has passed) the promotion ends.

``iteration2``: the user's second rule, kept as a selectable baseline: one 10 % promotion per
flight when 2 to 7 days out with fewer than 5 bookings in the last hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from airline_core.events import DecisionExplanation

from airline_engine.forecast import FlightView
from airline_engine.state import CANCELLED, DEPARTED, FlightState

if TYPE_CHECKING:
    from airline_engine.market import Market

PACE_VERSION: Final = "pace-1"
ITERATION2_VERSION: Final = "iteration2-1"

Inputs = dict[str, float | int | str | None]


@dataclass(frozen=True, slots=True)
class Trigger:
    """Start (tier 1) or escalate to ``tier`` (1-based) at ``discount_percentage``."""

    tier: int
    discount_percentage: int
    reason: str
    inputs: Inputs
    explanation: DecisionExplanation | None = None


@dataclass(frozen=True, slots=True)
class End:
    """End the live promotion."""

    reason: str
    explanation: DecisionExplanation | None = None


Decision = Trigger | End


class Policy(Protocol):
    """What the core asks of a policy."""

    @property
    def version(self) -> str:
        """Written into every decision (``policy_version``)."""

    def decide(self, flight: FlightState, view: FlightView, now_s: float,
               market: Market | None = None) -> Decision | None:
        """The decision for ``flight`` at event time ``now_s`` (None: nothing to do);
        ``market`` is the partition's demand knowledge (policies that forecast use it)."""

    def may_act(self, flight: FlightState, now_s: float) -> bool:
        """Cheap pre-check: False when ``decide`` would surely return None (saves the view)."""


def terminal_end(flight: FlightState, view: FlightView) -> End | None:
    """A live promotion must end: cancelled, departed (or past departure time), or full."""
    if flight.promo is None:
        return None
    if flight.status == CANCELLED:
        return End("cancelled")
    if flight.status == DEPARTED or view.minutes_to_departure <= 0:
        return End("departed")
    if view.seats_remaining <= 0:
        return End("full")
    return None


def closed(flight: FlightState, view: FlightView) -> bool:
    """No promotion may start: cancelled, departed or full."""
    return (flight.status in (CANCELLED, DEPARTED) or view.minutes_to_departure <= 0
            or view.seats_remaining <= 0)


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True)
class PacePolicy:
    """Behind the booking curve by a margin, inside the decision window → tiers with cooldown."""

    tiers: tuple[int, ...] = (5, 10, 15, 25)
    margin: float = 0.15
    recovery_margin: float = 0.05
    min_expected_seats: float = 5.0
    window_start_minutes: int = 14 * 24 * 60
    window_end_minutes: int = 120
    cooldown_minutes: int = 360
    target_load_factor: float = 0.835
    version: str = PACE_VERSION

    def may_act(self, flight: FlightState, now_s: float) -> bool:
        """A live promotion can always end; otherwise only inside the window."""
        if flight.promo is not None:
            return True
        seconds_out = flight.departure_s - now_s
        return self.window_end_minutes * 60 <= seconds_out <= self.window_start_minutes * 60 + 60

    def decide(self, flight: FlightState, view: FlightView, now_s: float,
               market: Market | None = None) -> Decision | None:
        """See the module docstring."""
        end = terminal_end(flight, view)
        if end is not None:
            return end
        if closed(flight, view):
            return None
        expected = view.expected_booked_to_date
        last = flight.last_promo_change_s
        cooled = last is None or now_s - last >= self.cooldown_minutes * 60
        if not cooled:
            return None
        judged = expected >= self.min_expected_seats
        behind = judged and view.booked < (1.0 - self.margin) * expected
        promo = flight.promo
        if promo is not None and view.booked >= (1.0 - self.recovery_margin) * expected:
            return End("recovered")
        in_window = self.window_end_minutes <= view.minutes_to_departure \
            <= self.window_start_minutes
        if not (behind and in_window):
            return None
        tier = 1 if promo is None else promo.tier + 1
        if tier > len(self.tiers):
            return None
        return Trigger(tier, self.tiers[tier - 1],
                       "behind_curve" if promo is None else "still_behind",
                       self._inputs(view, promo.tier if promo else 0))

    def _inputs(self, view: FlightView, previous_tier: int) -> Inputs:
        return {
            "booked_seats": view.booked,
            "capacity": view.capacity,
            "expected_booked_to_date": _r(view.expected_booked_to_date),
            "pace": _r(view.pace),
            "behind_threshold": _r(1.0 - self.margin),
            "curve_share": _r(view.curve_share),
            "days_to_departure": _r(view.days_out),
            "target_load_factor": self.target_load_factor,
            "forecast_load_factor": view.forecast_load_factor,
            "bookings_last_hour": view.bookings_last_hour,
            "bookings_last_day": view.bookings_last_day,
            "previous_tier": previous_tier,
            "cooldown_minutes": self.cooldown_minutes,
        }


@dataclass(frozen=True)
class Iteration2Policy:
    """The user's iteration 2 rule: one 10 % promotion, 2 to 7 days out, < 5 bookings/hour."""

    discount_percentage: int = 10
    min_minutes: int = 2 * 24 * 60
    max_minutes: int = 7 * 24 * 60
    max_bookings_last_hour: int = 5
    version: str = ITERATION2_VERSION

    def may_act(self, flight: FlightState, now_s: float) -> bool:
        """A live promotion can end; a first one can start only inside 2-7 days."""
        if flight.promo is not None:
            return True
        seconds_out = flight.departure_s - now_s
        return flight.promos_started == 0 and \
            self.min_minutes * 60 <= seconds_out <= self.max_minutes * 60 + 60

    def decide(self, flight: FlightState, view: FlightView, now_s: float,
               market: Market | None = None) -> Decision | None:
        """Fire once per flight; end only on full, cancellation or departure."""
        end = terminal_end(flight, view)
        if end is not None:
            return end
        if flight.promo is not None or flight.promos_started > 0 or closed(flight, view):
            return None
        if not self.min_minutes <= view.minutes_to_departure <= self.max_minutes:
            return None
        if view.bookings_last_hour >= self.max_bookings_last_hour:
            return None
        return Trigger(1, self.discount_percentage, "iteration2_low_hourly_bookings", {
            "bookings_last_hour": view.bookings_last_hour,
            "max_bookings_last_hour": self.max_bookings_last_hour,
            "minutes_to_departure": view.minutes_to_departure,
            "booked_seats": view.booked,
            "capacity": view.capacity,
        })
