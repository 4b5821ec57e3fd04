"""Promotion tiers: each escalation is a new ``PromotionTriggered`` (new ``promo_id``) and the
engine's ``PromotionEnded`` names only the last one; every earlier tier must still end (at the
next trigger, ``'escalated'``), whichever run brings which event."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pytest
from airline_core import events as ev
from airline_core.ids import derive_id
from airline_etl import gold, warehouse
from airline_etl.app import RunSummary
from airline_testkit.lake import write_roll
from etl_lake_fixtures import T0
from test_etl_load import assert_same, snapshot

pytestmark = pytest.mark.postgres

Runner = Callable[..., RunSummary]
FLIGHT = "BA300_2025-11-28"
DEP = datetime(2025, 11, 28, 10, 0, tzinfo=T0.tzinfo)
TIERS = [(T0 + timedelta(days=1), 5), (T0 + timedelta(days=2), 10), (T0 + timedelta(days=3), 15)]
END = T0 + timedelta(days=4)
#: booking (and metric) times: before, during each tier, after the end (twice).
BOOKED = [T0 + timedelta(hours=12), *(t + timedelta(hours=1) for t, _ in TIERS),
          END + timedelta(hours=1), END + timedelta(days=2)]


def eid(*parts: object) -> str:
    return derive_id("test", "tiers", *parts)


def promo_id(tier: int) -> str:
    return eid("promo", tier)


def _events() -> dict[str, list[Any]]:
    """One flight whose promotion escalates 5% -> 10% -> 15%, then ends ``recovered``."""
    out: dict[str, list[Any]] = {"flight_lifecycle": [ev.FlightScheduled(
        event_id=eid("sched"), event_time=T0, flight_id=FLIGHT, airline_code="BA",
        origin_airport="LHR", destination_airport="JFK", scheduled_departure_time=DEP,
        scheduled_arrival_time=DEP + timedelta(hours=8), aircraft_type="A320", total_seats=180,
        cabins=[ev.Cabin(cabin_code="Y", seat_count=180)])]}
    out["promo_decisions"] = [ev.PromotionTriggered(
        event_id=eid("trigger", i), event_time=t, flight_id=FLIGHT,
        decision_source="RULE_ENGINE", current_load_factor=0.2, minutes_to_departure=9000,
        target_fare_bucket="K", discount_percentage=pct, promo_id=promo_id(i), tier=i + 1,
        reason="slow pace") for i, (t, pct) in enumerate(TIERS)]
    out["promo_decisions"].append(ev.PromotionEnded(
        event_id=eid("end"), event_time=END, flight_id=FLIGHT, promo_id=promo_id(2),
        decision_source="RULE_ENGINE", reason="recovered"))
    # No booking carries a promo_id: "during a promotion" comes from the tiers' time windows.
    out["bookings"] = [ev.BookingCreated(
        event_id=eid("booking", i), event_time=t, flight_id=FLIGHT, booking_id=eid("b", i),
        channel="WEB", fare_bucket="K", currency="GBP", total_price=Decimal("100.00"),
        passengers=[ev.Passenger(passenger_id=eid("p", i), seat_id=f"{i + 1}A",
                                 cabin_code="Y")]) for i, t in enumerate(BOOKED)]
    out["flight_lifecycle"].append(ev.FlightDeparted(
        event_id=eid("dep"), event_time=DEP, flight_id=FLIGHT, actual_departure_time=DEP))
    return out


def _metric_lines() -> list[bytes]:
    """Metrics without ``active_discount_percentage`` (as old events): the trend view derives
    the discount from the promotions active at the metric's time."""
    return [ev.encode(ev.CabinInventoryMetrics(
        event_id=eid("m", i), event_time=t + timedelta(minutes=30), flight_id=FLIGHT,
        booked_seats=i + 1, total_seats=180, load_factor=round((i + 1) / 180, 4),
        minutes_to_departure=1000)).replace(b'"active_discount_percentage":0,', b"")
        for i, t in enumerate(BOOKED)]


def _rows(db: Any, sql: str) -> list[tuple[Any, ...]]:
    with db.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


EXPECTED_ENDS = [(TIERS[0][0], TIERS[1][0], "escalated"), (TIERS[1][0], TIERS[2][0], "escalated"),
                 (TIERS[2][0], END, "recovered")]


