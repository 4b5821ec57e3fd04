"""The engine's verdicts against a real Postgres: a line the engine dead-lettered is a reject and
never a row, whether its verdict comes in the same run, before it, or after it was loaded (then
its rows are retracted and what depends on them recomputed); matched by position only; and
incremental loading still equals ``--full``, and replays add nothing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from airline_core import events as ev
from airline_core.contract import Reason
from airline_etl import gold, warehouse
from airline_etl.app import RunSummary
from airline_testkit.events import World, make_world
from airline_testkit.lake import write_roll
from etl_lake_fixtures import envelope, write_envelopes

pytestmark = pytest.mark.postgres

Runner = Callable[..., RunSummary]
BA200, BA201 = "BA200_w_2025-11-28", "BA201_w_2025-11-28"
#: fact_flight_outcome of BA200 in make_world(): six bookings of 1, 2, 3, 1, 2, 3 passengers
#: at 100.00 per passenger + 0.01, the second (2 passengers) cancelled.
OUTCOME = ("booked_seats", "bookings", "cancelled_passengers", "revenue")
BA200_OUTCOME = (10, 5, 2, Decimal("1000.05"))


@pytest.fixture
def etl(run_etl: Runner) -> Runner:
    """``run_etl`` for small lakes, where a few rejects are a large share of the lines."""

    def go(**overrides: Any) -> RunSummary:
        overrides.setdefault("max_reject_share", 0.5)
        return run_etl(**overrides)

    return go


def snapshot(db: Any) -> dict[str, pl.DataFrame]:
    return {t: warehouse.read_table(db, t) for t in warehouse.GOLD_TABLES}


def assert_same(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> None:
    assert a.keys() == b.keys()
    for table in a:
        assert a[table].equals(b[table]), f"{table} differs:\n{a[table]}\n{b[table]}"


def assert_gold_is_the_warehouse(db: Any, lake_dir: Path) -> None:
    for table, frame in snapshot(db).items():
        assert gold.read_current(lake_dir, table).equals(frame), table


def rows(db: Any, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with db.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def one(db: Any, sql: str, *args: Any) -> Any:
    [(value,)] = rows(db, sql, *args)
    return value


def outcome(db: Any, flight: str) -> tuple[Any, ...] | None:
    found = rows(db, f"SELECT {', '.join(OUTCOME)} FROM fact_flight_outcome WHERE flight_id = %s",
                 flight)
    return found[0] if found else None


def rejects(db: Any) -> list[tuple[Any, ...]]:
    return rows(db, "SELECT topic, reason_code, reason, source_file, line_number, raw_line "
                    "FROM etl_rejects ORDER BY topic, source_file, line_number")


def roll(lake_dir: Path, topic: str, events: Sequence[ev.Event], *, partition: int = 0,
         first: int = 0, generation: int = 0) -> dict[str, int]:
    """``events`` as one roll at offsets ``first``...; returns event id → its offset."""
    write_roll(lake_dir, topic, partition, first, [ev.encode(e) for e in events],
               generation=generation)
    return {e.event_id: first + i for i, e in enumerate(events)}


def letter(topic: str, event: ev.Event, offset: int, code: Reason = Reason.KEY_MISMATCH,
           partition: int = 0) -> ev.DeadLetter:
    return envelope(topic, partition, offset, ev.encode(event), code,
                    detail=f"the engine refused {event.event_id}")


def bookings_of(world: World, flight: str, kind: type[ev.Event] = ev.BookingCreated
                ) -> list[Any]:
    return [e for e in world.by_topic["bookings"] if isinstance(e, kind) and e.flight_id == flight]


def the_line_of(lake_dir: Path, source_file: str, line_number: int) -> bytes:
    return (lake_dir / source_file).read_bytes().splitlines()[line_number - 1]


def test_a_verdict_in_the_same_run_rejects_its_line(etl: Runner, db: Any,
                                                    lake_dir: Path) -> None:
    world = make_world()
    at = roll(lake_dir, "bookings", world.by_topic["bookings"])
    for topic in ("flight_lifecycle", "promo_decisions", "inventory_metrics"):
        roll(lake_dir, topic, world.by_topic[topic])
    first = bookings_of(world, BA200)[0]
    dead = letter("bookings", first, at[first.event_id])
    write_envelopes(lake_dir, [dead])
    summary = etl()
    assert (summary.rejects, summary.verdicts, summary.retracted) == (1, 1, 0)
    [(topic, code, reason, source_file, line_number, raw_line)] = rejects(db)
    assert (topic, code, reason) == ("bookings", "key_mismatch", dead.reason)
    assert the_line_of(lake_dir, source_file, line_number) == ev.encode(first)
    assert raw_line == ev.encode(first).decode()
    assert one(db, "SELECT count(*) FROM fact_booking WHERE event_id = %s", first.event_id) == 0
    assert one(db, "SELECT count(*) FROM etl_event_ledger WHERE event_id = %s",
               first.event_id) == 0
    assert one(db, "SELECT count(*) FROM fact_booking") == world.passengers - 1
    # Its flight's outcome lacks it: one passenger, one booking and 100.01 fewer.
    assert outcome(db, BA200) == (9, 4, 2, Decimal("900.04"))
    assert one(db, "SELECT count(*) FROM etl_engine_verdicts") == 1
    assert_gold_is_the_warehouse(db, lake_dir)


def test_a_later_verdict_retracts_a_loaded_booking(etl: Runner, db: Any,
                                                   lake_dir: Path) -> None:
    world = make_world()
    at = roll(lake_dir, "bookings", world.by_topic["bookings"])
    for topic in ("flight_lifecycle", "promo_decisions", "inventory_metrics", "seat_map"):
        roll(lake_dir, topic, world.by_topic[topic])
    etl()
    first = bookings_of(world, BA200)[0]
    assert one(db, "SELECT count(*) FROM fact_booking WHERE event_id = %s", first.event_id) == 1
    assert outcome(db, BA200) == BA200_OUTCOME
    assert rejects(db) == []

    dead = letter("bookings", first, at[first.event_id], Reason.UNKNOWN_FLIGHT)
    write_envelopes(lake_dir, [dead])
    summary = etl()
    assert (summary.retracted, summary.rejects, summary.reloaded_files) == (1, 0, 1)
    assert one(db, "SELECT count(*) FROM fact_booking WHERE event_id = %s", first.event_id) == 0
    assert one(db, "SELECT count(*) FROM fact_booking") == world.passengers - 1
    assert one(db, "SELECT count(*) FROM etl_event_ledger WHERE event_id = %s",
               first.event_id) == 0
    assert one(db, "SELECT count(*) FROM etl_input_positions WHERE event_id = %s",
               first.event_id) == 0
    assert outcome(db, BA200) == (9, 4, 2, Decimal("900.04"))
    [(topic, code, reason, source_file, line_number, _)] = rejects(db)
    assert (topic, code, reason) == ("bookings", "unknown_flight", dead.reason)
    assert the_line_of(lake_dir, source_file, line_number) == ev.encode(first)
    # The other rows stayed as they were, gold followed the warehouse, and --full agrees.
    loaded = ("bookings", "flight_lifecycle", "promo_decisions", "inventory_metrics", "seat_map")
    assert one(db, "SELECT count(*) FROM etl_event_ledger") == sum(
        world.count(t) for t in loaded) - 1 + 1  # the retracted booking out, its envelope in
    assert_gold_is_the_warehouse(db, lake_dir)
    incremental = snapshot(db)
    etl(full=True)
    assert_same(incremental, snapshot(db))
    assert [r[:5] for r in rejects(db)] == [(topic, code, reason, source_file, line_number)]


def test_a_later_verdict_on_a_departure_undoes_it(etl: Runner, db: Any,
                                                 lake_dir: Path) -> None:
    """The flight's dimension and outcome follow: recomputed from what stands, though no
    line of the flight is loaded in that run."""
    world = make_world()
    at = roll(lake_dir, "flight_lifecycle", world.by_topic["flight_lifecycle"])
    roll(lake_dir, "bookings", world.by_topic["bookings"])
    etl()
    assert outcome(db, BA201) is not None
    departed = next(e for e in world.by_topic["flight_lifecycle"]
                    if isinstance(e, ev.FlightDeparted) and e.flight_id == BA201)
    write_envelopes(lake_dir, [letter("flight_lifecycle", departed, at[departed.event_id],
                                      Reason.AHEAD_OF_WATERMARK)])
    summary = etl()
    assert summary.retracted == 1 and summary.events["flight_lifecycle"] == 0
    assert rows(db, "SELECT status, actual_departure_time FROM dim_flight WHERE flight_id = %s",
                BA201) == [("check_in_open", None)]
    assert outcome(db, BA201) is None and outcome(db, BA200) == BA200_OUTCOME
    assert_gold_is_the_warehouse(db, lake_dir)
    incremental = snapshot(db)
    etl(full=True)
    assert_same(incremental, snapshot(db))


@pytest.mark.parametrize("passengers", ["all", "one"])
def test_a_booking_a_refused_conflict_overwrote_comes_back(
        etl: Runner, db: Any, lake_dir: Path, passengers: str) -> None:
    """A conflicting booking (another event reusing a booking id and its passengers) loaded
    before its verdict overwrote the rows of the booking that stands, wholly or for one
    passenger; once it is refused, the booking's rows are the original ones again."""
    world = make_world(flights=1)
    taken = bookings_of(world, BA200)[2]
    roll(lake_dir, "bookings", world.by_topic["bookings"])
    roll(lake_dir, "flight_lifecycle", world.by_topic["flight_lifecycle"])
    etl()
    original = rows(db, "SELECT * FROM fact_booking WHERE booking_id = %s ORDER BY 2, 7",
                    taken.booking_id)
    conflict = ev.BookingCreated(**{
        **{f: getattr(taken, f) for f in taken.__struct_fields__},
        "event_id": "conflict", "event_time": taken.event_time + timedelta(minutes=5),
        "total_price": Decimal("1.00"),
        "passengers": taken.passengers if passengers == "all" else taken.passengers[:1]})
    roll(lake_dir, "bookings", [conflict], first=700)
    etl()
    overwritten = rows(db, "SELECT count(*) FROM fact_booking WHERE event_id = 'conflict'")
    assert overwritten == [(len(conflict.passengers),)]
    write_envelopes(lake_dir, [letter("bookings", conflict, 700,
                                      Reason.CONFLICTING_DUPLICATE)])
    assert etl().retracted == 1
    assert rows(db, "SELECT * FROM fact_booking WHERE booking_id = %s ORDER BY 2, 7",
                taken.booking_id) == original
    assert outcome(db, BA200) == BA200_OUTCOME
    incremental = snapshot(db)
    etl(full=True)
    assert_same(incremental, snapshot(db))


