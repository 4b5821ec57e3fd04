"""Live offers in Redis: compare-and-set on the state version, resync after an outage, and
the engine writing them after its transactions commit."""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from airline_devstack.redis_server import RedisServer, redis_server_bin
from airline_engine.offers import KEY_PREFIX, LiveOffers, Offer
from airline_testkit.net import free_port
from engine_harness import flight_states, load_dataset, read_outputs, run_engine

#: A database of its own, so offers of other components' tests never mix with these.
DB = 9


def _offer(version: int, discount: int = 5, flight: str = "F1") -> Offer:
    return Offer(flight, version, f"promo-{discount}" if discount else "", discount, "K",
                 "2025-11-07T00:00:00Z", 100 - version, f"{version / 100:.3f}")


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    url = redis_url.rsplit("/", 1)[0] + f"/{DB}"
    r = redis.Redis.from_url(url, decode_responses=True)
    r.flushdb()
    yield r
    r.close()


def test_compare_and_set_never_moves_an_offer_backwards(client: redis.Redis) -> None:
    url = client.connection_pool.connection_kwargs
    offers = LiveOffers(f"redis://{url['host']}:{url['port']}/{DB}")
    offers.publish([_offer(5, 10)])
    assert client.hgetall(KEY_PREFIX + "F1") == {
        "state_version": "5", "promo_id": "promo-10", "discount_percentage": "10",
        "target_fare_bucket": "K", "effective_from": "2025-11-07T00:00:00Z",
        "seats_remaining": "95", "load_factor": "0.050"}
    offers.publish([_offer(3, 25)])  # a replay of older state: ignored
    offers.publish([_offer(5, 25)])  # same version again: ignored
    assert client.hget(KEY_PREFIX + "F1", "discount_percentage") == "10"
    offers.publish([_offer(6, 0)])  # the promotion ended
    assert client.hget(KEY_PREFIX + "F1", "promo_id") == ""
    assert offers.pending == 0
    offers.close()


def test_offers_changed_while_redis_is_down_are_resynced() -> None:
    if redis_server_bin() is None:
        pytest.skip("redis-server is not installed")
    base = Path(tempfile.mkdtemp(prefix="engine-redis-"))
    server = RedisServer(free_port(), base, die_with_parent=True)
    offers = LiveOffers(server.url, retry_seconds=0.05)
    try:
        offers.publish([_offer(1, 5, "F1"), _offer(2, 5, "F1"), _offer(1, 0, "F2")])
        assert offers.pending == 2 and not offers.healthy  # no exception: the engine goes on
        server.start()
        time.sleep(0.06)  # past the retry backoff (not an assertion)
        offers.tick()
        assert offers.pending == 0 and offers.healthy
        r = redis.Redis.from_url(server.url, decode_responses=True)
        assert r.hget(KEY_PREFIX + "F1", "state_version") == "2"
        assert r.hget(KEY_PREFIX + "F2", "state_version") == "1"
        r.close()
    finally:
        offers.close()
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.kafka
def test_engine_writes_committed_offers(kafka_bootstrap: str, client: redis.Redis) -> None:
    prefix = f"engoffers_{uuid.uuid4().hex[:10]}-"
    load_dataset(kafka_bootstrap, prefix, 6)
    kwargs = client.connection_pool.connection_kwargs
    run = run_engine(kafka_bootstrap, prefix, extra_env={
        "REDIS_URL": f"redis://{kwargs['host']}:{kwargs['port']}/{DB}"})
    assert run.returncode == 0, run.stderr[-3000:]
    states = flight_states(read_outputs(kafka_bootstrap, prefix)["engine_state_changelog"])
    scheduled = {f: s for f, s in states.items() if s.scheduled}
    assert scheduled
    for flight_id, state in scheduled.items():
        offer = client.hgetall(KEY_PREFIX + flight_id)
        assert offer["state_version"] == str(state.version)
        assert offer["seats_remaining"] == str(state.total_seats - state.booked)
        assert offer["discount_percentage"] == str(state.promo.discount_percentage
                                                   if state.promo else 0)


@pytest.mark.kafka
def test_engine_runs_with_redis_down(kafka_bootstrap: str) -> None:
    prefix = f"engnoredis_{uuid.uuid4().hex[:10]}-"
    load_dataset(kafka_bootstrap, prefix, 4)
    run = run_engine(kafka_bootstrap, prefix, extra_env={
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "ENGINE_REDIS_RETRY_SECONDS": "0.2"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert any(r.get("event") == "redis unavailable; offers kept for resync" for r in run.logs)
    assert sum(map(len, read_outputs(kafka_bootstrap, prefix)["inventory_metrics"].values()))


def test_background_writer_never_blocks_the_caller() -> None:
    """An unreachable Redis: publish only queues; the writer thread fails and keeps them."""
    offers = LiveOffers(f"redis://127.0.0.1:{free_port()}/0", retry_seconds=0.05,
                        background=True)
    offers.publish([_offer(1)])
    deadline = time.monotonic() + 10
    while offers.healthy and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not offers.healthy, "the writer thread never tried Redis"
    assert offers.pending == 1
    offers.close(timeout=2)