def _assert_final(db: Any) -> None:
    assert _rows(db, "SELECT promo_time, end_time, end_reason FROM fact_promotions "
                     "ORDER BY promo_time") == EXPECTED_ENDS
    assert _rows(db, "SELECT promo_time, end_time, end_reason FROM v_promotion_annotations "
                     "ORDER BY promo_time") == EXPECTED_ENDS
    # Bookings during tier 1, 2 and 3 only: not before, not after the end.
    assert _rows(db, "SELECT bookings, bookings_during_promotions, revenue_during_promotions, "
                     "promotions_fired, max_discount_percentage FROM fact_flight_outcome") == [
        (len(BOOKED), 3, Decimal("300.00"), 3, 15)]
    trend = _rows(db, "SELECT active_discount_percentage, active_promo_id FROM v_inventory_trend "
                      "ORDER BY metric_time")
    assert trend == [(0, None), (5, promo_id(0)), (10, promo_id(1)), (15, promo_id(2)),
                     (0, None), (0, None)]


def test_superseded_tiers_end_at_the_next_trigger(run_etl: Runner, db: Any,
                                                  lake_dir: Path) -> None:
    for offset, (topic, events) in enumerate(_events().items()):
        write_roll(lake_dir, topic, 0, offset * 100, [ev.encode(e) for e in events])
    write_roll(lake_dir, "inventory_metrics", 0, 0, _metric_lines())
    assert run_etl().status == "loaded"
    _assert_final(db)
    for table, frame in snapshot(db).items():
        assert gold.read_current(lake_dir, table).equals(frame), table


def test_a_later_run_bringing_the_next_trigger_ends_the_earlier_tier(
        run_etl: Runner, db: Any, lake_dir: Path) -> None:
    """Incremental equals full: tier by tier in separate runs (the end first of all)."""
    events = _events()
    triggers, end = events["promo_decisions"][:3], events["promo_decisions"][3]
    waves: list[dict[str, list[bytes]]] = [
        {"flight_lifecycle": [ev.encode(events["flight_lifecycle"][0])],
         "promo_decisions": [ev.encode(end), ev.encode(triggers[0])],
         "bookings": [ev.encode(b) for b in events["bookings"][:2]],
         "inventory_metrics": _metric_lines()},
        {"promo_decisions": [ev.encode(triggers[1])]},
        {"promo_decisions": [ev.encode(triggers[2])],
         "bookings": [ev.encode(b) for b in events["bookings"][2:]],
         "flight_lifecycle": [ev.encode(events["flight_lifecycle"][1])]},
    ]
    ends = "SELECT end_time, end_reason FROM fact_promotions ORDER BY promo_time"
    expected_after = [[(None, None)],
                      [(TIERS[1][0], "escalated"), (None, None)],
                      [(e, r) for _, e, r in EXPECTED_ENDS]]
    for i, wave in enumerate(waves):
        for topic, lines in wave.items():
            write_roll(lake_dir, topic, 1, i * 100, lines)
        assert run_etl().status == "loaded"
        assert _rows(db, ends) == expected_after[i]
    _assert_final(db)
    incremental = snapshot(db)
    run_etl(full=True)
    assert_same(incremental, snapshot(db))


def test_an_explicit_end_before_the_next_trigger_wins(run_etl: Runner, db: Any,
                                                      lake_dir: Path) -> None:
    """A tier ended on its own, then a new promotion later: each keeps its own end."""
    events = _events()
    first, _, third = events["promo_decisions"][:3]
    early_end = ev.PromotionEnded(
        event_id=eid("end-0"), event_time=TIERS[0][0] + timedelta(hours=3), flight_id=FLIGHT,
        promo_id=promo_id(0), decision_source="RULE_ENGINE", reason="expired")
    write_roll(lake_dir, "flight_lifecycle", 0, 0,
               [ev.encode(e) for e in events["flight_lifecycle"]])
    write_roll(lake_dir, "promo_decisions", 0, 0,
               [ev.encode(e) for e in (first, early_end, third)])
    run_etl()
    assert _rows(db, "SELECT end_time, end_reason FROM fact_promotions ORDER BY promo_time") == [
        (early_end.event_time, "expired"), (None, None)]


