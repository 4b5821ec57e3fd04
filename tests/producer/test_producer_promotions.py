"""Closed loop: discounts from a file (deterministic), the topic and Redis take effect from
event time + delay, never earlier; bookings in the target bucket carry the promotion."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from airline_core.config import KafkaSettings
from airline_core.events import BookingCreated, PromotionEnded, PromotionTriggered, decode, encode
from airline_core.kafka import make_producer
from airline_core.lifecycle import StopSignal
from airline_core.topics import Topic, physical_name
from airline_producer.app import open_promotions, run
from airline_producer.network import build_schedule
from airline_producer.promotions import RedisSource
from airline_producer.simulation import ActiveDiscount, Simulation
from producer_support import check_stream, create_topics, read_all, small_settings, tick_events

DELAY_MINUTES = 30


def _decisions(settings_flights: int = 4) -> tuple[list[PromotionTriggered | PromotionEnded],
                                                   str, datetime, datetime]:
    flight = build_schedule(settings_flights, 2, date(2025, 11, 28))[0]
    departure = datetime.fromtimestamp(flight.departure, UTC)
    start, end = departure - timedelta(days=10, minutes=7), departure - timedelta(days=3)
    triggered = PromotionTriggered(
        event_id="d1", event_time=start, flight_id=flight.flight_id, promo_id="promo-1",
        decision_source="RULE_ENGINE", current_load_factor=0.3, minutes_to_departure=14400,
        target_fare_bucket="K", discount_percentage=25)
    ended = PromotionEnded(event_id="d2", event_time=end, flight_id=flight.flight_id,
                           promo_id="promo-1", decision_source="RULE_ENGINE", reason="recovered")
    return [triggered, ended], flight.flight_id, start, end


def _check_promo_bookings(events: list, flight_id: str, start: datetime, end: datetime) -> int:
    delay = timedelta(minutes=DELAY_MINUTES)
    promo = [e for _, e in events if isinstance(e, BookingCreated) and e.promo_id]
    for booking in promo:
        assert booking.flight_id == flight_id and booking.fare_bucket == "K"
        assert booking.discount_percentage == 25 and booking.promo_id == "promo-1"
        assert start + delay <= booking.event_time < end + delay + timedelta(hours=1), \
            f"promotion applied at {booking.event_time}, outside its effective window"
    return len(promo)


def test_file_mode_is_deterministic_and_never_early(tmp_path: Path) -> None:
    decisions, flight_id, start, end = _decisions()
    path = tmp_path / "decisions.jsonl"
    path.write_bytes(b"".join(encode(d) + b"\n" for d in decisions))
    config = small_settings(flights=4, target_load_factor=0.9, promotions="file",
                            promotions_file=str(path), promotion_delay_minutes=DELAY_MINUTES)

    def stream() -> list:
        lookup, _ = open_promotions(config)
        return tick_events(Simulation(config, lookup).run())

    first, second = stream(), stream()
    assert [encode(e) for _, e in first] == [encode(e) for _, e in second]
    check_stream(first)
    assert _check_promo_bookings(first, flight_id, start, end) > 0
    # Only the promoted flight changed: every other flight's events equal the open loop's.
    open_loop = tick_events(Simulation(small_settings(flights=4, target_load_factor=0.9)).run())
    others = [encode(e) for _, e in first if e.flight_id != flight_id]
    assert others == [encode(e) for _, e in open_loop if e.flight_id != flight_id]


@pytest.mark.kafka
def test_topic_mode_reads_promo_decisions(kafka_bootstrap: str,
                                          unique_name: Callable[[str], str]) -> None:
    kafka = create_topics(kafka_bootstrap, unique_name("prodpromo") + "-")
    decisions, flight_id, start, end = _decisions()
    producer = make_producer(kafka, "test")
    for decision in decisions:
        producer.produce(physical_name(Topic.PROMO_DECISIONS, kafka.topic_prefix),
                         encode(decision), decision.key)
    producer.flush(10)
    config = small_settings(flights=4, target_load_factor=0.9, kafka=kafka, metrics_port=0,
                            promotions="topic", promotion_delay_minutes=DELAY_MINUTES,
                            transactional_id=unique_name("prodpromo-tx"))
    assert run(config, StopSignal()) == 0
    events = [(topic, decode(topic, value)) for (topic, _), items in read_all(kafka).items()
              for _, value, _ in items]
    assert _check_promo_bookings(events, flight_id, start, end) > 0


def test_redis_mode_reads_live_offers(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    source = RedisSource(client, delay_seconds=DELAY_MINUTES * 60)
    effective = datetime(2025, 11, 1, 12, 0, tzinfo=UTC)
    client.hset("airline:offer:BA100_2025-11-28", mapping={
        "promo_id": "p9", "discount_percentage": "10", "target_fare_bucket": "K",
        "effective_from": effective.isoformat().replace("+00:00", "Z"),
        "seats_remaining": "80", "load_factor": "0.5", "state_version": "3"})
    now = int(effective.timestamp())
    assert source.refresh(now, ["BA100_2025-11-28", "BA102_2025-11-28"]) == 1
    book = source.book
    assert book.lookup("BA100_2025-11-28", now + DELAY_MINUTES * 60 - 1) is None
    assert book.lookup("BA100_2025-11-28", now + DELAY_MINUTES * 60) == \
        ActiveDiscount("p9", "K", 10)
    assert book.lookup("BA102_2025-11-28", now + 10**6) is None
    client.delete("airline:offer:BA100_2025-11-28")
    later = now + 7200
    assert source.refresh(later, ["BA100_2025-11-28"]) == 1
    assert book.lookup("BA100_2025-11-28", later) is None
    assert book.lookup("BA100_2025-11-28", later - 1) == ActiveDiscount("p9", "K", 10)


@pytest.mark.kafka
def test_redis_mode_end_to_end(redis_url: str, kafka_bootstrap: str,
                               unique_name: Callable[[str], str]) -> None:
    """The producer reads the engine's live offer for the flights on sale each tick."""
    import redis

    kafka = create_topics(kafka_bootstrap, unique_name("prodredis") + "-")
    _, flight_id, start, end = _decisions()
    client = redis.Redis.from_url(redis_url)
    client.hset(f"airline:offer:{flight_id}", mapping={
        "promo_id": "promo-1", "discount_percentage": "25", "target_fare_bucket": "K",
        "effective_from": start.isoformat().replace("+00:00", "Z"), "seats_remaining": "150",
        "load_factor": "0.1", "state_version": "1"})
    try:
        config = small_settings(flights=4, target_load_factor=0.9, kafka=kafka, metrics_port=0,
                                promotions="redis", redis_url=redis_url,
                                promotion_delay_minutes=DELAY_MINUTES,
                                transactional_id=unique_name("prodredis-tx"))
        assert run(config, StopSignal()) == 0
    finally:
        client.delete(f"airline:offer:{flight_id}")
    events = [(topic, decode(topic, value)) for (topic, _), items in read_all(kafka).items()
              for _, value, _ in items]
    # The offer never ends in Redis here, so it lasts until departure.
    departure = end + timedelta(days=3)
    assert _check_promo_bookings(events, flight_id, start, departure) > 0


def test_kafka_settings_type() -> None:
    """Settings carry the Kafka group as the shared type (the chart test imports Settings)."""
    assert isinstance(small_settings().kafka, KafkaSettings)
