"""The closed-loop evaluator: the engine's own policy code against the simulator's demand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from airline_core import events as ev
from airline_core.topics import Topic
from airline_evaluator import closed_loop, outcomes
from airline_evaluator.cli import BASELINE, evaluate, main
from airline_evaluator.settings import Settings
from airline_producer.settings import Settings as ProducerSettings
from airline_producer.simulation import Simulation

T0 = datetime(2025, 11, 1, 8, tzinfo=UTC)


def small_world(**changes: Any) -> ProducerSettings:
    """A short world: 60 flights over 3 days, a 30-day booking horizon, daily snapshots."""
    values: dict[str, Any] = {"flights": 60, "days": 3, "booking_horizon_days": 30,
                              "snapshot_interval_minutes": 1440}
    values.update(changes)
    return ProducerSettings(**values)


def evaluator_settings(**changes: Any) -> Settings:
    values: dict[str, Any] = {"flights": 60, "days": 3, "seed": 7}
    values.update(changes)
    return Settings(**values)


@pytest.fixture(scope="module")
def pace_results() -> list[outcomes.PolicyResult]:
    return evaluate(evaluator_settings(policies="pace"), small_world())


# --------------------------------------------------------------------------- the ledger
def _scheduled(flight: str, seats: int = 180) -> ev.FlightScheduled:
    return ev.FlightScheduled(
        event_id=f"s-{flight}", event_time=T0, flight_id=flight, airline_code="BA",
        origin_airport="LHR", destination_airport="CDG",
        scheduled_departure_time=T0 + timedelta(days=3),
        scheduled_arrival_time=T0 + timedelta(days=3, hours=1), aircraft_type="A320",
        total_seats=seats, cabins=[])


def _booking(flight: str, booking: str, price: str, passengers: int, promo: str | None = None,
             percentage: int = 0) -> ev.BookingCreated:
    return ev.BookingCreated(
        event_id=f"b-{booking}", event_time=T0 + timedelta(hours=1), flight_id=flight,
        booking_id=booking, channel="WEB", fare_bucket="K", currency="GBP",
        total_price=Decimal(price), promo_id=promo, discount_percentage=percentage,
        passengers=[ev.Passenger(passenger_id=f"{booking}-{n}", seat_id=f"{n + 1}A",
                                 cabin_code="Y") for n in range(passengers)])


def test_ledger_counts_live_bookings_revenue_and_the_discount_given() -> None:
    ledger = outcomes.Ledger()
    ledger.record_inputs([
        (Topic.FLIGHT_LIFECYCLE, _scheduled("F1", seats=10)),
        (Topic.BOOKINGS, _booking("F1", "a", "280.00", 2)),
        (Topic.BOOKINGS, _booking("F1", "b", "112.00", 1, promo="p1", percentage=20)),
        (Topic.BOOKINGS, _booking("F1", "c", "140.00", 1)),
        (Topic.BOOKINGS, ev.BookingCancelled(
            event_id="x-c", event_time=T0 + timedelta(hours=2), flight_id="F1",
            booking_id="c", fare_bucket="K", passengers=[])),
        (Topic.FLIGHT_LIFECYCLE, ev.FlightDeparted(
            event_id="d-F1", event_time=T0 + timedelta(days=3), flight_id="F1",
            actual_departure_time=T0 + timedelta(days=3))),
    ])
    flight = ledger.flights["F1"]
    assert flight.passengers == 3 and flight.load_factor == pytest.approx(0.3)
    assert flight.revenue == Decimal("392.00")  # the cancelled booking paid nothing
    assert flight.discount_given == Decimal("28.00")  # 140 at full price, 112 paid
    assert flight.promo_passengers == 1
    summary = ledger.summary("run")
    assert (summary.departed, summary.revenue, summary.promo_passengers) == \
        (1, Decimal("392.00"), 1)
    assert ledger.closed_flights == 1


# --------------------------------------------------------------------------- closed loop
def test_the_baseline_is_the_open_loop_stream_exactly() -> None:
    """The baseline acts on no decision: its ledger equals one fed by the plain simulation."""
    world = small_world(seed=7)
    baseline = closed_loop.run(closed_loop.LoopConfig(world, "pace", apply_decisions=False))
    plain = outcomes.Ledger()
    for tick in Simulation(world).run():
        plain.record_inputs(tick.events)
    assert baseline.summary("x").revenue == plain.summary("x").revenue
    assert {k: f.bookings for k, f in baseline.flights.items()} == \
        {k: f.bookings for k, f in plain.flights.items()}
    assert baseline.decisions, "the engine should still decide in the baseline"


def test_same_seed_same_result(pace_results: list[outcomes.PolicyResult]) -> None:
    again = evaluate(evaluator_settings(policies="pace"), small_world())
    assert [r.as_dict() for r in again] == [r.as_dict() for r in pace_results]


def test_pace_discounts_bring_passengers_to_the_flights_it_promotes(
        pace_results: list[outcomes.PolicyResult]) -> None:
    baseline, pace = pace_results
    assert baseline.name == BASELINE and baseline.promo_passengers == 0
    assert pace.flights_promoted > 0 and pace.promo_passengers > 0
    assert pace.discount_given > 0
    paired = pace.promoted
    assert paired is not None and paired.flights > 0
    # Same customers, plus the ones the discount brings: promoted flights fill up more.
    assert paired.load_factor > paired.baseline_load_factor


class _Recording(outcomes.Ledger):
    """Also keeps every booking made on a promotion, with its time."""

    def __init__(self) -> None:
        super().__init__()
        self.promo_bookings: list[ev.BookingCreated] = []

    def record_inputs(self, events: Any) -> None:
        events = list(events)
        self.promo_bookings += [e for _, e in events
                                if isinstance(e, ev.BookingCreated) and e.promo_id]
        super().record_inputs(events)


def test_a_decision_affects_demand_only_after_its_delay() -> None:
    delay = timedelta(hours=6)
    world = small_world(seed=11, promotion_delay_minutes=delay.total_seconds() / 60)
    ledger = closed_loop.run(closed_loop.LoopConfig(world, "pace"), ledger=_Recording())
    assert isinstance(ledger, _Recording)
    decided = {d.promo_id: d.event_time for d in ledger.decisions
               if isinstance(d, ev.PromotionTriggered)}
    assert ledger.promo_bookings, "no booking was made on a promotion"
    for booking in ledger.promo_bookings:
        assert booking.promo_id in decided, "a booking names a promotion the engine never made"
        assert booking.event_time >= decided[booking.promo_id] + delay


# --------------------------------------------------------------------------- command line
def test_help_names_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for env in ("EVALUATE_FLIGHTS", "EVALUATE_DAYS", "EVALUATE_SEED", "EVALUATE_POLICIES",
                "EVALUATE_DELAY_MINUTES", "EVALUATE_JSON"):
        assert env in text


def test_an_unknown_policy_is_a_configuration_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--policies", "pace,magic"])
    assert exit_info.value.code == 2
    assert "EVALUATE_POLICIES" in capsys.readouterr().err


def test_json_output_has_every_run(capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODUCER_BOOKING_HORIZON_DAYS", "21")
    monkeypatch.setenv("PRODUCER_SNAPSHOT_INTERVAL_MINUTES", "1440")
    assert main(["--flights", "12", "--days", "2", "--json", "--log-format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in report["runs"]] == [BASELINE, "pace", "iteration2"]
    assert all(r["departed"] > 0 for r in report["runs"])