def test_migration_003_ends_the_tiers_of_a_warehouse_loaded_before(
        run_etl: Runner, db: Any, lake_dir: Path) -> None:
    """A warehouse loaded under 001's rule is corrected by migration 003, and gold with it."""
    for offset, (topic, events) in enumerate(_events().items()):
        write_roll(lake_dir, topic, 0, offset * 100, [ev.encode(e) for e in events])
    write_roll(lake_dir, "inventory_metrics", 0, 0, _metric_lines())
    first = run_etl()
    with db.cursor() as cur:  # what 001's rule left behind, before 003 existed
        cur.execute("UPDATE fact_promotions SET end_time = NULL, end_reason = NULL "
                    "WHERE end_reason = 'escalated'")
        cur.execute("UPDATE fact_flight_outcome SET bookings_during_promotions = 5, "
                    "revenue_during_promotions = 500")
        cur.execute("DELETE FROM schema_migrations WHERE version = 3")
    again = run_etl()
    # No new lake entry, but the migration changed data: gold is exported again.
    assert again.status == "loaded" and again.files == 0 and again.run_id != first.run_id
    _assert_final(db)
    assert gold.current_run(lake_dir) == again.run_id
    for table, frame in snapshot(db).items():
        assert gold.read_current(lake_dir, table).equals(frame), table
    assert run_etl().status == "nothing new"
    assert warehouse.latest_run(db) is not None


# --------------------------------------------------------------------------- explanations
EXPLANATION_COLUMNS = ("forecast_demand", "forecast_low", "forecast_high", "expected_spoilage",
                       "response_elasticity", "response_evidence", "expected_revenue_with",
                       "expected_revenue_without")
#: The trigger's and the end's explanations, and the values the warehouse holds for them
#: (numeric(12,3) for seats and the response model, numeric(12,2) for money: rounded there).
TRIGGER_WHY = ev.DecisionExplanation(
    forecast_demand=42.125, forecast_low=30.5, forecast_high=55.75, expected_spoilage=12.25,
    response_elasticity=-1.23456, response_evidence=18.0, expected_revenue_with=15234.5,
    expected_revenue_without=14890.255)
TRIGGER_ROW = tuple(Decimal(v) for v in (
    "42.125", "30.500", "55.750", "12.250", "-1.235", "18.000", "15234.50", "14890.26"))
END_WHY = ev.DecisionExplanation(  # the contract's bounds, and zeros
    forecast_demand=0.0, forecast_low=-1e8, forecast_high=1e8, expected_spoilage=0.0,
    response_elasticity=-0.5, response_evidence=0.0, expected_revenue_with=1e8,
    expected_revenue_without=-1e8)
END_ROW = tuple(Decimal(v) for v in (
    "0.000", "-100000000.000", "100000000.000", "0.000", "-0.500", "0.000", "100000000.00",
    "-100000000.00"))
NULLS = (None,) * len(EXPLANATION_COLUMNS)


def _explained_events() -> dict[str, list[Any]]:
    """``_events()`` with the first tier's trigger and the end explained (schema 1.2); the
    other triggers carry no explanation, as events before 1.2."""
    events = _events()
    promos = events["promo_decisions"]
    promos[0] = msgspec.structs.replace(promos[0], explanation=TRIGGER_WHY)
    promos[3] = msgspec.structs.replace(promos[3], explanation=END_WHY)
    return events


def _write(lake_dir: Path, events: dict[str, list[Any]], generation: int = 0) -> None:
    for offset, (topic, topic_events) in enumerate(events.items()):
        write_roll(lake_dir, topic, 0, offset * 100, [ev.encode(e) for e in topic_events],
                   generation=generation)


def _explanations(db: Any, table: str, order: str) -> list[tuple[Any, ...]]:
    return _rows(db, f"SELECT {', '.join(EXPLANATION_COLUMNS)} FROM {table} ORDER BY {order}")


def _assert_explanations(db: Any) -> None:
    assert _explanations(db, "fact_promotions", "promo_time") == [TRIGGER_ROW, NULLS, NULLS]
    assert _explanations(db, "v_promotion_annotations", "promo_time") == [
        TRIGGER_ROW, NULLS, NULLS]
    assert _explanations(db, "fact_promotion_end", "promo_id") == [END_ROW]


