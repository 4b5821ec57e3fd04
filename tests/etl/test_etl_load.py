"""The ETL against a real Postgres: types, counts, idempotence, incremental = full, rejects,
the user's old layout, the dashboard views, and gold = warehouse."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from airline_core import events as ev
from airline_core.topics import LAKE_TOPICS
from airline_etl import gold, warehouse
from airline_etl.app import RunSummary
from airline_etl.errors import LakeError, RejectLimitError
from airline_testkit.events import World, make_world
from airline_testkit.lake import write_legacy, write_roll, write_world

pytestmark = pytest.mark.postgres

Runner = Callable[..., RunSummary]


def snapshot(db: Any) -> dict[str, pl.DataFrame]:
    """Every gold table's content, typed and sorted."""
    return {t: warehouse.read_table(db, t) for t in warehouse.GOLD_TABLES}


def assert_same(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> None:
    assert a.keys() == b.keys()
    for table in a:
        assert a[table].equals(b[table]), f"{table} differs"


def count(db: Any, sql: str) -> int:
    with db.cursor() as cur:
        cur.execute(sql)
        return int(cur.fetchone()[0])


def assert_world_loaded(db: Any, world: World) -> None:
    assert warehouse.ledger_counts(db) == {t: len(world.by_topic.get(t, [])) for t in LAKE_TOPICS}
    assert count(db, "SELECT count(*) FROM fact_booking") == world.passengers
    assert count(db, "SELECT count(*) FROM fact_booking WHERE cancellation_time IS NOT NULL") \
        == world.cancelled_passengers
    assert count(db, "SELECT count(*) FROM fact_inventory_metrics") \
        == world.count("inventory_metrics")
    triggered = [e for e in world.by_topic["promo_decisions"]
                 if isinstance(e, ev.PromotionTriggered)]
    assert count(db, "SELECT count(*) FROM fact_promotions") == len(triggered)
    assert count(db, "SELECT count(*) FROM fact_promotions WHERE end_time IS NULL") == 0
    assert count(db, "SELECT count(*) FROM fact_flight_outcome") == len(world.departed)
    assert count(db, "SELECT count(*) FROM dead_letters") == world.count("dead_letter")


def test_typed_columns_and_counts_equal_the_lake(run_etl: Runner, db: Any,
                                                 lake_dir: Path) -> None:
    world = make_world()
    write_world(lake_dir, world, roll_size=7)
    summary = run_etl()
    assert summary.status == "loaded" and summary.rejects == 0
    assert_world_loaded(db, world)
    with db.cursor() as cur:
        cur.execute("SELECT table_name, column_name, data_type, numeric_precision, numeric_scale"
                    " FROM information_schema.columns WHERE table_schema = current_schema()")
        types = {(t, c): (d, p, s) for t, c, d, p, s in cur.fetchall()}
    assert types[("fact_booking", "booking_time")][0] == "timestamp with time zone"
    assert types[("fact_booking", "total_price")] == ("numeric", 10, 2)
    assert types[("fact_inventory_metrics", "load_factor")] == ("numeric", 5, 4)
    assert types[("fact_inventory_metrics", "booked_seats")][0] == "integer"
    assert types[("fact_promotions", "promo_time")][0] == "timestamp with time zone"
    assert types[("fact_promotions", "current_load_factor")] == ("numeric", 5, 4)
    assert types[("dim_flight", "scheduled_departure_time")][0] == "timestamp with time zone"
    # The price split per passenger sums to each booking's total.
    assert count(db, """SELECT count(*) FROM (SELECT booking_id, max(total_price) t,
                 sum(passenger_price) s FROM fact_booking GROUP BY booking_id) x
                 WHERE t <> s""") == 0
    with db.cursor() as cur:
        cur.execute("SELECT status, count(*) FROM dim_flight GROUP BY status")
        assert dict(cur.fetchall()) == {"departed": 2, "cancelled": 1}
        cur.execute("SELECT delay_minutes, current_departure_time - scheduled_departure_time "
                    "FROM dim_flight WHERE flight_id LIKE 'BA201%'")
        delay, shift = cur.fetchone()
        assert delay == 30 and shift.total_seconds() == 1800
        cur.execute("SELECT booked_seats, bookings, cancelled_passengers, revenue, "
                    "promotions_fired, bookings_during_promotions FROM fact_flight_outcome "
                    "WHERE flight_id LIKE 'BA200%'")
        assert cur.fetchone() == (10, 5, 2, Decimal("1000.05"), 1, 1)


def test_rerun_changes_nothing_and_full_rebuild_is_identical(run_etl: Runner, db: Any,
                                                             lake_dir: Path) -> None:
    write_world(lake_dir, make_world(), roll_size=5)
    first = run_etl()
    before = snapshot(db)
    pointer = gold.current_run(lake_dir)
    again = run_etl()
    assert again.status == "nothing new" and again.files == 0
    assert_same(before, snapshot(db))
    assert gold.current_run(lake_dir) == pointer == first.run_id
    full = run_etl(full=True)
    assert full.files == first.files
    assert_same(before, snapshot(db))
    assert count(db, "SELECT count(*) FROM etl_loaded_files") == first.files


def test_incremental_adds_exactly_the_new_files_rows(run_etl: Runner, db: Any,
                                                     lake_dir: Path) -> None:
    a, b = make_world(tag="a"), make_world(flights=2, tag="b")
    write_world(lake_dir, a, partition=0)
    run_etl()
    before = warehouse.ledger_counts(db)
    new_manifests = write_world(lake_dir, b, partition=1)
    summary = run_etl()
    assert summary.files == new_manifests
    after = warehouse.ledger_counts(db)
    assert {t: after[t] - before[t] for t in after} == {
        t: len(b.by_topic.get(t, [])) for t in LAKE_TOPICS}
    assert count(db, "SELECT count(*) FROM fact_booking") == a.passengers + b.passengers


def test_incremental_equals_full_whatever_the_order_of_arrival(run_etl: Runner, db: Any,
                                                               lake_dir: Path) -> None:
    """Cancellations before their bookings, promotion ends before starts, departures before
    the schedule: loaded in three runs, then rebuilt in one, the warehouse is the same."""
    world = make_world(flights=3, bookings_per_flight=5)
    late_types = (ev.BookingCreated, ev.PromotionTriggered, ev.FlightScheduled,
                  ev.CabinInventoryMetrics)
    offset = 0
    for wave in ("early", "late", "dup"):
        for topic, events in world.by_topic.items():
            if wave == "early":
                chosen = [e for e in events if not isinstance(e, late_types)]
            elif wave == "late":
                chosen = [e for e in events if isinstance(e, late_types)]
            else:  # redelivered events in new files (at-least-once): no new rows
                chosen = events[:2]
            if chosen:
                write_roll(lake_dir, topic, 0, offset, [ev.encode(e) for e in chosen])
        offset += 10_000
        run_etl()
    incremental = snapshot(db)
    assert_world_loaded(db, world)
    run_etl(full=True)
    assert_same(incremental, snapshot(db))


def test_malformed_lines_become_rejects_with_reasons(run_etl: Runner, db: Any,
                                                     lake_dir: Path) -> None:
    world = make_world(flights=2)
    write_world(lake_dir, world)
    bad = [b"{not json", b'{"event_type": "BookingCreated", "event_id": "x1", '
           b'"event_time": "2025-11-20T08:00:00Z", "flight_id": "F", "booking_id": "b", '
           b'"channel": "WEB", "fare_bucket": "K", "currency": "GBP", "total_price": "abc", '
           b'"passengers": [{"passenger_id": "p", "seat_id": "1A", "cabin_code": "Y"}]}']
    good = [ev.encode(e) for e in make_world(flights=1, tag="extra").by_topic["bookings"]]
    write_roll(lake_dir, "bookings", 5, 0, [*good[:3], *bad, *good[3:]])
    summary = run_etl(max_reject_share=0.5)
    assert summary.rejects == 2
    with db.cursor() as cur:
        cur.execute("SELECT source_file, line_number, topic, reason, raw_line FROM etl_rejects "
                    "ORDER BY source_file, line_number")
        rows = cur.fetchall()
    assert len(rows) == 2
    for source_file, line_number, topic, _, raw_line in rows:
        assert source_file.startswith("raw/bookings/date=") and topic == "bookings"
        lines = (lake_dir / source_file).read_bytes().splitlines()
        assert lines[line_number - 1].decode() == raw_line  # points at the very line
    assert rows[0][3].startswith("not_json: ")
    assert rows[1][3].startswith("invalid_field: ") and "total_price" in rows[1][3]
    assert warehouse.ledger_counts(db)["bookings"] == world.count("bookings") + len(good)


def test_reject_share_over_the_limit_loads_nothing(run_etl: Runner, db: Any,
                                                   lake_dir: Path) -> None:
    write_world(lake_dir, make_world(flights=1, bookings_per_flight=2))
    write_roll(lake_dir, "bookings", 9, 0, [b"garbage"] * 5)
    with pytest.raises(RejectLimitError):
        run_etl(max_reject_share=0.01)
    assert sum(warehouse.ledger_counts(db).values()) == 0
    assert count(db, "SELECT count(*) FROM etl_loaded_files") == 0
    assert count(db, "SELECT count(*) FROM etl_rejects") == 5  # kept for inspection
    assert gold.current_run(lake_dir) is None
    assert run_etl(max_reject_share=0.9).rejects == 5  # a looser limit loads the rest


def test_files_without_a_manifest_are_never_read(run_etl: Runner, db: Any,
                                                 lake_dir: Path) -> None:
    world = make_world(flights=1)
    lines = [ev.encode(e) for e in world.by_topic["bookings"]]
    manifest = write_roll(lake_dir, "bookings", 0, 0, lines, manifest=False)
    assert run_etl().status == "nothing new"
    write_roll(lake_dir, "bookings", 0, 0, lines)  # the writer finishes the roll
    assert manifest.exists()
    assert run_etl().events == {"bookings": len(lines)}


def test_a_data_file_that_does_not_match_its_manifest_fails_the_run(
        run_etl: Runner, db: Any, lake_dir: Path) -> None:
    write_world(lake_dir, make_world(flights=1))
    victim = next((lake_dir / "raw" / "bookings").rglob("*.jsonl"))
    victim.write_bytes(victim.read_bytes().replace(b"WEB", b"APP"))
    with pytest.raises(LakeError, match="sha256"):
        run_etl()
    assert sum(warehouse.ledger_counts(db).values()) == 0


def _legacy_world(lake_dir: Path) -> dict[str, int]:
    flight = "BA210_2025-11-28"
    write_legacy(lake_dir, "flight_lifecycle", "2025-11-20", [{
        "event_type": "FlightScheduled", "event_time": "2025-11-20T08:00:00Z",
        "flight_id": flight, "airline_code": "BA", "origin_airport": "LHR",
        "destination_airport": "JFK", "scheduled_departure_time": "2025-11-28T10:00:00Z",
        "scheduled_arrival_time": "2025-11-28T18:00:00Z", "aircraft_type": "A320",
        "total_seats": 180, "cabins": [{"cabin_code": "Y", "seat_count": 150},
                                       {"cabin_code": "J", "seat_count": 30}]}])
    bookings = [{
        "event_type": "BookingCreated", "event_time": f"2025-11-2{i}T09:00:00Z",
        "booking_id": str(uuid.UUID(int=i + 1, version=4)), "flight_id": flight,
        "channel": "WEB", "fare_bucket": "K", "currency": "GBP", "total_price": 140.0,
        "passengers": [{"passenger_id": f"P{i}", "seat_id": f"{i + 10}C", "cabin_code": "Y"}],
    } for i in range(3)]
    write_legacy(lake_dir, "bookings", "2025-11-21", bookings)
    metrics = [{"event_type": "CabinInventoryMetrics", "event_time": f"2025-11-2{i}T10:00:00Z",
                "flight_id": flight, "booked_seats": i + 1, "total_seats": 180,
                "load_factor": round((i + 1) / 180, 3), "minutes_to_departure": 9000 - i * 1440}
               for i in range(3)]
    write_legacy(lake_dir, "inventory_metrics", "2025-11-21", metrics)
    write_legacy(lake_dir, "promo_decisions", "2025-11-21", [{
        "event_type": "PromotionTriggered", "event_time": "2025-11-21T09:30:00Z",
        "flight_id": flight, "decision_source": "RULE_ENGINE", "current_load_factor": 0.006,
        "minutes_to_departure": 9000, "target_fare_bucket": "K", "discount_percentage": 10}])
    return {"flight_lifecycle": 1, "bookings": 3, "inventory_metrics": 3, "promo_decisions": 1}


def test_the_users_old_layout_loads(run_etl: Runner, db: Any, lake_dir: Path) -> None:
    expected = _legacy_world(lake_dir)
    summary = run_etl()
    assert summary.rejects == 0
    assert warehouse.ledger_counts(db) == {t: expected.get(t, 0) for t in LAKE_TOPICS}
    assert count(db, "SELECT count(*) FROM etl_loaded_files WHERE kind = 'legacy'") == 4
    with db.cursor() as cur:
        cur.execute("SELECT metric_time, seats_remaining, active_discount_percentage "
                    "FROM v_inventory_trend ORDER BY metric_time")
        rows = cur.fetchall()
    assert [r[1] for r in rows] == [179, 178, 177]
    assert [r[2] for r in rows] == [0, 10, 10]  # derived from the promotion for old metrics
    assert run_etl().status == "nothing new"
    # The old writer appended to day files: a changed file is read again, only new lines add.
    write_legacy(lake_dir, "bookings", "2025-11-21", [{
        "event_type": "BookingCreated", "event_time": "2025-11-21T11:00:00Z",
        "booking_id": str(uuid.UUID(int=99, version=4)), "flight_id": "BA210_2025-11-28",
        "channel": "WEB", "fare_bucket": "M", "currency": "GBP", "total_price": "180.00",
        "passengers": [{"passenger_id": "P9", "seat_id": "3A", "cabin_code": "Y"}]}])
    again = run_etl()
    assert again.files == 1 and again.duplicates == 0
    assert warehouse.ledger_counts(db)["bookings"] == 4
    assert count(db, "SELECT count(*) FROM fact_booking") == 4


def test_views_return_what_the_dashboards_need(run_etl: Runner, db: Any,
                                               lake_dir: Path) -> None:
    world = make_world()
    write_world(lake_dir, world)
    run_etl()
    with db.cursor() as cur:
        cur.execute("SELECT flight_id, metric_time, seats_remaining, active_discount_percentage,"
                    " total_seats - booked_seats FROM v_inventory_trend")
        trend = cur.fetchall()
        assert len(trend) == world.count("inventory_metrics")
        assert all(r[2] == r[4] for r in trend)
        assert {r[3] for r in trend} == {0, 10}
        cur.execute("SELECT flight_id, minutes_to_departure, load_factor, route "
                    "FROM v_booking_pressure")
        pressure = cur.fetchall()
        assert len(pressure) == world.count("inventory_metrics")
        assert all(r[1] > 0 and 0 <= r[2] <= 1 and r[3].startswith("LHR-") for r in pressure)
        cur.execute("SELECT count(*), min(label) FROM v_promotion_annotations "
                    "WHERE end_time > promo_time")
        n, label = cur.fetchone()
        assert n == 3 and label == "10% on K (slow pace)"


def test_gold_equals_the_warehouse(run_etl: Runner, db: Any, lake_dir: Path) -> None:
    write_world(lake_dir, make_world(tag="g1"))
    first = run_etl()
    write_world(lake_dir, make_world(flights=2, tag="g2"), partition=2)
    second = run_etl()
    assert gold.current_run(lake_dir) == second.run_id != first.run_id
    for table, frame in snapshot(db).items():
        assert gold.read_current(lake_dir, table).equals(frame), table
    folder = gold.current_dir(lake_dir)
    assert folder is not None and (folder / "fact_booking.parquet").exists()


def test_ledger_and_reject_counts_for_reconciliation(run_etl: Runner, db: Any,
                                                     lake_dir: Path) -> None:
    world = make_world(flights=2)
    write_world(lake_dir, world)
    lines = sum(1 for p in (lake_dir / "raw").rglob("*.jsonl") for _ in p.open())
    run_etl()
    assert sum(warehouse.ledger_counts(db).values()) == lines
    assert warehouse.reject_counts(db) == {}
    manifests = [json.loads(p.read_text()) for p in (lake_dir / "raw/_manifests").rglob("*.json")]
    assert sum(m["records"] for m in manifests) == lines


def test_deleted_gold_is_rebuilt_from_the_warehouse(run_etl: Runner, db: Any,
                                                    lake_dir: Path) -> None:
    write_world(lake_dir, make_world(flights=2))
    first = run_etl()
    shutil.rmtree(lake_dir / "gold")
    again = run_etl()
    assert again.status == "nothing new" and again.pointer_recovered == first.run_id
    for table, frame in snapshot(db).items():
        assert gold.read_current(lake_dir, table).equals(frame), table


def test_gold_tables_a_run_did_not_change_are_linked_not_exported(run_etl: Runner, db: Any,
                                                                  lake_dir: Path) -> None:
    world = make_world(flights=2)
    write_world(lake_dir, world)
    first = run_etl()
    extra = make_world(flights=2, tag="more").by_topic["seat_map"]
    write_roll(lake_dir, "seat_map", 7, 0, [ev.encode(e) for e in extra])
    second = run_etl()
    old, new = gold.run_dir(lake_dir, first.run_id or ""), gold.current_dir(lake_dir)
    assert new is not None and second.run_id == new.name
    for table in ("fact_booking", "fact_inventory_metrics", "dim_flight"):
        assert (new / f"{table}.parquet").stat().st_ino == (old / f"{table}.parquet").stat().st_ino
    for table, frame in snapshot(db).items():
        assert gold.read_current(lake_dir, table).equals(frame), table


def test_an_event_id_seen_on_two_topics_is_one_ledger_row(run_etl: Runner, db: Any,
                                                          lake_dir: Path) -> None:
    world = make_world(flights=1, bookings_per_flight=2)
    booking = world.by_topic["bookings"][0]
    seat = world.by_topic["seat_map"][0]
    clash = ev.SeatAssigned(**{**{f: getattr(seat, f) for f in seat.__struct_fields__},
                               "event_id": booking.event_id})
    write_roll(lake_dir, "bookings", 0, 0, [ev.encode(e) for e in world.by_topic["bookings"]])
    write_roll(lake_dir, "seat_map", 0, 0, [ev.encode(clash)])
    assert run_etl().status == "loaded"
    counts = warehouse.ledger_counts(db)
    assert counts["bookings"] == world.count("bookings") and counts["seat_map"] == 0
    assert run_etl(full=True).status == "loaded"
    assert warehouse.ledger_counts(db) == counts


def test_capped_runs_load_the_lake_in_bounded_pieces_and_equal_one_run(
        run_etl: Runner, db: Any, lake_dir: Path) -> None:
    """ETL_MAX_RECORDS_PER_RUN bounds what one run holds in memory: a lake over the cap loads
    over several runs, oldest entries first, each taking no more than the cap (beyond one
    entry), and the warehouse then equals one uncapped full run; so does a capped --full.
    Runs that leave entries to the next leave gold to the last, which exports every table."""
    world = make_world(flights=3, bookings_per_flight=6)
    write_world(lake_dir, world, roll_size=4)
    cap = 10
    runs: list[RunSummary] = []
    while not runs or runs[-1].files_left:
        runs.append(run_etl(max_records_per_run=cap))
        assert runs[-1].status == "loaded"
        assert runs[-1].lines <= cap or runs[-1].files == 1
        assert runs[-1].gold_deferred == bool(runs[-1].files_left)
        if runs[-1].gold_deferred:
            assert gold.current_run(lake_dir) is None and runs[-1].gold_dir is None
    assert len(runs) > 3
    assert gold.current_run(lake_dir) == runs[-1].run_id
    assert_gold_is_the_warehouse(db, lake_dir)
    assert sum(r.files for r in runs) == count(db, "SELECT count(*) FROM etl_loaded_files")
    assert_world_loaded(db, world)
    pieces = snapshot(db)
    assert run_etl(full=True, max_records_per_run=0).files_left == 0
    assert_same(pieces, snapshot(db))
    first = run_etl(full=True, max_records_per_run=cap)
    assert first.files_left > 0 and first.gold_deferred
    while run_etl(max_records_per_run=cap).files_left:
        pass
    assert_same(pieces, snapshot(db))
    assert_gold_is_the_warehouse(db, lake_dir)


def assert_gold_is_the_warehouse(db: Any, lake_dir: Path) -> None:
    for table in warehouse.GOLD_TABLES:
        assert gold.read_current(lake_dir, table).equals(warehouse.read_table(db, table)), table


def test_a_catch_up_cut_short_still_gets_its_gold(etl_settings: Callable[..., Any], db: Any,
                                                  lake_dir: Path) -> None:
    """The invocation dies after a run that left gold to the next: the next invocation's run
    exports every table even when it finds nothing new to load (here: nothing completed
    before its horizon), so gold never stays behind the warehouse."""
    from airline_etl.app import run

    write_world(lake_dir, make_world(flights=2), roll_size=4)
    deferred = run(etl_settings(max_records_per_run=10))
    assert deferred.gold_deferred and gold.current_run(lake_dir) is None
    caught = run(etl_settings(), horizon_ns=0)
    assert caught.status == "loaded" and caught.files == 0 and not caught.gold_deferred
    assert gold.current_run(lake_dir) == caught.run_id
    assert_gold_is_the_warehouse(db, lake_dir)
    assert run(etl_settings(), horizon_ns=0).status == "nothing new"