def test_only_the_dead_lettered_copy_of_identical_bytes_is_rejected(
        etl: Runner, db: Any, lake_dir: Path) -> None:
    """A booking whose record was dead-lettered for its key, then replayed correctly: the same
    bytes at two positions, the verdict in the same run. The event stands (the other copy)."""
    world = make_world(flights=1)
    booking = bookings_of(world, "BA200_w_2025-11-28")[2]
    at = roll(lake_dir, "bookings", world.by_topic["bookings"])
    roll(lake_dir, "flight_lifecycle", world.by_topic["flight_lifecycle"])
    roll(lake_dir, "bookings", [booking], partition=0, first=500)  # the replay
    write_envelopes(lake_dir, [letter("bookings", booking, 500)])
    etl()
    assert one(db, "SELECT count(*) FROM fact_booking WHERE event_id = %s", booking.event_id) \
        == len(booking.passengers)
    [reject] = rejects(db)
    assert reject[3].endswith("+00000000000000000500+00000000000000000500.jsonl")
    assert outcome(db, BA200) == BA200_OUTCOME

    assert sorted(rows(db, "SELECT kafka_offset FROM etl_input_positions WHERE event_id = %s",
                       booking.event_id)) == [(at[booking.event_id],)]
    incremental = snapshot(db)
    etl(full=True)
    assert_same(incremental, snapshot(db))
    assert len(rejects(db)) == 1


