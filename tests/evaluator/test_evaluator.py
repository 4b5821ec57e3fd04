"""The closed-loop evaluator: the engine's own policy code against the simulator's demand."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from airline_core import events as ev
from airline_core.errors import ConfigError
from airline_core.topics import Topic
from airline_evaluator import closed_loop, oracle, outcomes
from airline_evaluator.cli import BASELINE, compare, evaluate, main
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
    # Booked 3 days out (T0 + 1 h is 2 d 23 h before departure: 2 whole days), one cancelled.
    assert flight.booked_by_day == {2: 3}
    assert outcomes.booking_curve([flight], 4) == [3.0, 3.0, 3.0, 0.0, 0.0]


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
                "EVALUATE_DELAY_MINUTES", "EVALUATE_JSON", "EVALUATE_ORACLE", "EVALUATE_WORKERS",
                "EVALUATE_REPORT", "EVALUATE_SCENARIOS", "EVALUATE_SEEDS"):
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
    assert main(["--flights", "12", "--days", "2", "--policies", "pace,iteration2", "--json",
                 "--log-format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in report["runs"]] == [BASELINE, "pace", "iteration2"]
    assert all(r["departed"] > 0 for r in report["runs"])


def test_the_default_policies_start_with_revenue() -> None:
    assert Settings().policy_names == ["revenue", "pace", "iteration2"]


# --------------------------------------------------------------------------- snapshots
def _bookings(world: ProducerSettings, schedule: oracle.Schedule
              ) -> dict[str, dict[str, tuple[int, Decimal, Decimal]]]:
    """Every flight's live bookings under ``schedule``, with the real (UUID) ids."""
    lookup = oracle.ScheduleLookup(schedule)
    ledger = outcomes.Ledger()
    for tick in Simulation(world, lookup=lookup if schedule.discount else None).run():
        for _, event in tick.events:
            if isinstance(event, ev.FlightScheduled):
                lookup.register(event)
        ledger.record_inputs(tick.events)
    return {k: f.bookings for k, f in ledger.flights.items()}


@pytest.mark.parametrize("schedule", [oracle.NONE, oracle.Schedule(25, 7)])
def test_snapshots_off_keeps_bookings_identical(schedule: oracle.Schedule) -> None:
    """Snapshots only read the inventory and rank last in the event heap: without them every
    booking (id, passengers, price, discount) is the same, so the oracle may skip them."""
    world = small_world(seed=5, flights=30, snapshot_interval_minutes=60)
    with_snapshots = _bookings(world, schedule)
    without = _bookings(world.replace(snapshot_interval_minutes=oracle.NO_SNAPSHOTS), schedule)
    assert with_snapshots == without
    assert sum(len(b) for b in without.values()) > 1000


# --------------------------------------------------------------------------- the oracle
@pytest.fixture(scope="module")
def oracle_world() -> tuple[ProducerSettings, outcomes.Ledger, oracle.OracleResult]:
    world = small_world(seed=7)
    baseline = closed_loop.run(closed_loop.LoopConfig(world, "pace", apply_decisions=False))
    return world, baseline, oracle.run(world, workers=2)


def test_the_oracle_beats_the_baseline_on_every_flight_and_every_single_schedule(
        oracle_world: tuple[ProducerSettings, outcomes.Ledger, oracle.OracleResult]) -> None:
    world, baseline, found = oracle_world
    departed = {k for k, f in baseline.flights.items() if f.status == "departed"}
    assert departed and set(found.choices) == set(baseline.flights)
    for fid in departed:
        assert found.ledger.flights[fid].revenue >= baseline.flights[fid].revenue
        assert found.choices[fid].revenue == found.ledger.flights[fid].revenue
        assert found.choices[fid].baseline_revenue == baseline.flights[fid].revenue
    total = found.ledger.summary("oracle").revenue
    assert set(found.schedule_revenue) == set(oracle.SCHEDULES)
    assert all(total >= revenue for revenue in found.schedule_revenue.values())
    assert total > found.schedule_revenue[oracle.NONE], "no discount ever paid on 60 flights"
    assert found.schedule_revenue[oracle.NONE] == baseline.summary("x").revenue
    # Per flight too, against one schedule simulated again on its own, on every flight.
    deep, _ = oracle.simulate_schedule(world, oracle.Schedule(35, 21))
    assert all(found.ledger.flights[fid].revenue >= deep[fid].revenue for fid in departed)
    # The oracle's promotions are its own: one per flight it discounted.
    promoted = [c for c in found.choices.values() if c.discount]
    assert found.ledger.summary("oracle").flights_promoted == \
        sum(1 for c in promoted if c.flight_id in departed)
    assert found.simulated < len(baseline.flights) * len(oracle.SCHEDULES)


