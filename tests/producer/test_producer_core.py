"""Unit tests of the functional core: schedule, curves, elasticity, inventory, discount book."""

from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
import pytest
from airline_core.events import PromotionEnded, PromotionTriggered, encode
from airline_producer.demand import (
    BUSINESS_CURVE,
    LEISURE_CURVE,
    BookingCurve,
    DemandModel,
    elasticity_multiplier,
    pareto_wtp,
)
from airline_producer.errors import PromotionSourceError
from airline_producer.inventory import CabinInventory, FlightInventory
from airline_producer.network import A320, build_schedule
from airline_producer.promotions import DiscountBook, book_from_file, promotion_events
from airline_producer.simulation import ActiveDiscount, discounted, flight_rngs


def test_schedule_has_the_users_flight_ids_and_aircraft() -> None:
    flights = build_schedule(216, 3, date(2025, 11, 28))
    assert len(flights) == 216
    assert len({f.flight_id for f in flights}) == 216
    first = flights[0]
    assert first.flight_id == f"{first.flight_number}_2025-11-28"
    assert first.flight_number.startswith("BA") and first.origin == "LHR"
    assert A320.total_seats == 180
    assert [(c.code, c.seat_count) for c in A320.cabins] == [("J", 30), ("Y", 150)]
    assert {(b.code, b.price) for b in A320.buckets if b.cabin == "Y"} == {
        ("Y", Decimal("220.00")), ("M", Decimal("180.00")), ("K", Decimal("140.00"))}
    assert sum(b.seats for b in A320.buckets if b.cabin == "Y") == 150
    routes = {f.destination for f in flights}
    assert 20 <= len(routes) <= 30  # "a few dozen routes", 3 departures a day each
    per_day = {d: sum(1 for f in flights if f.flight_id.endswith(d))
               for d in ("2025-11-28", "2025-11-29", "2025-11-30")}
    assert set(per_day.values()) == {72}


def test_schedule_is_stable_per_day() -> None:
    """The same route and slot keep their number every day, so ids look like real ones."""
    flights = build_schedule(60, 3, date(2025, 11, 28))
    numbers = [{f.flight_number for f in flights if f.flight_id.endswith(d)}
               for d in ("2025-11-28", "2025-11-29", "2025-11-30")]
    assert numbers[0] == numbers[1] == numbers[2]


@pytest.mark.parametrize(("points", "days", "share"), [
    (BUSINESS_CURVE, 7, 0.30), (BUSINESS_CURVE, 14, 0.50), (LEISURE_CURVE, 7, 0.10),
    (LEISURE_CURVE, 14, 0.15), (LEISURE_CURVE, 63, 0.83), (BUSINESS_CURVE, 1, 0.0)])
def test_curve_goes_through_the_published_points(points, days, share) -> None:
    curve = BookingCurve(points, 90)
    assert curve.share_within(days) == pytest.approx(share)
    assert curve.booked_by(90) == 0.0 and curve.booked_by(0) == 1.0


def test_curve_inverse_samples_the_curve() -> None:
    curve = BookingCurve(LEISURE_CURVE, 90)
    days = curve.days_out_at(np.random.default_rng(1).uniform(0, 1, 200_000))
    assert np.mean(days <= 14) == pytest.approx(0.15, abs=0.005)
    assert np.mean(days <= 31) == pytest.approx(0.47, abs=0.005)


def test_short_horizon_truncates_and_rescales() -> None:
    curve = BookingCurve(LEISURE_CURVE, 21)
    assert curve.booked_by(21) == 0.0 and curve.booked_by(0) == 1.0
    start = 0.85 - (21 - 14) / (31 - 14) * (0.85 - 0.53)  # F(21) on the published curve
    assert curve.share_within(7) == pytest.approx(1 - (0.90 - start) / (1 - start))


def test_elasticity_multiplier_matches_iata_example() -> None:
    # domain.md: a 10 % fare cut at -1.5 raises demand by about 15 % (constant elasticity).
    assert elasticity_multiplier(0.9, -1.5) == pytest.approx(1.171, abs=0.001)


def test_pareto_wtp_has_constant_elasticity() -> None:
    """Share willing to pay p is (p / floor) ** elasticity: the elasticity is exact."""
    wtp = pareto_wtp(np.random.default_rng(3), 140.0, -1.5, 400_000)
    assert wtp.min() >= 140.0
    for price in (180.0, 220.0):
        assert np.mean(wtp >= price) == pytest.approx((price / 140) ** -1.5, abs=0.003)