def test_the_last_copy_rejected_later_takes_the_event_with_it(
        etl: Runner, db: Any, lake_dir: Path) -> None:
    """Identical copies loaded first, their verdicts later: the event stands while one copy
    does (the retraction puts its rows back from that copy), and goes with the last."""
    world = make_world(flights=1)
    booking = bookings_of(world, BA200)[2]
    at = roll(lake_dir, "bookings", world.by_topic["bookings"])
    roll(lake_dir, "flight_lifecycle", world.by_topic["flight_lifecycle"])
    roll(lake_dir, "bookings", [booking], partition=0, first=500)
    etl()
    assert rows(db, "SELECT kafka_offset FROM etl_input_positions WHERE event_id = %s "
                    "ORDER BY 1", booking.event_id) == [(at[booking.event_id],), (500,)]
    write_envelopes(lake_dir, [letter("bookings", booking, at[booking.event_id])])
    assert etl().retracted == 1
    assert one(db, "SELECT count(*) FROM fact_booking WHERE event_id = %s", booking.event_id) \
        == len(booking.passengers)
    assert rows(db, "SELECT kafka_offset FROM etl_input_positions WHERE event_id = %s",
                booking.event_id) == [(500,)]
    write_envelopes(lake_dir, [letter("bookings", booking, 500)], first=1)
    assert etl().retracted == 1
    assert one(db, "SELECT count(*) FROM fact_booking WHERE event_id = %s", booking.event_id) == 0
    assert outcome(db, BA200) == (10 - 3, 4, 2, Decimal("1000.05") - Decimal("300.01"))
    incremental = snapshot(db)
    etl(full=True)
    assert_same(incremental, snapshot(db))


