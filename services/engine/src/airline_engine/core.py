"""The functional core: events in, per-flight state and output events out. No Kafka here.

The Kafka shell (``app.py``) feeds it one partition's inputs in merged event-time order; the
policy evaluator and the benchmark feed it lists of events in process. Everything is computed
from event times, so the same inputs always give the same outputs and the same ids.
"""

from __future__ import annotations

import hashlib
from bisect import insort
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from airline_core import events as ev
from airline_core.contract import Reason, Rejection
from airline_core.dead_letter import dead_letter_for
from airline_core.ids import derive_id, derived_event_id
from airline_core.topics import Topic

from airline_engine.curve import BookingCurve
from airline_engine.forecast import DAY_S, FlightView, view_of
from airline_engine.market import PRIOR_DEMAND_CV, Market
from airline_engine.policy import End, Policy, Trigger
from airline_engine.response import PRIOR_ELASTICITY, PRIOR_SD, PriceResponse, ResponseStats
from airline_engine.state import (
    CANCELLED,
    DEPARTED,
    OPEN,
    BucketCapacity,
    FlightState,
    Parked,
    Party,
    Promo,
)

DECISION_SOURCE: Final = "RULE_ENGINE"
COMPONENT: Final = "airline-engine"
ECONOMY: Final = "Y"
DEFAULT_TARGET_BUCKET: Final = "K"
#: :meth:`EngineCore._broken_rule`'s answer for an exact repeat of an event already applied.
_DUPLICATE: Final = Rejection(Reason.CONFLICTING_DUPLICATE, "exact repeat: a no-op")


class Output(NamedTuple):
    """An event to publish on a topic, and the input event time it answers (for latency)."""

    topic: Topic
    event: ev.Event


@dataclass(frozen=True)
class CoreConfig:
    """Knobs of tracking and metrics (the policy carries its own)."""

    policy: Policy
    curve: BookingCurve
    target_load_factor: float = 0.835
    metrics_interval_s: float = 15 * 60
    unknown_flight_s: float = 60 * 60
    #: Departed or cancelled flights are forgotten (changelog tombstone) this long after their
    #: last event, so state stays bounded on a long simulation.
    closed_retention_s: float = 24 * 60 * 60
    #: Bookings, seat changes and snapshots dated this long after the (latest) departure time
    #: are refused: nothing is sold for a flight that has left.
    departure_grace_s: float = 24 * 60 * 60
    #: The price response's prior (``airline_engine.response``) and the demand prior's spread.
    response_prior: float = PRIOR_ELASTICITY
    response_prior_sd: float = PRIOR_SD
    demand_prior_cv: float = PRIOR_DEMAND_CV


#: Booking and seat changes: what a closed (departed or cancelled) flight no longer takes.
_SALES: Final = (ev.BookingCreated, ev.BookingCancelled, ev.SeatAssigned, ev.SeatReleased)
_LIFECYCLE: Final = (ev.CheckInOpened, ev.BoardingStarted, ev.FlightDelayed, ev.FlightDeparted,
                     ev.FlightCancelled)


class _RawMessage:
    """Looks like a confluent-kafka ``Message`` to :func:`dead_letter_for`: a parked record,
    or an event applied in process (no Kafka record behind it)."""

    def __init__(self, parked: Parked) -> None:
        self._p = parked

    @classmethod
    def of_event(cls, topic: str, event: ev.Event) -> _RawMessage:
        """An in-process event as if it were record 0 of partition 0."""
        return cls(Parked(topic, 0, 0, 0, event.event_time.timestamp(), ev.encode(event),
                          event.key))

    def key(self) -> bytes | None:
        return self._p.key

    def value(self) -> bytes:
        return self._p.value

    def partition(self) -> int:
        return self._p.partition

    def offset(self) -> int:
        return self._p.offset

    def headers(self) -> list[tuple[str, bytes]]:
        return []

    def timestamp(self) -> tuple[int, int]:
        return (1, self._p.timestamp_ms)


