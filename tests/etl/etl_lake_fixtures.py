"""Build test lakes: deterministic events from the contract, written in the lake writer's
layout (data files per date, manifest last) or in the user's old day-file layout."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from airline_core import events as ev
from airline_core.ids import derive_id

T0 = datetime(2025, 11, 20, 8, 0, tzinfo=UTC)


@dataclass
class World:
    """Events per topic plus the facts a test asserts on."""

    by_topic: dict[str, list[ev.Event]] = field(default_factory=dict)
    passengers: int = 0  # booked passengers (fact_booking rows)
    cancelled_passengers: int = 0
    departed: set[str] = field(default_factory=set)

    def add(self, topic: str, event: ev.Event) -> None:
        self.by_topic.setdefault(topic, []).append(event)

    def count(self, topic: str) -> int:
        return len(self.by_topic.get(topic, []))


def make_world(flights: int = 3, bookings_per_flight: int = 6, tag: str = "w") -> World:
    """A small deterministic world exercising every event type."""
    w = World()
    for f in range(flights):
        fid = f"BA{200 + f}_{tag}_2025-11-28"
        dep = datetime(2025, 11, 28, 10, 0, tzinfo=UTC) + timedelta(hours=f)

        def eid(*parts: object, fid: str = fid) -> str:
            return derive_id("test", tag, fid, *parts)

        w.add("flight_lifecycle", ev.FlightScheduled(
            event_id=eid("sched"), event_time=T0, flight_id=fid, airline_code="BA",
            origin_airport="LHR", destination_airport="JFK" if f % 2 else "CDG",
            scheduled_departure_time=dep, scheduled_arrival_time=dep + timedelta(hours=2),
            aircraft_type="A320", total_seats=180, flight_number=f"BA{200 + f}",
            cabins=[ev.Cabin(cabin_code="J", seat_count=30), ev.Cabin(cabin_code="Y",
                                                                        seat_count=150)]))
        w.add("flight_lifecycle", ev.CheckInOpened(
            event_id=eid("ci"), event_time=dep - timedelta(hours=24), flight_id=fid))
        if f == 1:
            w.add("flight_lifecycle", ev.FlightDelayed(
                event_id=eid("delay"), event_time=dep - timedelta(hours=2), flight_id=fid,
                new_departure_time=dep + timedelta(minutes=30), delay_minutes=30, reason="ATC"))
        if f == flights - 1 and flights > 2:
            w.add("flight_lifecycle", ev.FlightCancelled(
                event_id=eid("cancel"), event_time=dep - timedelta(hours=1), flight_id=fid,
                reason="weather"))
        else:
            w.add("flight_lifecycle", ev.FlightDeparted(
                event_id=eid("dep"), event_time=dep, flight_id=fid, actual_departure_time=dep))
            w.departed.add(fid)
        promo_id = eid("promo")
        promo_start = T0 + timedelta(days=3)
        w.add("promo_decisions", ev.PromotionTriggered(
            event_id=eid("promo-t"), event_time=promo_start, flight_id=fid,
            decision_source="RULE_ENGINE", current_load_factor=0.4, minutes_to_departure=5000,
            target_fare_bucket="K", discount_percentage=10, promo_id=promo_id, tier=1,
            reason="slow pace", inputs={"pace": 0.5}, policy_version="v1"))
        w.add("promo_decisions", ev.PromotionEnded(
            event_id=eid("promo-e"), event_time=promo_start + timedelta(hours=12), flight_id=fid,
            promo_id=promo_id, decision_source="RULE_ENGINE", reason="recovered"))
        booked = 0
        for b in range(bookings_per_flight):
            bt = T0 + timedelta(days=1, hours=10 * b)
            n = 1 + b % 3
            bid = eid("booking", b)
            pax = [ev.Passenger(passenger_id=eid("pax", b, p), seat_id=f"{10 + b}{'ABC'[p]}",
                                cabin_code="Y") for p in range(n)]
            in_promo = promo_start <= bt < promo_start + timedelta(hours=12)
            w.add("bookings", ev.BookingCreated(
                event_id=eid("bc", b), event_time=bt, flight_id=fid, booking_id=bid,
                channel="WEB", fare_bucket="K", currency="GBP",
                total_price=Decimal("100.00") * n + Decimal("0.01"), passengers=pax,
                segment="leisure", promo_id=promo_id if in_promo else None,
                discount_percentage=10 if in_promo else 0))
            w.passengers += n
            booked += n
            for p in pax:
                w.add("seat_map", ev.SeatAssigned(
                    event_id=eid("sa", b, p.passenger_id), event_time=bt, flight_id=fid,
                    booking_id=bid, passenger_id=p.passenger_id, seat_id=p.seat_id,
                    row=10 + b, letter=p.seat_id[-1], cabin_code="Y"))
            if b == 1:
                w.add("bookings", ev.BookingCancelled(
                    event_id=eid("bx", b), event_time=bt + timedelta(hours=1), flight_id=fid,
                    booking_id=bid, fare_bucket="K", passengers=pax, reason="changed plans"))
                w.cancelled_passengers += n
                booked -= n
            w.add("inventory_metrics", ev.CabinInventoryMetrics(
                event_id=eid("m", b), event_time=bt + timedelta(minutes=1), flight_id=fid,
                booked_seats=booked, total_seats=180, load_factor=round(booked / 180, 4),
                minutes_to_departure=int((dep - bt).total_seconds() // 60),
                seats_remaining=180 - booked, bookings_last_hour=1, bookings_last_day=2,
                expected_booked_to_date=1.5 * b, forecast_load_factor=0.8,
                active_discount_percentage=10 if in_promo else 0,
                active_promo_id=promo_id if in_promo else None, state_version=b))
            w.add("seat_inventory", ev.CabinInventorySnapshot(
                event_id=eid("snap", b), event_time=bt, flight_id=fid,
                time_to_departure_minutes=int((dep - bt).total_seconds() // 60),
                cabins=[ev.CabinAvailability(cabin_code="Y", fare_buckets=[
                    ev.BucketAvailability(bucket="K", available_seats=100, price=Decimal(140))])]))
        if f == 0:
            w.add("dead_letter", ev.DeadLetter(
                event_id=eid("dl"), event_time=T0, flight_id=fid, source_topic="bookings",
                source_partition=0, source_offset=7, reason="undecodable JSON", component="engine",
                original_value_b64="e30=", original_key_b64=None, headers=[("h", None)]))
    return w


def _date(line: bytes) -> str:
    return json.loads(line)["event_time"][:10]


def write_roll(lake_dir: Path, topic: str, partition: int, first: int,
               lines: Sequence[bytes], *, manifest: bool = True) -> Path:
    """Write one roll of ``lines`` (one data file per event date) and, last, its manifest."""
    last = first + len(lines) - 1
    stem = f"{topic}+{partition}+{first:020d}+{last:020d}"
    by_date: dict[str, list[bytes]] = {}
    for line in lines:
        try:
            day = _date(line)
        except (ValueError, KeyError, TypeError):
            day = "2025-11-20"
        by_date.setdefault(day, []).append(line)
    files = []
    for day, day_lines in sorted(by_date.items()):
        rel = f"raw/{topic}/date={day}/{stem}.jsonl"
        path = lake_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        content = b"".join(x + b"\n" for x in day_lines)
        path.write_bytes(content)
        files.append({"path": rel, "records": len(day_lines), "bytes": len(content),
                      "sha256": hashlib.sha256(content).hexdigest(), "date": day})
    mpath = lake_dir / f"raw/_manifests/{topic}/{stem}.json"
    if manifest:
        mpath.parent.mkdir(parents=True, exist_ok=True)
        mpath.write_text(json.dumps({
            "topic": topic, "partition": partition, "first_offset": first, "last_offset": last,
            "records": len(lines), "files": files,
            "source": {"cluster_id": "test-cluster", "topic_id": f"id-{topic}"}}))
    return mpath


def write_world(lake_dir: Path, world: World, *, partition: int = 0, first: int = 0,
                roll_size: int = 1000) -> int:
    """Write every topic of ``world`` as rolls of ``roll_size`` events; returns manifests."""
    count = 0
    for topic, events in world.by_topic.items():
        lines = [ev.encode(e) for e in events]
        for i in range(0, len(lines), roll_size):
            write_roll(lake_dir, topic, partition, first + i, lines[i:i + roll_size])
            count += 1
    return count


def write_legacy(lake_dir: Path, topic: str, day: str, records: Iterable[dict[str, Any]]) -> Path:
    """The user's old layout: ``raw/<topic>/<day>.jsonl``, events without id or version."""
    path = lake_dir / "raw" / topic / f"{day}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
    return path