def test_verdicts_are_per_source_generation(etl: Runner, db: Any, lake_dir: Path) -> None:
    """After a move to a new broker offsets restart: a verdict of generation 1 names the line
    of generation 1 at that offset, never the one of generation 0."""
    old, new = make_world(flights=1, tag="old"), make_world(flights=1, tag="new")
    old_booking, new_booking = (w.by_topic["bookings"][0] for w in (old, new))
    roll(lake_dir, "bookings", old.by_topic["bookings"])
    roll(lake_dir, "bookings", new.by_topic["bookings"], generation=1)
    write_envelopes(lake_dir, [letter("bookings", new_booking, 0)], generation=1)
    etl()
    assert rows(db, "SELECT DISTINCT event_id FROM fact_booking WHERE event_id IN (%s, %s)",
                old_booking.event_id, new_booking.event_id) == [(old_booking.event_id,)]
    [reject] = rejects(db)
    assert reject[3].endswith("+g1.jsonl")
    # The same verdict from the old broker (generation 0) names the old line.
    write_envelopes(lake_dir, [letter("bookings", old_booking, 0)], first=9)
    assert etl().retracted == 1
    assert one(db, "SELECT count(*) FROM fact_booking WHERE event_id IN (%s, %s)",
               old_booking.event_id, new_booking.event_id) == 0