def _digest(event: ev.Event, source: Any) -> str:
    """What "the same content" means for duplicates: the record's bytes (the event's canonical
    encoding when applied in process, which is what the producer writes), hashed."""
    raw = source.value() if source is not None else None
    return hashlib.blake2b(raw if raw is not None else ev.encode(event),
                           digest_size=8).hexdigest()


def _same_schedule(flight: FlightState, event: ev.FlightScheduled) -> bool:
    return (flight.departure_s == event.scheduled_departure_time.timestamp()
            and flight.cabins == {c.cabin_code: c.seat_count for c in event.cabins}
            and flight.buckets == [BucketCapacity(b.bucket, b.cabin_code, str(b.price), b.seats)
                                   for b in event.fare_buckets])


def target_bucket(event: ev.FlightScheduled) -> str:
    """The cheapest bucket of the economy cabin (``Y``, else the largest cabin); ``K`` if none."""
    buckets = event.fare_buckets
    if not buckets:
        return DEFAULT_TARGET_BUCKET
    cabins = {b.cabin_code for b in buckets}
    if ECONOMY in cabins:
        economy = ECONOMY
    else:
        sizes = {c.cabin_code: c.seat_count for c in event.cabins}
        economy = max(sorted(cabins), key=lambda c: sizes.get(c, 0))
    return min((b for b in buckets if b.cabin_code == economy),
               key=lambda b: (b.price, b.bucket)).bucket


