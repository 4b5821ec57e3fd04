"""The thin shell: runs the simulation, paces it, feeds it discounts and writes it to Kafka.

Order of start-up: check the topics exist (co-partitioned), register the transactional id
(fencing a previous incarnation), find the last committed tick, open the promotion source, then
regenerate the simulation from the seed, skipping committed ticks without writing them.
On SIGTERM/SIGINT the current transaction is committed and everything flushed before exit 0.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from airline_core.events import BookingCancelled, BookingCreated
from airline_core.kafka import make_consumer, require_topics
from airline_core.lifecycle import StopSignal
from airline_core.logging import get_logger
from airline_core.topics import Topic, physical_name

from airline_producer import metrics
from airline_producer.errors import PromotionSourceError
from airline_producer.kafka_sink import PRODUCED_TOPICS, KafkaSink
from airline_producer.promotions import (
    DiscountBook,
    RedisSource,
    TopicSource,
    book_from_file,
    redis_client,
)
from airline_producer.settings import Settings
from airline_producer.simulation import DiscountLookup, Simulation, Tick

#: A lazy logger: it takes structlog's configuration when it logs, so ``configure_logging`` in
#: ``cli.main`` (after this import) applies to it.
log = get_logger(__name__)


#: With --speed max, a transaction is committed once it holds this many events (whole ticks).
MAX_EVENTS_PER_TRANSACTION = 20_000
#: How often a running producer logs what it wrote (``kubectl logs`` tells a story).
PROGRESS_EVERY_S = 30.0


class Refreshing(Protocol):
    """A live promotion source: polled before each tick is simulated."""

    book: DiscountBook

    def refresh(self, now: int, flight_ids: Any) -> int: ...


class Status:
    """What ``/readyz`` reports."""

    def __init__(self) -> None:
        self.ready = False
        self.reason = "starting"

    def check(self) -> tuple[bool, str]:
        """(ready, reason) for the health server."""
        return self.ready, self.reason


def open_promotions(settings: Settings, partitions: int | None = None, now: int = 0
                    ) -> tuple[DiscountLookup | None, Refreshing | None]:
    """The discount lookup for the configured mode, and the live source to poll (if any).
    ``now``: the simulated start, for decisions already on the topic."""
    delay = round(settings.promotion_delay_minutes * 60)
    if settings.promotions == "off":
        return None, None
    if settings.promotions == "file":
        if not settings.promotions_file:
            raise PromotionSourceError("--promotions file needs PRODUCER_PROMOTIONS_FILE")
        return book_from_file(Path(settings.promotions_file), delay).lookup, None
    if settings.promotions == "topic":
        counts = require_topics(settings.kafka, [Topic.PROMO_DECISIONS])
        consumer = make_consumer(settings.kafka, "airline-producer-promotions",
                                 f"{settings.effective_transactional_id}-promotions",
                                 extra={"enable.partition.eof": True})
        count = partitions or counts[Topic.PROMO_DECISIONS]
        topic_source = TopicSource(
            consumer, physical_name(Topic.PROMO_DECISIONS, settings.kafka.topic_prefix), delay,
            count)
        read = topic_source.catch_up(now, count)
        log.info("promotion decisions read at start", decisions=read)
        return topic_source.book.lookup, topic_source
    redis_source = RedisSource(redis_client(settings.redis_url), delay)
    return redis_source.book.lookup, redis_source


def _count(tick: Tick) -> None:
    for _, event in tick.events:
        if isinstance(event, BookingCreated):
            metrics.BOOKINGS.inc()
            metrics.PASSENGERS.inc(len(event.passengers))
        elif isinstance(event, BookingCancelled):
            metrics.CANCELLATIONS.inc()


def _ticks(sim: Simulation, source: Refreshing | None) -> Iterator[Tick]:
    """The simulation's ticks, polling the live promotion source before each one."""
    generator = sim.run()
    index = 0
    while True:
        if source is not None:
            source.refresh(sim.tick_start(index), sim.live_flight_ids())
        try:
            tick = next(generator)
        except StopIteration:
            return
        index += 1
        yield tick


def run(settings: Settings, stop: StopSignal, status: Status | None = None,
        beat: Any = None) -> int:
    """Run until every flight has departed (or a stop is requested); returns the exit code."""
    status = status or Status()
    partitions = require_topics(settings.kafka, PRODUCED_TOPICS, co_partitioned=True)
    sink = KafkaSink(settings.kafka, settings.effective_transactional_id, settings.run_id)
    sink.init()
    done = sink.last_committed_tick(partitions, beat)
    sim = Simulation(settings)
    lookup, source = open_promotions(settings, now=sim.tick_start(0))
    sim.lookup = lookup
    log.info("producer starting", flights=len(sim.flights), resume_after_tick=done,
             promotions=settings.promotions, speed=settings.speed, seed=settings.seed,
             transactional_id=settings.effective_transactional_id)
    status.ready, status.reason = True, "producing"
    factor = settings.speed_factor
    max_ticks = 1 if factor is not None else settings.transaction_max_ticks
    anchor: tuple[float, int] | None = None
    batch: list[Tick] = []
    batch_events = 0
    started = last_progress = time.monotonic()
    written = reported = 0
    for tick in _ticks(sim, source):
        if beat is not None:
            beat()
        if tick.index <= done:
            metrics.TICKS.labels("skipped").inc()
            continue
        if factor is not None:
            if anchor is None:
                anchor = (time.monotonic(), tick.start)
            due = anchor[0] + (tick.end - anchor[1]) / factor
            if _wait_until(due, stop, beat):
                break
        if tick.events:
            batch.append(tick)
            batch_events += len(tick.events)
        if batch and (len(batch) >= max_ticks or batch_events >= MAX_EVENTS_PER_TRANSACTION):
            written += _commit(sink, batch)
            batch, batch_events = [], 0
        metrics.SIMULATED_TIME.set(tick.end)
        now = time.monotonic()
        if now - last_progress >= PROGRESS_EVERY_S:
            log.info("progress", events=written - reported,
                     events_per_second=round((written - reported) / (now - last_progress), 1),
                     simulated_time=datetime.fromtimestamp(tick.end, tz=UTC).isoformat(),
                     tick=tick.index, bookings=sim.counts.get("bookings", 0))
            last_progress, reported = now, written
        if lookup is not None:
            metrics.LIVE_DISCOUNTS.set(sum(1 for s in sim.states.values()
                                           if s.discount is not None and not s.closed))
        if stop.requested:
            break
    if batch:
        written += _commit(sink, batch)
    sink.flush()
    elapsed = time.monotonic() - started
    log.info("producer finished", events=written, seconds=round(elapsed, 2),
             events_per_second=round(written / elapsed) if elapsed > 0 else None,
             stopped_by=stop.reason or "end of schedule", **dict(sim.counts))
    status.ready, status.reason = False, "finished"
    return 0


def _wait_until(due: float, stop: StopSignal, beat: Any) -> bool:
    """Sleep until monotonic time ``due`` unless stopped (True); beats while waiting, so a slow
    ``--speed`` never looks like a stalled loop to ``/healthz``."""
    while True:
        remaining = due - time.monotonic()
        if remaining <= 0:
            return False
        if stop.wait(min(remaining, 5.0)):
            return True
        if beat is not None:
            beat()


def _commit(sink: KafkaSink, batch: list[Tick]) -> int:
    written = sink.write(batch)
    for tick in batch:
        _count(tick)
        metrics.TICKS.labels("committed").inc()
    return written