def _hostile_world() -> tuple[World, dict[str, ev.Event]]:
    """make_world() plus records the engine refuses: a second schedule of BA201 with other
    cabins, a booking reusing the id (and passengers) of one of BA200's, a booking of a flight
    never scheduled."""
    world = make_world()
    first_schedule = next(e for e in world.by_topic["flight_lifecycle"]
                          if isinstance(e, ev.FlightScheduled) and e.flight_id == BA201)
    assert isinstance(first_schedule, ev.FlightScheduled)
    schedule = ev.FlightScheduled(**{
        **{f: getattr(first_schedule, f) for f in first_schedule.__struct_fields__},
        "event_id": "second-schedule", "event_time": first_schedule.event_time
        + timedelta(hours=1),
        "scheduled_departure_time": first_schedule.scheduled_departure_time + timedelta(days=1),
        "scheduled_arrival_time": first_schedule.scheduled_arrival_time + timedelta(days=1),
        "cabins": [ev.Cabin(cabin_code="J", seat_count=20), ev.Cabin(cabin_code="Y",
                                                                    seat_count=150),
                   ev.Cabin(cabin_code="F", seat_count=10)]})
    taken = bookings_of(world, BA200)[2]
    conflict = ev.BookingCreated(**{
        **{f: getattr(taken, f) for f in taken.__struct_fields__},
        "event_id": "conflicting-booking", "event_time": taken.event_time + timedelta(minutes=5),
        "total_price": Decimal("1.00")})
    ghost = ev.BookingCreated(**{
        **{f: getattr(taken, f) for f in taken.__struct_fields__},
        "event_id": "ghost-booking", "flight_id": "GHOST_2025-11-28", "booking_id": "ghost"})
    return world, {"schedule": schedule, "conflict": conflict, "ghost": ghost}


def _load_hostile(etl: Runner, lake_dir: Path) -> tuple[World, dict[str, ev.Event]]:
    """Four runs in a hostile order: verdicts in the same run as their line, before it, and
    after it was loaded; a replay of every envelope at the end."""
    world, extra = _hostile_world()
    lifecycle = world.by_topic["flight_lifecycle"]
    at = roll(lake_dir, "bookings", world.by_topic["bookings"])
    at.update(roll(lake_dir, "flight_lifecycle", lifecycle))
    departed = next(e for e in lifecycle if isinstance(e, ev.FlightDeparted)
                    and e.flight_id == BA201)
    created = bookings_of(world, BA200)
    cancelled = bookings_of(world, BA200, ev.BookingCancelled)[0]
    seat = world.by_topic["seat_map"][0]
    letters = {
        "created": letter("bookings", created[0], at[created[0].event_id]),
        "ghost": letter("bookings", extra["ghost"], 1000, Reason.UNKNOWN_FLIGHT),
        "departed": letter("flight_lifecycle", departed, at[departed.event_id],
                           Reason.AHEAD_OF_WATERMARK),
        "cancelled": letter("bookings", cancelled, at[cancelled.event_id],
                            Reason.UNKNOWN_BOOKING),
        "schedule": letter("flight_lifecycle", extra["schedule"], 2000,
                           Reason.INCONSISTENT_SCHEDULE),
        "conflict": letter("bookings", extra["conflict"], 1001, Reason.CONFLICTING_DUPLICATE),
        "seat": letter("seat_map", seat, 0, Reason.FLIGHT_CLOSED),
    }
    # 1: the original bookings and lifecycle, a verdict on one of them, and one ahead of its line.
    write_envelopes(lake_dir, [letters["created"], letters["ghost"]], first=0)
    first = etl()
    assert (first.verdicts, first.rejects, first.retracted) == (2, 1, 0)
    # 2: the ghost's line (its verdict is known), the conflicting booking and second schedule
    # (their verdicts come later), a verdict on a departure loaded in run 1.
    roll(lake_dir, "bookings", [extra["ghost"], extra["conflict"]], first=1000)
    roll(lake_dir, "flight_lifecycle", [extra["schedule"]], first=2000)
    write_envelopes(lake_dir, [letters["departed"]], first=2)
    second = etl()
    assert (second.verdicts, second.rejects, second.retracted) == (1, 1, 1)
    assert second.changed["fact_flight_event.retracted"] == 1
    # 3: everything else, and the late verdicts.
    for topic in ("seat_map", "seat_inventory", "inventory_metrics", "promo_decisions"):
        roll(lake_dir, topic, world.by_topic[topic])
    write_envelopes(lake_dir, [letters[k] for k in ("cancelled", "schedule", "conflict",
                                                    "seat")], first=3)
    third = etl()
    assert (third.verdicts, third.rejects, third.retracted) == (4, 1, 3)  # the seat: same run
    assert third.changed["dim_flight_cabin.retracted"] == 3  # J, Y, F; rebuilt: J, Y
    assert third.reloaded_files == 4  # the bookings and lifecycle rolls of runs 1 and 2
    return world, extra