class EngineCore:
    """Tracks flights and decides promotions for one partition (or for everything, in process).

    ``dirty`` collects the flights whose state changed since the shell last took it; a flight
    in ``dirty`` but no longer in ``flights`` was deleted (the shell writes a tombstone).
    ``market`` holds what the partition learned across flights (the price response); its
    statistics changed since the shell last took them when ``response_dirty`` is set.
    """

    def __init__(self, config: CoreConfig) -> None:
        self.config = config
        self.policy = config.policy
        self.flights: dict[str, FlightState] = {}
        self.dirty: set[str] = set()
        self.market = Market(config.curve, config.target_load_factor,
                             PriceResponse(config.response_prior, config.response_prior_sd),
                             config.demand_prior_cv)
        self.response_dirty = False
        self._parked_oldest: float | None = None
        self._next_eviction_s = float("-inf")

    # ------------------------------------------------------------------ state access
    def restore(self, flight: FlightState) -> None:
        """Adopt a flight restored from the changelog."""
        self.flights[flight.flight_id] = flight
        if flight.parked:
            oldest = min(p.event_s for p in flight.parked)
            if self._parked_oldest is None or oldest < self._parked_oldest:
                self._parked_oldest = oldest

    def restore_response(self, stats: ResponseStats) -> None:
        """Adopt the price-response statistics restored from the changelog."""
        self.market.response.adopt(stats)

    def take_response(self) -> ResponseStats | None:
        """The price-response statistics if they changed since the last call."""
        if not self.response_dirty:
            return None
        self.response_dirty = False
        return self.market.response.stats

    def take_dirty(self) -> set[str]:
        """The flights changed since the last call (and forget them)."""
        dirty, self.dirty = self.dirty, set()
        return dirty

    def view(self, flight_id: str, now_s: float) -> FlightView:
        """The pace and forecast of a flight at ``now_s`` (for tools and tests)."""
        return view_of(self.flights[flight_id], now_s, self.config.curve,
                       self.config.target_load_factor)

    # ------------------------------------------------------------------ events in
    def apply(self, topic: str, event: Any, *, source: Any = None) -> list[Output]:
        """Apply one input event; returns the events to publish because of it.

        ``source`` is the Kafka record the event was read from (what a dead letter keeps);
        in-process callers pass none and the event's encoding stands in for it. An event that
        breaks a business rule (``docs/contract.md``) changes nothing and goes to
        ``dead_letter``."""
        out: list[Output] = []
        now_s = event.event_time.timestamp()
        if self._parked_oldest is not None and \
                now_s - self.config.unknown_flight_s > self._parked_oldest:
            self._expire_parked(now_s, out)
        if now_s >= self._next_eviction_s:
            self._evict_closed(now_s)
        flight = self.flights.get(event.flight_id)
        kind = type(event)
        if kind is ev.FlightScheduled:
            if flight is not None and flight.scheduled:
                if not _same_schedule(flight, event):
                    self._reject(out, topic, event, source, Rejection(
                        Reason.INCONSISTENT_SCHEDULE, f"flight {event.flight_id} is already "
                        "scheduled with another departure, cabins or fare buckets"))
                return out  # the same schedule again: nothing changes
            if flight is None:
                flight = self.flights[event.flight_id] = FlightState(event.flight_id)
            self._schedule(flight, event)
            self._after(flight, event, now_s, True, out)
            if flight.parked:
                self._replay_parked(flight, out)
            return out
        if flight is None or not flight.scheduled:
            self._park(flight, topic, event, source, now_s)
            return out
        problem = self._broken_rule(flight, kind, event, now_s, source)
        if problem is not None:
            if problem is not _DUPLICATE:
                self._reject(out, topic, event, source, problem)
            return out
        force, metrics = self._track(flight, event, now_s, source)
        self._after(flight, event, now_s, force, out, metrics)
        return out

    def _broken_rule(self, flight: FlightState, kind: type, event: Any, now_s: float,
                     source: Any) -> Rejection | None:
        """The business rule ``event`` breaks, :data:`_DUPLICATE` for an exact repeat, or None.

        The rules (``docs/contract.md``): nothing is dated before the flight opened for sale;
        a closed flight takes no booking or seat change dated after it closed, and no flight
        takes one dated more than the grace after its departure time; a booking id
        is booked once (the same event again is a no-op, another event a conflict); a booking
        never takes more seats than its cabin has left; a cancellation names a live booking."""
        if now_s < flight.sale_open_s:
            return Rejection(Reason.BEFORE_SALE_OPENING,
                             f"{kind.__name__} dated before flight {flight.flight_id} opened "
                             "for sale")
        if kind in _SALES and flight.status != OPEN and now_s > flight.closed_s:
            return Rejection(Reason.FLIGHT_CLOSED,
                             f"{kind.__name__} for flight {flight.flight_id}, {flight.status}")
        if kind not in _LIFECYCLE and now_s > flight.departure_s + self.config.departure_grace_s:
            return Rejection(Reason.FLIGHT_CLOSED,
                             f"{kind.__name__} dated more than "
                             f"{self.config.departure_grace_s / 60:.0f} minutes after flight "
                             f"{flight.flight_id}'s departure")
        if kind is ev.BookingCreated:
            party = flight.parties.get(event.booking_id)
            if party is not None:
                if party.event_id == event.event_id and party.digest == _digest(event, source):
                    return _DUPLICATE
                return Rejection(Reason.CONFLICTING_DUPLICATE,
                                 f"booking {event.booking_id} was already booked by another "
                                 "event" if party.event_id != event.event_id else
                                 f"event {event.event_id} seen before with other content")
            wanted: dict[str, int] = {}
            for p in event.passengers:
                wanted[p.cabin_code] = wanted.get(p.cabin_code, 0) + 1
            for cabin, count in wanted.items():
                left = flight.cabins.get(cabin, 0) - flight.booked_by_cabin.get(cabin, 0)
                if count > left:
                    return Rejection(Reason.OVERSOLD,
                                     f"booking {event.booking_id} wants {count} seats in cabin "
                                     f"{cabin}, which has {max(left, 0)} left")
        elif kind is ev.BookingCancelled and event.booking_id not in flight.parties:
            if flight.cancelled.get(event.booking_id) == event.event_id:
                return _DUPLICATE
            return Rejection(Reason.UNKNOWN_BOOKING,
                             f"booking {event.booking_id} is not live on flight "
                             f"{flight.flight_id}")
        return None

    def _reject(self, out: list[Output], topic: str, event: Any, source: Any,
                rejection: Rejection) -> None:
        record = source if source is not None else _RawMessage.of_event(topic, event)
        out.append(Output(Topic.DEAD_LETTER, dead_letter_for(record, topic, rejection,
                                                             COMPONENT)))

    def apply_all(self, items: Iterable[tuple[str, Any]]) -> list[Output]:
        """Apply (topic, event) pairs in order (in-process runs)."""
        out: list[Output] = []
        for topic, event in items:
            out.extend(self.apply(topic, event))
        return out

    # ------------------------------------------------------------------ tracking
    def _schedule(self, flight: FlightState, event: ev.FlightScheduled) -> None:
        flight.scheduled = True
        flight.status = OPEN
        flight.sale_open_s = event.event_time.timestamp()
        flight.airline_code = event.airline_code
        flight.departure_s = event.scheduled_departure_time.timestamp()
        flight.cabins = {c.cabin_code: c.seat_count for c in event.cabins}
        flight.total_seats = event.total_seats or sum(flight.cabins.values())
        flight.buckets = [BucketCapacity(b.bucket, b.cabin_code, str(b.price), b.seats)
                          for b in event.fare_buckets]
        flight.target_fare_bucket = target_bucket(event)

    def _track(self, flight: FlightState, event: Any, now_s: float, source: Any = None
               ) -> tuple[bool, bool]:
        """Update ``flight``; returns (metrics now regardless of rate, metrics-worthy change)."""
        kind = type(event)
        if kind is ev.BookingCreated:
            seats: dict[str, int] = {}
            for p in event.passengers:
                seats[p.cabin_code] = seats.get(p.cabin_code, 0) + 1
            n = len(event.passengers)
            flight.parties[event.booking_id] = Party(event.fare_bucket, seats, event.event_id,
                                                     _digest(event, source))
            flight.booked += n
            for cabin, count in seats.items():
                flight.booked_by_cabin[cabin] = flight.booked_by_cabin.get(cabin, 0) + count
            flight.booked_by_bucket[event.fare_bucket] = \
                flight.booked_by_bucket.get(event.fare_bucket, 0) + n
            recent = flight.recent_bookings
            if not recent or recent[-1] <= now_s:
                recent.append(now_s)
            else:
                insort(recent, now_s)
            if recent[0] <= now_s - DAY_S:
                cut = now_s - DAY_S
                flight.recent_bookings = [t for t in recent if t > cut]
            if self.market.exposed(flight):
                self.market.on_booking(flight, seats, now_s)
            return False, True
        if kind is ev.BookingCancelled:
            party = flight.parties.pop(event.booking_id)
            flight.cancelled[event.booking_id] = event.event_id
            n = sum(party.seats.values())
            flight.booked -= n
            for cabin, count in party.seats.items():
                flight.booked_by_cabin[cabin] = flight.booked_by_cabin.get(cabin, 0) - count
            flight.booked_by_bucket[party.bucket] = \
                flight.booked_by_bucket.get(party.bucket, 0) - n
            return False, True
        if kind is ev.CabinInventorySnapshot:
            for cabin in event.cabins:
                for b in cabin.fare_buckets:
                    flight.available_by_bucket[b.bucket] = b.available_seats
            return False, False
        if kind is ev.SeatAssigned:
            flight.seats_assigned += 1
            return False, False
        if kind is ev.SeatReleased:
            flight.seats_assigned = max(flight.seats_assigned - 1, 0)
            return False, False
        if kind is ev.FlightDelayed:
            flight.departure_s = event.new_departure_time.timestamp()
            return True, True
        if kind is ev.FlightDeparted:
            if flight.status == OPEN:
                flight.closed_s = now_s
            flight.status = DEPARTED
            flight.parties = {}  # final: nothing can be cancelled any more
            flight.cancelled = {}
            return True, True
        if kind is ev.FlightCancelled:
            if flight.status == OPEN:
                flight.closed_s = now_s
            flight.status = CANCELLED
            return True, True
        return False, False  # CheckInOpened, BoardingStarted: nothing to track

    def _after(self, flight: FlightState, event: Any, now_s: float, force: bool,
               out: list[Output], metrics: bool = True) -> None:
        """Version the change, ask the policy, emit metrics when due."""
        flight.version += 1
        if now_s > flight.last_event_s:
            flight.last_event_s = now_s
        self.dirty.add(flight.flight_id)
        view: FlightView | None = None
        market = self.market
        if (flight.promo is not None or flight.exposure_s is not None) and \
                market.on_event(flight, now_s):
            self.response_dirty = True
        if self.policy.may_act(flight, now_s):
            view = self._view(flight, now_s)
            shadow = flight.shadow_discount
            decision = self.policy.decide(flight, view, now_s, market)
            if decision is not None:
                self._decide(flight, event, view, decision, now_s, out)
                market.on_event(flight, now_s)  # the next exposure starts with the decision
                force = True
            elif flight.shadow_discount != shadow:
                market.on_event(flight, now_s)  # a held-out flight's would-be change
        if metrics:
            flight.metrics_dirty = True
        last = flight.last_metrics_s
        if force or (flight.metrics_dirty and (
                last is None or now_s - last >= self.config.metrics_interval_s)):
            if view is None:
                view = self._view(flight, now_s)
            out.append(Output(Topic.INVENTORY_METRICS, self._metrics(flight, event, view)))
            flight.metrics_dirty = False
            flight.last_metrics_s = now_s

    def _view(self, flight: FlightState, now_s: float) -> FlightView:
        return view_of(flight, now_s, self.config.curve, self.config.target_load_factor)

    def _decide(self, flight: FlightState, event: Any, view: FlightView,
                decision: Trigger | End, now_s: float, out: list[Output]) -> None:
        version = self.policy.version
        if isinstance(decision, Trigger):
            promo_id = derive_id("promo", flight.flight_id, event.event_id, decision.tier)
            if flight.promo is None:
                flight.promos_started += 1
            flight.promo = Promo(promo_id, decision.tier, decision.discount_percentage,
                                 flight.target_fare_bucket, now_s, decision.reason)
            flight.last_promo_change_s = now_s
            out.append(Output(Topic.PROMO_DECISIONS, ev.PromotionTriggered(
                event_id=derived_event_id(event.event_id, "promotion"),
                event_time=event.event_time,
                flight_id=flight.flight_id,
                decision_source=DECISION_SOURCE,
                current_load_factor=view.load_factor,
                minutes_to_departure=view.minutes_to_departure,
                target_fare_bucket=flight.target_fare_bucket,
                discount_percentage=decision.discount_percentage,
                promo_id=promo_id,
                tier=decision.tier,
                reason=decision.reason,
                inputs=decision.inputs,
                policy_version=version,
                explanation=decision.explanation,
            )))
            return
        promo = flight.promo
        assert promo is not None
        flight.promo = None
        flight.last_promo_change_s = now_s
        out.append(Output(Topic.PROMO_DECISIONS, ev.PromotionEnded(
            event_id=derived_event_id(event.event_id, "promotion-ended"),
            event_time=event.event_time,
            flight_id=flight.flight_id,
            promo_id=promo.promo_id,
            decision_source=DECISION_SOURCE,
            reason=decision.reason,
            target_fare_bucket=promo.target_fare_bucket,
            discount_percentage=promo.discount_percentage,
            current_load_factor=view.load_factor,
            minutes_to_departure=view.minutes_to_departure,
            policy_version=version,
            explanation=decision.explanation,
        )))

    def _metrics(self, flight: FlightState, event: Any,
                 view: FlightView) -> ev.CabinInventoryMetrics:
        promo = flight.promo
        return ev.CabinInventoryMetrics(
            event_id=derived_event_id(event.event_id, "metrics"),
            event_time=event.event_time,
            flight_id=flight.flight_id,
            booked_seats=max(view.booked, 0),
            total_seats=view.capacity,
            load_factor=max(view.load_factor, 0.0),
            minutes_to_departure=view.minutes_to_departure,
            seats_remaining=view.seats_remaining,
            bookings_last_hour=view.bookings_last_hour,
            bookings_last_day=view.bookings_last_day,
            expected_booked_to_date=round(view.expected_booked_to_date, 3),
            forecast_load_factor=view.forecast_load_factor,
            active_discount_percentage=promo.discount_percentage if promo else 0,
            active_promo_id=promo.promo_id if promo else None,
            state_version=flight.version,
        )

    def _evict_closed(self, now_s: float) -> None:
        """Forget flights closed for longer than the retention (checked once per event hour)."""
        self._next_eviction_s = now_s + 3600
        cut = now_s - self.config.closed_retention_s
        for flight_id in [f.flight_id for f in self.flights.values()
                          if f.status != OPEN and f.last_event_s < cut]:
            del self.flights[flight_id]
            self.dirty.add(flight_id)

    # ------------------------------------------------------------------ unknown flights
    def _park(self, flight: FlightState | None, topic: str, event: Any, source: Any,
              now_s: float) -> None:
        if flight is None:
            flight = self.flights[event.flight_id] = FlightState(event.flight_id)
        if source is None:
            parked = _RawMessage.of_event(topic, event)._p
        else:
            parked = Parked(str(topic), int(source.partition()), int(source.offset()),
                            int(source.timestamp()[1]), now_s, source.value(), source.key())
        flight.parked.append(parked)
        self.dirty.add(flight.flight_id)
        if self._parked_oldest is None or now_s < self._parked_oldest:
            self._parked_oldest = now_s

    def _replay_parked(self, flight: FlightState, out: list[Output]) -> None:
        parked, flight.parked = flight.parked, []
        for p in parked:
            event = ev.decode(p.topic, p.value)
            out.extend(self.apply(p.topic, event, source=_RawMessage(p)))
        self._recompute_parked_oldest()

    def _expire_parked(self, now_s: float, out: list[Output]) -> None:
        """Events that waited too long for their FlightScheduled go to dead_letter."""
        cut = now_s - self.config.unknown_flight_s
        for flight_id in sorted(self.flights):
            flight = self.flights[flight_id]
            if not flight.parked or flight.scheduled:
                continue
            keep = []
            for p in flight.parked:
                if p.event_s < cut:
                    out.append(Output(Topic.DEAD_LETTER, dead_letter_for(
                        _RawMessage(p), p.topic, Rejection(
                            Reason.UNKNOWN_FLIGHT,
                            f"unknown flight {flight_id}: no FlightScheduled within "
                            f"{self.config.unknown_flight_s / 60:.0f} minutes of event time"),
                        COMPONENT)))
                else:
                    keep.append(p)
            flight.parked = keep
            self.dirty.add(flight_id)
            if not keep:
                del self.flights[flight_id]
        self._recompute_parked_oldest()

    def _recompute_parked_oldest(self) -> None:
        times = [p.event_s for f in self.flights.values() for p in f.parked]
        self._parked_oldest = min(times) if times else None