def test_the_oracle_no_promotion_run_is_the_baseline(
        oracle_world: tuple[ProducerSettings, outcomes.Ledger, oracle.OracleResult]) -> None:
    """Simulated alone (no snapshots, label ids), the no-promotion schedule books exactly what
    the closed-loop baseline booked, flight by flight."""
    world, baseline, _ = oracle_world
    alone, _ = oracle.simulate_schedule(world, oracle.NONE)
    assert {k: (f.status, sorted(f.bookings.values()), f.booked_by_day)
            for k, f in alone.items()} == \
        {k: (f.status, sorted(f.bookings.values()), f.booked_by_day)
         for k, f in baseline.flights.items()}


@pytest.mark.parametrize("schedule", [oracle.Schedule(35, 7), oracle.Schedule(10, 3)])
def test_a_schedule_changes_only_the_flights_the_oracle_simulates_it_on(
        schedule: oracle.Schedule) -> None:
    """The oracle skips the flights whose target bucket is sold out for the whole window: on
    them the schedule's outcome is the no-promotion one, and on the others a flight simulated
    with a few others is the same as in the whole world."""
    world = small_world(seed=3, flights=40)
    flights = oracle.build_schedule(world.flights, world.days, world.first_departure_date)
    none, closed = oracle.simulate_schedule(world, oracle.NONE)
    everything, _ = oracle.simulate_schedule(world, schedule)
    changed = [i for i, f in enumerate(flights)
               if oracle.may_change(f, closed[f.flight_id], schedule)]
    assert 0 < len(changed) < len(flights)
    some, _ = oracle.simulate_schedule(world, schedule, changed)
    assert set(some) == {flights[i].flight_id for i in changed}
    for fid, outcome in everything.items():
        assert outcome == some.get(fid, none[fid])


def test_the_oracle_is_the_same_in_one_process() -> None:
    world = small_world(seed=7, flights=12)
    assert oracle.run(world, workers=1).choices == oracle.run(world, workers=2).choices


# --------------------------------------------------------------------------- statistics
def _ledger(revenues: dict[str, str]) -> outcomes.Ledger:
    ledger = outcomes.Ledger()
    for fid, revenue in revenues.items():
        ledger.flights[fid] = outcomes.FlightOutcome(
            seats=100, status="departed", bookings={"b": (1, Decimal(revenue), Decimal(0))})
    return ledger


def test_the_interval_is_paired_and_contains_the_mean() -> None:
    base = _ledger({"A": "100", "B": "200", "C": "300", "D": "400"})
    same = outcomes.paired_change(base, base)
    assert (same.pct, same.ci95) == (0.0, (0.0, 0.0))
    # A constant +10 per flight: no spread in the differences, however spread the revenues.
    shifted = outcomes.paired_change(_ledger({"A": "110", "B": "210", "C": "310", "D": "410"}),
                                     base)
    assert shifted.pct == pytest.approx(4.0) and shifted.ci95 == pytest.approx((4.0, 4.0))
    # Differences 0, 20, 0, 20: mean 10, sd 11.547, half width 1.96 * 11.547 / 2 = 11.32.
    mixed = outcomes.paired_change(_ledger({"A": "100", "B": "220", "C": "300", "D": "420"}),
                                   base)
    assert mixed.ci95 is not None
    assert mixed.ci95 == pytest.approx(((10 - 11.3161) / 2.5, (10 + 11.3161) / 2.5), abs=1e-3)
    assert mixed.ci95[0] <= mixed.pct <= mixed.ci95[1]
    # Only flights departed in both count.
    partial = _ledger({"A": "1000"})
    partial.flights["A"].status = "cancelled"
    assert outcomes.paired_change(partial, base).flights == 0


def test_oracle_share_is_the_uplift_over_the_oracles() -> None:
    base = _ledger({"A": "100", "B": "100"})
    shares = {r.name: r.oracle_share for r in compare(
        {BASELINE: base, "p": _ledger({"A": "105", "B": "100"}),
         "oracle": _ledger({"A": "110", "B": "100"})})}
    assert shares == {BASELINE: 0.0, "p": pytest.approx(0.5), "oracle": 1.0}
    flat = compare({BASELINE: base, "p": _ledger({"A": "105", "B": "100"}), "oracle": base})
    assert [r.oracle_share for r in flat] == [None, None, None]
    assert [r.oracle_share for r in compare({BASELINE: base, "p": base})] == [None, None]