def test_incremental_equals_full_whenever_the_verdicts_arrive(etl: Runner, db: Any,
                                                              lake_dir: Path) -> None:
    world, extra = _load_hostile(etl, lake_dir)
    refused = [e.event_id for e in extra.values()]
    for table in ("fact_booking", "fact_flight_event", "etl_event_ledger"):
        assert one(db, f"SELECT count(*) FROM {table} WHERE event_id = ANY(%s)", refused) == 0
    # BA201 keeps its first schedule's cabins and times, and did not depart after all.
    assert rows(db, "SELECT cabin_code, seat_count FROM dim_flight_cabin WHERE flight_id = %s "
                    "ORDER BY 1", BA201) == [("J", 30), ("Y", 150)]
    assert rows(db, "SELECT status, cabin_capacity, actual_departure_time IS NULL, "
                    "scheduled_departure_time::date::text FROM dim_flight WHERE flight_id = %s",
                BA201) == [("check_in_open", "J:30 Y:150", True, "2025-11-28")]
    assert outcome(db, BA201) is None
    # BA200: the first booking refused, the cancellation refused, the taken booking as booked.
    taken = bookings_of(world, BA200)[2]
    assert rows(db, "SELECT DISTINCT total_price, event_id FROM fact_booking WHERE booking_id "
                    "= %s", taken.booking_id) == [(taken.total_price, taken.event_id)]
    assert one(db, "SELECT count(*) FROM fact_booking WHERE flight_id = %s AND "
                   "cancellation_time IS NOT NULL", BA200) == 0
    assert one(db, "SELECT count(*) FROM fact_booking_cancellation WHERE flight_id = %s",
               BA200) == 0
    assert outcome(db, BA200) == (11, 5, 0, Decimal("1100.05"))
    assert one(db, "SELECT count(*) FROM dim_flight WHERE flight_id LIKE 'GHOST%%'") == 0
    assert one(db, "SELECT max(date_key)::text FROM dim_date") == "2025-11-28"
    assert sorted(r[1] for r in rejects(db)) == sorted([
        "key_mismatch", "unknown_flight", "ahead_of_watermark", "unknown_booking",
        "inconsistent_schedule", "conflicting_duplicate", "flight_closed"])
    assert_gold_is_the_warehouse(db, lake_dir)
    incremental, incremental_rejects = snapshot(db), rejects(db)
    etl(full=True)
    assert_same(incremental, snapshot(db))
    assert rejects(db) == incremental_rejects


def test_a_replay_adds_nothing(etl: Runner, db: Any, lake_dir: Path) -> None:
    """The same envelopes again (delivered twice, at new dead_letter offsets), and a run with
    nothing new: no row changes, no reject added."""
    _load_hostile(etl, lake_dir)
    before, before_rejects = snapshot(db), rejects(db)
    counts = {t: one(db, f"SELECT count(*) FROM {t}")
              for t in ("etl_event_ledger", "etl_input_positions", "etl_engine_verdicts")}
    assert etl().status == "nothing new"
    letters = [ev.decode("dead_letter", line) for path in sorted(
        (lake_dir / "raw/dead_letter").rglob("*.jsonl")) for line in path.read_bytes().splitlines()]
    write_envelopes(lake_dir, letters, partition=2, first=100)
    again = etl()
    assert again.status == "loaded" and again.verdicts == len(letters) == 7
    assert (again.retracted, again.rejects, again.reloaded_files) == (0, 0, 0)
    assert_same(before, snapshot(db))
    assert rejects(db) == before_rejects
    assert {t: one(db, f"SELECT count(*) FROM {t}") for t in counts} == counts
    assert again.changed.get("fact_booking") == 0 and again.changed.get("dim_flight") == 0