def core_config(settings: Any) -> CoreConfig:
    """The core's configuration from :class:`~airline_engine.settings.Settings`."""
    from airline_engine.policy import Iteration2Policy, PacePolicy
    from airline_engine.revenue_policy import RevenuePolicy

    policy: Policy
    if settings.policy == "iteration2":
        policy = Iteration2Policy()
    elif settings.policy == "revenue":
        policy = RevenuePolicy(
            discounts=settings.discount_list(),
            window_start_minutes=settings.revenue_window_minutes,
            window_end_minutes=settings.window_end_minutes,
            review_minutes=settings.review_minutes,
            min_gain=settings.min_gain, change_gain=settings.change_gain,
            holdout_share=settings.holdout_share)
    else:
        policy = PacePolicy(
            tiers=settings.tier_list(), margin=settings.margin,
            recovery_margin=settings.recovery_margin,
            min_expected_seats=settings.min_expected_seats,
            window_start_minutes=settings.window_start_minutes,
            window_end_minutes=settings.window_end_minutes,
            cooldown_minutes=settings.cooldown_minutes,
            target_load_factor=settings.target_load_factor)
    return CoreConfig(
        policy=policy, curve=BookingCurve.parse(settings.booking_curve),
        target_load_factor=settings.target_load_factor,
        metrics_interval_s=settings.metrics_interval_minutes * 60.0,
        unknown_flight_s=settings.unknown_flight_minutes * 60.0,
        closed_retention_s=settings.closed_retention_minutes * 60.0,
        departure_grace_s=settings.departure_grace_minutes * 60.0,
        response_prior=settings.response_prior, response_prior_sd=settings.response_prior_sd)