def test_identical_runs_give_a_zero_interval(pace_results: list[outcomes.PolicyResult]) -> None:
    baseline, pace = pace_results
    assert baseline.revenue_change_pct == 0.0 and baseline.revenue_change_ci95 == (0.0, 0.0)
    assert pace.revenue_change_ci95 is not None
    low, high = pace.revenue_change_ci95
    assert low <= pace.revenue_change_pct <= high and low < high
    assert pace.revenue_change_pct == pytest.approx(
        float((pace.revenue - baseline.revenue) / baseline.revenue * 100))
    assert pace.promotions_per_flight == pytest.approx(pace.promotions / pace.departed)


# --------------------------------------------------------------------------- command line
@pytest.fixture
def tiny_world(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODUCER_BOOKING_HORIZON_DAYS", "21")
    monkeypatch.setenv("PRODUCER_SNAPSHOT_INTERVAL_MINUTES", "1440")
    monkeypatch.setenv("EVALUATE_WORKERS", "2")


@pytest.mark.usefixtures("tiny_world")
def test_json_has_the_oracle_and_the_new_fields(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    assert main(["--flights", "16", "--days", "2", "--policies", "pace", "--oracle", "--json",
                 "--report", str(tmp_path), "--log-format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    runs = {r["name"]: r for r in report["runs"]}
    assert list(runs) == [BASELINE, "pace", "oracle"]
    for r in runs.values():
        for key in ("revenue_change_pct", "revenue_change_ci95", "promotions_per_flight",
                    "discount_given", "oracle_share", "mean_load_factor", "promoted"):
            assert key in r
        low, high = r["revenue_change_ci95"]
        assert low <= r["revenue_change_pct"] <= high
    best = runs["oracle"]
    assert best["revenue_change_pct"] > 0 and best["oracle_share"] == 1.0
    assert runs["pace"]["oracle_share"] == pytest.approx(
        runs["pace"]["revenue_change_pct"] / best["revenue_change_pct"], abs=1e-3)
    assert sum(report["oracle"]["chosen"].values()) == best["departed"]
    # The report: Markdown and self-contained HTML with three inline SVG charts.
    page = (tmp_path / "report.html").read_text()
    assert page.count("<svg") == 3 and page.count("</svg>") == 3
    assert not re.search(r"https?:|src=|href=|<script|url\(|@import", page)
    markdown = (tmp_path / "report.md").read_text()
    assert "airline-evaluate --flights 16" in markdown and "CPUs" in markdown
    for chart in re.findall(r"\]\(([^)]+\.svg)\)", markdown):
        assert (tmp_path / chart).read_text().startswith("<svg xmlns=")
    assert len(re.findall(r"\]\(([^)]+\.svg)\)", markdown)) == 3
    assert (tmp_path / "oracle.csv").read_text().count("\n") == 16 + 1


@pytest.mark.usefixtures("tiny_world")
def test_scenarios_times_seeds_give_one_table_each(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    args = ["--flights", "12", "--days", "2", "--policies", "pace", "--scenarios",
            "default,weak", "--seeds", "3,5", "--log-format", "json"]
    assert main([*args, "--json", "--report", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in report["scenarios"]] == ["default", "weak"]
    assert report["seeds"] == [3, 5]
    default, weak = report["scenarios"]
    assert weak["demand"] == {"target_load_factor": 0.65}
    for scenario in (default, weak):
        assert [r["name"] for r in scenario["runs"]] == [BASELINE, "pace"]
        assert [s["seed"] for s in scenario["by_seed"]] == [3, 5]
        assert scenario["runs"][0]["flights"] == 24  # pooled: 12 flights x 2 seeds
    assert weak["runs"][0]["mean_load_factor"] < default["runs"][0]["mean_load_factor"]
    assert (tmp_path / "report.html").read_text().count("<svg") == 6
    assert main(args) == 0
    text = capsys.readouterr().out
    assert text.count("== scenario ") == 2 and text.count("baseline (no promotions)") == 2


def test_settings_of_scenarios_and_seeds() -> None:
    assert Settings().scenario_names == [] and Settings().seed_list == [42]
    assert Settings(seeds="7, 11").scenario_names == ["default"]
    assert Settings(seeds="7, 11").seed_list == [7, 11]
    assert Settings(scenarios="weak,elastic").seed_list == [42]
    for bad in ({"EVALUATE_SCENARIOS": "weak,boom"}, {"EVALUATE_SEEDS": "7,x"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            from airline_core.config import from_values
            from_values(Settings, {}, bad)
