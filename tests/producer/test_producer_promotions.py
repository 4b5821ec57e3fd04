"""Closed loop: discounts from a file (deterministic), the topic and Redis take effect from
event time + delay, never earlier; bookings in the target bucket carry the promotion."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from airline_core.config import KafkaSettings
from airline_core.events import (
    BookingCreated,
    CabinInventorySnapshot,
    PromotionEnded,
    PromotionTriggered,
    decode,
    encode,
)
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


# --------------------------------------------------------------------------- Redis failures
class _FakePipeline:
    def __init__(self, client: _FakeRedis) -> None:
        self._client = client
        self._keys: list[str] = []

    def hgetall(self, key: str) -> None:
        self._keys.append(key)

    def execute(self) -> list[dict[bytes, bytes]]:
        import redis

        self._client.calls += 1
        if self._client.down:
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379.")
        return [self._client.offers.get(key, {}) for key in self._keys]


class _FakeRedis:
    """Just what RedisSource uses: a non-transactional pipeline of HGETALLs."""

    def __init__(self) -> None:
        self.offers: dict[str, dict[bytes, bytes]] = {}
        self.down = False
        self.calls = 0

    def pipeline(self, transaction: bool = True) -> _FakePipeline:
        assert transaction is False
        return _FakePipeline(self)


def _offer(promo_id: str, percentage: int, effective: datetime) -> dict[bytes, bytes]:
    return {b"promo_id": promo_id.encode(), b"discount_percentage": str(percentage).encode(),
            b"target_fare_bucket": b"K",
            b"effective_from": effective.isoformat().replace("+00:00", "Z").encode()}


def _source_errors(reason: str) -> float:
    from airline_producer import metrics

    return metrics.PROMOTION_SOURCE_ERRORS.labels("redis", reason)._value.get()


def test_redis_failure_keeps_last_offers_warns_rarely_and_recovers() -> None:
    """Redis down: the last known offers stay live, nothing raises, one warning per
    ``warn_every``, every failure counted, no retry before ``retry_after``; Redis back: the
    next refresh brings the flights up to date."""
    import structlog

    client, clock = _FakeRedis(), [1000.0]
    source = RedisSource(client, delay_seconds=0, retry_after=5.0, warn_every=60.0,
                         clock=lambda: clock[0])
    t0 = int(datetime(2025, 11, 1, tzinfo=UTC).timestamp())
    flights = ["BA100_2025-11-28", "BA102_2025-11-28"]
    client.offers["airline:offer:BA100_2025-11-28"] = _offer("p1", 20, datetime(2025, 11, 1,
                                                                                tzinfo=UTC))
    assert source.refresh(t0, flights) == 1
    errors_before = _source_errors("unavailable")
    client.down = True
    with structlog.testing.capture_logs() as logs:
        for step in range(200):  # 200 ticks over 100 s of wall clock
            clock[0] += 0.5
            assert source.refresh(t0 + 3600 * (step + 1), flights) == 0
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 2, warnings  # at 0 s and after 60 s, not one per tick
    assert "keeping the last known offers" in warnings[0]["event"]
    assert client.calls == 1 + 20  # once per 5 s of wall clock, not once per tick
    assert _source_errors("unavailable") - errors_before == 20
    assert source.book.lookup("BA100_2025-11-28", t0 + 3600 * 300) == ActiveDiscount("p1", "K",
                                                                                      20)
    # Back: the offer changed while Redis was unreadable; the first good read takes it.
    client.down = False
    client.offers["airline:offer:BA100_2025-11-28"] = _offer("p2", 35, datetime(2025, 11, 9,
                                                                                tzinfo=UTC))
    client.offers["airline:offer:BA102_2025-11-28"] = _offer("p3", 10, datetime(2025, 11, 9,
                                                                                tzinfo=UTC))
    later = t0 + 3600 * 201
    clock[0] += 5.0
    with structlog.testing.capture_logs() as logs:
        assert source.refresh(later, flights) == 2
    assert [e["event"] for e in logs] == ["live offers readable again; back up to date"]
    assert source.failures == 0
    assert source.book.lookup("BA100_2025-11-28", later) == ActiveDiscount("p2", "K", 35)
    assert source.book.lookup("BA102_2025-11-28", later) == ActiveDiscount("p3", "K", 10)
    # A new outage warns at once again.
    client.down = True
    with structlog.testing.capture_logs() as logs:
        clock[0] += 5.0
        source.refresh(later + 3600, flights)
    assert [e["log_level"] for e in logs] == ["warning"]


def test_malformed_redis_offer_is_skipped_for_its_flight_only() -> None:
    client = _FakeRedis()
    source = RedisSource(client, delay_seconds=0)
    t0 = int(datetime(2025, 11, 1, tzinfo=UTC).timestamp())
    client.offers["airline:offer:BA100_2025-11-28"] = {b"promo_id": b"p1",
                                                       b"discount_percentage": b"lots"}
    client.offers["airline:offer:BA102_2025-11-28"] = _offer("p3", 10, datetime(2025, 11, 1,
                                                                                tzinfo=UTC))
    before = _source_errors("malformed")
    assert source.refresh(t0, ["BA100_2025-11-28", "BA102_2025-11-28"]) == 1
    assert source.book.lookup("BA100_2025-11-28", t0) is None
    assert source.book.lookup("BA102_2025-11-28", t0) == ActiveDiscount("p3", "K", 10)
    assert _source_errors("malformed") - before == 1


def test_redis_client_has_short_timeouts_and_no_retries_of_its_own() -> None:
    """A hung Redis costs one short timeout per attempt (the engine uses 1 s too)."""
    from airline_producer.promotions import REDIS_TIMEOUT_SECONDS, redis_client

    client = redis_client("redis://127.0.0.1:6379/0")
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == REDIS_TIMEOUT_SECONDS
    assert REDIS_TIMEOUT_SECONDS <= 1.0
    assert client.get_retry().get_retries() == 0


@pytest.mark.kafka
def test_redis_stopped_mid_run_keeps_offers_and_recovers(
        kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A dedicated Redis is stopped while the producer runs (redis mode) and started again,
    empty, with a new offer: the producer exits 0 with a complete stream, the offer it knew
    stays live during the outage, and the new offer is taken once Redis is back."""
    import redis
    from airline_devstack.redis_server import RedisServer, redis_server_bin
    from airline_producer import promotions
    from airline_producer.app import Status
    from airline_testkit.net import free_port

    if redis_server_bin() is None:
        pytest.skip("redis-server is not installed")
    monkeypatch.setattr(promotions, "REDIS_RETRY_SECONDS", 0.0)  # retry every tick: no clock
    server = RedisServer(free_port(), tmp_path / "redis", die_with_parent=True)
    server.start()
    try:
        kafka = create_topics(kafka_bootstrap, unique_name("prodredisdown") + "-")
        _, flight_id, start, _ = _decisions()
        departure = start + timedelta(days=10, minutes=7)
        outage, back = departure - timedelta(days=9), departure - timedelta(days=5)
        redis.Redis.from_url(server.url).hset(f"airline:offer:{flight_id}", mapping={
            "promo_id": "promo-1", "discount_percentage": "25", "target_fare_bucket": "K",
            "effective_from": start.isoformat().replace("+00:00", "Z")})
        config = small_settings(flights=4, target_load_factor=0.9, kafka=kafka, metrics_port=0,
                                promotions="redis", redis_url=server.url,
                                promotion_delay_minutes=DELAY_MINUTES,
                                transactional_id=unique_name("prodredisdown-tx"))
        sim = Simulation(config)
        ticks = [sim.tick_start(i) for i in range(10_000)]
        # beat() runs before each tick is processed; the next tick's refresh follows it.
        stop_at = next(i for i, t in enumerate(ticks) if t >= outage.timestamp()) - 1
        back_at = next(i for i, t in enumerate(ticks) if t >= back.timestamp()) - 1
        status, seen = Status(), [0]
        errors_before = _source_errors("unavailable")

        def beat() -> None:
            if not status.ready:
                return  # start-up (recovery read), not a tick
            index = seen[0]
            seen[0] += 1
            if index == stop_at:
                server.stop()
            elif index == back_at:
                server.start()
                redis.Redis.from_url(server.url).hset(f"airline:offer:{flight_id}", mapping={
                    "promo_id": "promo-2", "discount_percentage": "40",
                    "target_fare_bucket": "K",
                    "effective_from": back.isoformat().replace("+00:00", "Z")})

        assert run(config, StopSignal(), status, beat=beat) == 0
    finally:
        server.stop()
    assert seen[0] > back_at, "the run ended before Redis came back"
    assert _source_errors("unavailable") - errors_before >= back_at - stop_at - 1
    rows = [(tick, topic, decode(topic, value)) for (topic, _), items in read_all(kafka).items()
            for _, value, tick in items]
    rank = {"flight_lifecycle": 0, "bookings": 1, "seat_map": 2, "seat_inventory": 3}
    rows.sort(key=lambda r: (r[0], r[2].event_time, rank[r[1]]))
    views = check_stream((topic, event) for _, topic, event in rows)
    assert len(views) == 4 and all(v.closed for v in views.values()), "stream incomplete"
    promo = [e for _, _, e in rows if isinstance(e, BookingCreated) and e.promo_id]
    assert {b.promo_id for b in promo if outage <= b.event_time < back} == {"promo-1"}, \
        "the last known offer was not kept while Redis was down"
    assert all(b.promo_id == "promo-1" for b in promo if b.event_time < back)
    # K sells out near departure, so the snapshots' K price tells which offer is live:
    # 140 x 0.75 = 105 (promo-1), 140 x 0.60 = 84 (promo-2).
    k_price = [(e.event_time, b.price) for _, _, e in rows
               if isinstance(e, CabinInventorySnapshot) and e.flight_id == flight_id
               for c in e.cabins for b in c.fare_buckets if b.bucket == "K"]
    during = {price for at, price in k_price if outage <= at < back}
    after = {price for at, price in k_price if at >= back + timedelta(hours=1)}
    assert during == {Decimal("105.00")}, f"offer not kept during the outage: {during}"
    assert after == {Decimal("84.00")}, f"new offer not taken once Redis was back: {after}"
