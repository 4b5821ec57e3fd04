"""Where the producer learns live discounts: nowhere (open loop), a file, the topic, or Redis.

Every source feeds a :class:`DiscountBook`, a per-flight timeline of "from this simulated instant
on, this discount is live (or none is)". The simulation asks ``book.lookup(flight_id, t)`` at
each tick boundary. A decision with event time ``e`` becomes effective at ``e + delay`` and, when
it is only learned later (topic and Redis modes, where the engine runs behind the producer), at
the first tick boundary after it was learned: never earlier than ``e + delay``.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from airline_core.errors import InvalidEventError
from airline_core.events import PromotionEnded, PromotionTriggered, decode_any
from airline_core.logging import get_logger
from airline_core.timeutil import parse_utc
from confluent_kafka import KafkaError

from airline_producer import metrics
from airline_producer.errors import PromotionSourceError
from airline_producer.simulation import ActiveDiscount

log = get_logger(__name__)


def _epoch(value: datetime) -> int:
    return int(value.timestamp())


class DiscountBook:
    """Per flight, the discount live from each effective instant (a step function of time)."""

    def __init__(self) -> None:
        # flight_id -> parallel lists of effective times and the discount live from then on
        self._times: dict[str, list[tuple[int, int]]] = {}
        self._states: dict[str, list[ActiveDiscount | None]] = {}
        self._seq = 0
        self.decisions = 0

    def set(self, flight_id: str, effective: int, discount: ActiveDiscount | None) -> None:
        """From ``effective`` (epoch seconds) on, ``discount`` is live on the flight (``None``:
        none). Later calls for the same instant win (they were learned later)."""
        self._seq += 1
        times = self._times.setdefault(flight_id, [])
        states = self._states.setdefault(flight_id, [])
        pos = bisect.bisect_right(times, (effective, self._seq))
        times.insert(pos, (effective, self._seq))
        states.insert(pos, discount)
        self.decisions += 1

    def lookup(self, flight_id: str, at: int) -> ActiveDiscount | None:
        """The discount live on ``flight_id`` at ``at`` (epoch seconds)."""
        times = self._times.get(flight_id)
        if not times:
            return None
        pos = bisect.bisect_right(times, (at, self._seq + 1))
        return self._states[flight_id][pos - 1] if pos else None

    def current(self, flight_id: str) -> ActiveDiscount | None:
        """The latest discount recorded for the flight, whatever its effective time."""
        states = self._states.get(flight_id)
        return states[-1] if states else None

    def apply(self, event: PromotionTriggered | PromotionEnded, delay_seconds: int,
              not_before: int = 0) -> None:
        """Record a decision event: effective at ``max(event_time + delay, not_before)``."""
        effective = max(_epoch(event.event_time) + delay_seconds, not_before)
        if isinstance(event, PromotionTriggered):
            promo_id = event.promo_id or event.event_id
            self.set(event.flight_id, effective, ActiveDiscount(
                promo_id, event.target_fare_bucket, event.discount_percentage)
                if event.discount_percentage > 0 else None)
        else:
            live = self.current(event.flight_id)
            if live is None or live.promo_id == event.promo_id:
                self.set(event.flight_id, effective, None)


def promotion_events(lines: Iterable[bytes | str]) -> list[PromotionTriggered | PromotionEnded]:
    """Decode a JSONL stream of recorded decisions (other event types are an error)."""
    result: list[PromotionTriggered | PromotionEnded] = []
    for number, line in enumerate(lines, 1):
        raw = line.encode() if isinstance(line, str) else line
        if not raw.strip():
            continue
        try:
            event = decode_any(raw.strip())
        except InvalidEventError as e:
            raise PromotionSourceError(f"line {number}: {e}") from e
        if not isinstance(event, PromotionTriggered | PromotionEnded):
            raise PromotionSourceError(
                f"line {number}: {type(event).__name__} is not a promotion decision")
        result.append(event)
    return result


def book_from_file(path: Path, delay_seconds: int) -> DiscountBook:
    """A book replaying recorded decisions: deterministic, so runs are byte-identical."""
    try:
        with path.open("rb") as handle:
            events = promotion_events(handle)
    except OSError as e:
        raise PromotionSourceError(f"cannot read promotions file {path}: {e}") from e
    book = DiscountBook()
    for event in sorted(events, key=lambda ev: ev.event_time):
        book.apply(event, delay_seconds)
    return book


class TopicSource:
    """Reads ``promo_decisions`` (read_committed) from the beginning, into a book."""

    def __init__(self, consumer: Any, topic: str, delay_seconds: int, partitions: int) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        self.book = DiscountBook()
        self._consumer = consumer
        self._delay = delay_seconds
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])

    def catch_up(self, now: int, partitions: int, timeout: float = 30.0) -> int:
        """At start: read every decision already on the topic (until the end of each
        partition), so a start or restart sees the whole history before simulating."""
        count = 0
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(at_end) < partitions:
            if time.monotonic() > deadline:
                raise PromotionSourceError(f"promo_decisions not read to its end in {timeout}s")
            message = self._consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                continue
            count += self._take(message, now)
        return count

    def refresh(self, now: int, flight_ids: Iterable[str] = ()) -> int:
        """Take every decision available now, without waiting; returns how many were read."""
        count = 0
        while True:
            messages = self._consumer.consume(num_messages=1000, timeout=0.0)
            if not messages:
                return count
            for message in messages:
                if message.error() is None:
                    count += self._take(message, now)

    def _take(self, message: Any, now: int) -> int:
        try:
            event = decode_any(message.value())
        except InvalidEventError:
            return 0  # the engine's dead-lettering is not the producer's job
        if isinstance(event, PromotionTriggered | PromotionEnded):
            self.book.apply(event, self._delay, not_before=now)
            return 1
        return 0

    def close(self) -> None:
        """Close the consumer."""
        self._consumer.close()


#: Seconds to wait for Redis to accept a connection or answer: short, like the engine's, so
#: a hung Redis costs the producer at most this much per attempt.
REDIS_TIMEOUT_SECONDS = 1.0
#: After a failed read, Redis is not asked again for this many (wall-clock) seconds: with
#: ``--speed max`` a tick lasts milliseconds, and a timeout on every tick would stall the run.
REDIS_RETRY_SECONDS = 5.0
#: At most one warning per this many seconds while Redis stays unreadable (the metric counts
#: every failure).
REDIS_WARN_EVERY_SECONDS = 60.0


def redis_client(url: str) -> Any:
    """A Redis client with short connect/read timeouts and no retries of its own: the
    :class:`RedisSource` decides when to try again."""
    import redis  # only needed in this mode
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_SECONDS,
                                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                                retry=Retry(NoBackoff(), 0))


class RedisSource:
    """Reads the engine's live offers, hash ``airline:offer:{flight_id}`` per flight on sale.

    The offers are an optimisation of the closed loop, not a dependency of the producer: when
    Redis cannot be read the last known offers stay in effect (the simulation goes on, as an
    airline's booking system keeps its last fares when the pricing service is down), a
    warning is logged at most every ``warn_every`` seconds, ``producer_promotion_source_errors_
    total`` counts each failure, and Redis is asked again after ``retry_after`` seconds; the
    first successful read brings every flight back up to date. A malformed offer is skipped
    the same way, for its flight only.
    """

    def __init__(self, client: Any, delay_seconds: int,
                 retry_after: float | None = None, warn_every: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from redis.exceptions import RedisError

        self.book = DiscountBook()
        self._client = client
        self._delay = delay_seconds
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError)
        self._retry_after = REDIS_RETRY_SECONDS if retry_after is None else retry_after
        self._warn_every = REDIS_WARN_EVERY_SECONDS if warn_every is None else warn_every
        self._clock = clock
        self._next_try = float("-inf")
        self._next_warning = float("-inf")
        #: Failed reads since Redis was last readable (0 while it is healthy).
        self.failures = 0

    def refresh(self, now: int, flight_ids: Iterable[str]) -> int:
        """Read the live offer of every flight on sale; record what changed (effective from the
        offer's ``effective_from`` + delay, never before ``now``). Returns the number of flights
        whose offer changed (0 when Redis could not be read: nothing changes then)."""
        ids = list(flight_ids)
        if not ids or self._clock() < self._next_try:
            return 0
        try:
            pipe = self._client.pipeline(transaction=False)
            for flight_id in ids:
                pipe.hgetall(f"airline:offer:{flight_id}")
            results = pipe.execute()
        except self._errors as e:
            self._failed(e)
            return 0
        if self.failures:
            log.info("live offers readable again; back up to date", failed_reads=self.failures)
            self.failures = 0
            self._next_warning = float("-inf")
        changed = 0
        for flight_id, raw in zip(ids, results, strict=True):
            try:
                offer = _parse_offer(raw)
            except PromotionSourceError as e:
                metrics.PROMOTION_SOURCE_ERRORS.labels("redis", "malformed").inc()
                log.warning("malformed live offer skipped; the flight keeps its last known offer",
                            flight_id=flight_id, error=str(e))
                continue
            live = self.book.current(flight_id)
            if offer is None:
                if live is not None:
                    self.book.set(flight_id, now, None)
                    changed += 1
                continue
            discount, effective_from = offer
            if live != discount:
                self.book.set(flight_id, max(effective_from + self._delay, now), discount)
                changed += 1
        return changed

    def _failed(self, error: BaseException) -> None:
        self.failures += 1
        now = self._clock()
        self._next_try = now + self._retry_after
        metrics.PROMOTION_SOURCE_ERRORS.labels("redis", "unavailable").inc()
        if now >= self._next_warning:
            self._next_warning = now + self._warn_every
            log.warning("cannot read live offers from Redis; keeping the last known offers",
                        error=str(error), failed_reads=self.failures,
                        retry_in_seconds=self._retry_after)


def _parse_offer(raw: dict[Any, Any] | None) -> tuple[ActiveDiscount, int] | None:
    if not raw:
        return None
    fields = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes)
                                                            else v) for k, v in raw.items()}
    try:
        percentage = int(float(fields.get("discount_percentage", 0)))
        if percentage <= 0:
            return None
        discount = ActiveDiscount(fields["promo_id"], fields["target_fare_bucket"], percentage)
        return discount, _epoch(parse_utc(fields["effective_from"]))
    except (KeyError, ValueError) as e:
        raise PromotionSourceError(f"malformed live offer {fields!r}: {e}") from e


__all__ = ["DiscountBook", "RedisSource", "TopicSource", "book_from_file", "redis_client"]
