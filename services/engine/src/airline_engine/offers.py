"""Live offers in Redis: each flight's current discount, seats remaining and load factor.

Written only after the Kafka transaction that decided them committed, through a Lua
compare-and-set on the flight's state version: a replay (lower or equal version) never moves an
offer backwards, and a decision whose transaction aborted is never shown. Redis being down never
stops the engine: the newest offer of every flight changed meanwhile waits in memory and is
written when Redis answers again (and a restart resyncs every restored flight).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Final, NamedTuple

import redis
from airline_core.config import redact_url
from airline_core.timeutil import format_utc

from airline_engine import metrics
from airline_engine._log import logger
from airline_engine.state import FlightState

log = logger(__name__)

KEY_PREFIX: Final = "airline:offer:"

#: KEYS[1] offer hash; ARGV: state_version, then field/value pairs. Returns 1 if written.
CAS_SCRIPT: Final = """
local current = redis.call('HGET', KEYS[1], 'state_version')
if current and tonumber(current) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'state_version', ARGV[1], unpack(ARGV, 2))
return 1
"""


class Offer(NamedTuple):
    """One flight's live offer (strings, as stored in the hash)."""

    flight_id: str
    state_version: int
    promo_id: str
    discount_percentage: int
    target_fare_bucket: str
    effective_from: str
    seats_remaining: int
    load_factor: str

    def fields(self) -> list[str]:
        """Field/value pairs after ``state_version``."""
        return ["promo_id", self.promo_id,
                "discount_percentage", str(self.discount_percentage),
                "target_fare_bucket", self.target_fare_bucket,
                "effective_from", self.effective_from,
                "seats_remaining", str(self.seats_remaining),
                "load_factor", self.load_factor]


def offer_of(flight: FlightState) -> Offer:
    """The live offer a flight's state implies (no promotion: empty id, 0 %)."""
    promo = flight.promo
    total = flight.total_seats
    since = promo.started_s if promo else flight.last_promo_change_s
    return Offer(
        flight_id=flight.flight_id,
        state_version=flight.version,
        promo_id=promo.promo_id if promo else "",
        discount_percentage=promo.discount_percentage if promo else 0,
        target_fare_bucket=promo.target_fare_bucket if promo else flight.target_fare_bucket,
        effective_from=format_utc(datetime.fromtimestamp(since, tz=UTC)) if since else "",
        seats_remaining=max(total - flight.booked, 0),
        load_factor=f"{min(flight.booked / total, 1.0):.3f}" if total else "0.000",
    )


class LiveOffers:
    """Writes offers with compare-and-set; keeps what it could not write for the next try.

    With ``background=True`` (the engine) a daemon thread does the writing, so a slow or
    unreachable Redis never stalls the Kafka loop; without it (tests, tools) ``publish`` and
    ``tick`` write inline.
    """

    def __init__(self, url: str, retry_seconds: float = 5.0, background: bool = False) -> None:
        self._url = url
        self._client = redis.Redis.from_url(url, socket_timeout=1.0,
                                            socket_connect_timeout=1.0)
        self._script = self._client.register_script(CAS_SCRIPT)
        self._pending: dict[str, Offer] = {}
        self._lock = threading.Lock()
        self._retry_seconds = retry_seconds
        self._next_try = 0.0
        self.healthy = True
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="redis-offers", daemon=True)
            self._thread.start()

    def publish(self, offers: list[Offer]) -> None:
        """Queue offers (newest per flight wins) and write them unless Redis is backing off."""
        with self._lock:
            for offer in offers:
                queued = self._pending.get(offer.flight_id)
                if queued is None or queued.state_version < offer.state_version:
                    self._pending[offer.flight_id] = offer
        if self._thread is not None:
            self._wake.set()
        elif time.monotonic() >= self._next_try:
            self.flush()

    def tick(self) -> None:
        """Retry the pending offers when the backoff has passed (inline mode)."""
        if self._thread is None and self._pending and time.monotonic() >= self._next_try:
            self.flush()

    @property
    def pending(self) -> int:
        """Offers waiting for Redis."""
        return len(self._pending)

    def _run(self) -> None:
        while not self._closing:
            self._wake.wait(self._retry_seconds)
            self._wake.clear()
            if self._pending and time.monotonic() >= self._next_try:
                self.flush()

    def flush(self) -> bool:
        """Write every pending offer in one pipeline; False (and keep them) if Redis failed."""
        with self._lock:
            offers = list(self._pending.values())
        if not offers:
            return True
        try:
            pipe = self._client.pipeline(transaction=False)
            for offer in offers:
                self._script(keys=[KEY_PREFIX + offer.flight_id],
                             args=[offer.state_version, *offer.fields()], client=pipe)
            results = pipe.execute()
        except redis.RedisError as e:
            self._next_try = time.monotonic() + self._retry_seconds
            if self.healthy:
                log.warning("redis unavailable; offers kept for resync",
                            url=redact_url(self._url), error=str(e), pending=len(offers))
            self.healthy = False
            metrics.REDIS_WRITES.labels("error").inc(len(offers))
            return False
        with self._lock:
            for offer in offers:
                if self._pending.get(offer.flight_id) is offer:
                    del self._pending[offer.flight_id]
        written = sum(1 for r in results if r == 1)
        metrics.REDIS_WRITES.labels("written").inc(written)
        metrics.REDIS_WRITES.labels("stale").inc(len(results) - written)
        if not self.healthy:
            log.info("redis back; offers resynced", count=len(offers))
        self.healthy = True
        return True

    def close(self, timeout: float = 2.0) -> None:
        """Stop the writer, try one last write, release the connection pool."""
        self._closing = True
        if self._thread is not None:
            self._wake.set()
            self._thread.join(timeout)
        if self._pending:
            self.flush()
        self._client.close()