def test_demand_is_sized_from_the_target_load_factor() -> None:
    streams = DemandModel(target_load_factor=0.5, calibration=1.0).streams([("J", 30), ("Y", 150)])
    assert sum(s.mean_passengers for s in streams) == pytest.approx(90)
    assert {s.segment for s in streams} == {"business", "leisure"}


def test_nested_availability_never_oversells() -> None:
    cabin = CabinInventory.create(A320.cabins[1], A320.cabin_buckets("Y"))
    rng = np.random.default_rng(0)
    assert [cabin.available(b) for b in "YMK"] == [150, 130, 90]
    cabin.book("K", 90, rng)
    assert [cabin.available(b) for b in "YMK"] == [60, 40, 0]
    cabin.book("Y", 30, rng)
    assert [cabin.available(b) for b in "YMK"] == [30, 30, 0]
    with pytest.raises(ValueError, match="cannot sell"):
        cabin.book("M", 31, rng)
    seats = cabin.book("M", 30, rng)
    assert cabin.available("Y") == 0 and cabin.booked == 150
    cabin.release("M", [s[0] for s in seats[:2]])
    assert cabin.available("Y") == 2 and cabin.available("M") == 2
    with pytest.raises(ValueError, match="already free"):
        cabin.release("M", [seats[0][0]])


def test_party_seats_are_distinct_and_in_the_cabin() -> None:
    inventory = FlightInventory.create(A320)
    rng = np.random.default_rng(5)
    seats = [s for _ in range(10) for s in inventory.cabins["J"].book("J", 3, rng)]
    assert len({s[0] for s in seats}) == 30 and all(1 <= s[1] <= 5 for s in seats)


def test_flight_randomness_depends_only_on_seed_and_flight() -> None:
    a = flight_rngs(7, "BA210_2025-11-28")[0].random(3)
    b = flight_rngs(7, "BA210_2025-11-28")[0].random(3)
    c = flight_rngs(7, "BA212_2025-11-28")[0].random(3)
    assert list(a) == list(b) and list(a) != list(c)


def test_discounted_price_to_the_penny() -> None:
    assert discounted(Decimal("140.00"), 10) == Decimal("126.00")
    assert discounted(Decimal("180.00"), 25) == Decimal("135.00")


def _when(minute: int) -> datetime:
    return datetime(2025, 11, 20, 10, minute, tzinfo=UTC)


def test_discount_book_applies_from_event_time_plus_delay() -> None:
    book = DiscountBook()
    start = PromotionTriggered(event_id="e1", event_time=_when(0), flight_id="F", promo_id="p1",
                               decision_source="RULE_ENGINE", current_load_factor=0.4,
                               minutes_to_departure=3000, target_fare_bucket="K",
                               discount_percentage=10)
    end = PromotionEnded(event_id="e2", event_time=_when(30), flight_id="F", promo_id="p1",
                         decision_source="RULE_ENGINE", reason="recovered")
    book.apply(start, 300)
    book.apply(end, 300)
    t0 = int(_when(0).timestamp())
    assert book.lookup("F", t0 + 299) is None
    assert book.lookup("F", t0 + 300) == ActiveDiscount("p1", "K", 10)
    assert book.lookup("F", t0 + 30 * 60 + 299) == ActiveDiscount("p1", "K", 10)
    assert book.lookup("F", t0 + 30 * 60 + 300) is None
    # learned late: never earlier than when it was learned
    late = DiscountBook()
    late.apply(start, 300, not_before=t0 + 3600)
    assert late.lookup("F", t0 + 3599) is None and late.lookup("F", t0 + 3600) is not None


def test_promotions_file_round_trip(tmp_path) -> None:
    event = PromotionTriggered(event_id="e1", event_time=_when(0), flight_id="F", promo_id="p1",
                               decision_source="RULE_ENGINE", current_load_factor=0.4,
                               minutes_to_departure=3000, target_fare_bucket="K",
                               discount_percentage=25)
    path = tmp_path / "decisions.jsonl"
    path.write_bytes(encode(event) + b"\n\n")
    book = book_from_file(path, 0)
    assert book.lookup("F", int(_when(1).timestamp())) == ActiveDiscount("p1", "K", 25)
    with pytest.raises(PromotionSourceError, match="line 1"):
        promotion_events([b'{"event_type": "Nope"}'])