def test_explanations_land_in_their_columns_and_reruns_change_nothing(
        run_etl: Runner, db: Any, lake_dir: Path) -> None:
    """Every field of an explanation in its column (rounded to the column's scale), NULLs for a
    decision without one; replays and --full change nothing."""
    events = _explained_events()
    assert events["promo_decisions"][1].explanation is None
    _write(lake_dir, events)
    write_roll(lake_dir, "inventory_metrics", 0, 0, _metric_lines())
    first = run_etl()
    assert first.status == "loaded" and first.rejects == 0
    _assert_explanations(db)
    _assert_final(db)
    before = snapshot(db)
    for table, frame in before.items():
        assert gold.read_current(lake_dir, table).equals(frame), table
    assert before["fact_promotions"]["expected_revenue_with"].dtype == pl.Decimal(12, 2)
    assert before["fact_promotion_end"]["response_elasticity"].dtype == pl.Decimal(12, 3)

    assert run_etl().status == "nothing new"
    # The same events again in new lake entries (a replay through a new broker): staged, and
    # not one row changed.
    _write(lake_dir, events, generation=1)
    replay = run_etl()
    assert replay.status == "loaded" and replay.files > 0
    assert (replay.staged["promotion"], replay.staged["promotion_end"]) == (3, 1)
    assert replay.changed["fact_promotions"] == replay.changed["fact_promotion_end"] == 0
    assert_same(before, snapshot(db))
    run_etl(full=True)
    _assert_explanations(db)
    assert_same(before, snapshot(db))


def test_explanation_columns_and_the_annotation_view_keep_the_dashboards_columns(
        run_etl: Runner, db: Any, lake_dir: Path) -> None:
    """Migration 006's types, and v_promotion_annotations: 002's columns unchanged in name and
    order (Tableau dashboards use them), the trigger's explanation appended."""
    run_etl()
    rows = _rows(db, "SELECT table_name, column_name, data_type, numeric_precision, "
                     "numeric_scale, is_nullable FROM information_schema.columns "
                     "WHERE table_schema = current_schema() AND table_name IN "
                     "('fact_promotions', 'fact_promotion_end') ORDER BY ordinal_position")
    types = {(t, c): tuple(rest) for t, c, *rest in rows}
    for table in ("fact_promotions", "fact_promotion_end"):
        for column in EXPLANATION_COLUMNS:
            scale = 2 if column.startswith("expected_revenue") else 3
            assert types[(table, column)] == ("numeric", 12, scale, "YES"), (table, column)
    view = _rows(db, "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                     "current_schema() AND table_name = 'v_promotion_annotations' "
                     "ORDER BY ordinal_position")
    assert [c for (c,) in view] == [
        "flight_id", "promo_time", "end_time", "promo_id", "tier", "discount_percentage",
        "target_fare_bucket", "decision_source", "reason", "end_reason", "label",
        *EXPLANATION_COLUMNS]
    assert [m.version for m in warehouse.migrations()] == [1, 2, 3, 4, 5, 6, 7, 8]


def test_migration_006_on_a_warehouse_loaded_before(run_etl: Runner, db: Any,
                                                    lake_dir: Path) -> None:
    """A warehouse loaded before 006 gets the columns (NULL for the rows already loaded) and a
    fresh gold; ``--full`` then fills the explanations of the events already loaded."""
    _write(lake_dir, _explained_events())
    write_roll(lake_dir, "inventory_metrics", 0, 0, _metric_lines())
    first = run_etl()
    view_002 = next(s for s in next(m for m in warehouse.migrations() if m.version == 2)
                    .sql.split(";") if "VIEW v_promotion_annotations" in s)
    drops = ", ".join(f"DROP COLUMN {c}" for c in EXPLANATION_COLUMNS)
    with db.cursor() as cur:  # the warehouse as 001-005 left it
        cur.execute("DROP VIEW v_promotion_annotations")
        cur.execute(f"ALTER TABLE fact_promotions {drops}")
        cur.execute(f"ALTER TABLE fact_promotion_end {drops}")
        cur.execute(view_002)
        cur.execute("DELETE FROM schema_migrations WHERE version = 6")
    again = run_etl()
    assert again.status == "loaded" and again.files == 0 and again.run_id != first.run_id
    assert _explanations(db, "fact_promotions", "promo_time") == [NULLS] * 3
    assert _explanations(db, "fact_promotion_end", "promo_id") == [NULLS]
    _assert_final(db)
    for table, frame in snapshot(db).items():  # gold exported again, with the new columns
        assert gold.read_current(lake_dir, table).equals(frame), table
    run_etl(full=True)
    _assert_explanations(db)
