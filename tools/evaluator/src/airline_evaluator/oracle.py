"""The hindsight oracle: per flight, the best discount schedule of a fixed family, chosen after
seeing that flight's realised demand.

The family (:data:`SCHEDULES`): no promotion, or ``d`` % off the flight's target bucket (the
engine's :func:`airline_engine.core.target_bucket`: the cheapest economy bucket, ``K`` on the
A320) from ``t`` days before the scheduled departure until departure, for d in
:data:`DISCOUNTS` and t in :data:`DAYS_OUT`. The simulation runs once per schedule for every
flight, on the same demand draws as the baseline and the policies (each flight's generators
are seeded by seed + flight id; the customers a discount of up to 35 % reaches are drawn when
the flight opens), and each flight keeps the schedule with the highest realised revenue (its
departed bookings, as :attr:`~airline_evaluator.outcomes.FlightOutcome.revenue`). No policy
that picks one schedule of this family per flight can do better on these draws; a policy that
acts otherwise (other depths, other buckets, promotions that end or step) is not bounded by it.

Speed, without changing any outcome (the tests check each point):

- inventory snapshots never change demand (a snapshot only reads the inventory and takes the
  last rank in the event heap, so it never reorders other events): the oracle runs without;
- its event and booking ids are plain labels instead of UUIDs (ids draw no random number);
- flights are independent (own generators, own inventory), so a schedule is simulated only on
  the flights it can change: those whose target bucket is still for sale at some moment of its
  window, as the no-promotion run shows. A discount on a sold-out bucket changes no price a
  customer can pay (it is the cheapest bucket: discounted or not, it is tried first, and it
  only sells with a seat left), and up to the first booking it changes, a flight's run is the
  no-promotion run. The other flights keep their no-promotion outcome;
- the simulations run in parallel processes (the no-promotion run split by flights, then the
  schedules, the largest first).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from airline_core.events import BookingCancelled, BookingCreated, FlightScheduled
from airline_core.ids import derive_id
from airline_core.topics import Topic
from airline_engine.core import target_bucket
from airline_producer import simulation
from airline_producer.network import Flight, build_schedule
from airline_producer.settings import Settings as ProducerSettings
from airline_producer.simulation import ActiveDiscount, Simulation

from airline_evaluator.outcomes import DAY_SECONDS, FlightOutcome, Ledger

NAME = "oracle"
DISCOUNTS = (5, 10, 15, 25, 35)
#: Start days: the revenue policy's whole window (42 days, ENGINE_REVENUE_WINDOW_MINUTES), not
#: only the last three weeks: a family that starts later than a policy may act is no ceiling.
DAYS_OUT = (42, 28, 21, 14, 7, 3, 1)
#: Minutes between snapshots in the oracle's simulations: longer than any run, so none.
NO_SNAPSHOTS = 10**9


@dataclass(frozen=True, order=True)
class Schedule:
    """``discount`` % off the target bucket from ``days`` days before departure (0, 0: none)."""

    discount: int = 0
    days: int = 0

    @property
    def label(self) -> str:
        return f"{self.discount} % from {self.days} d" if self.discount else "none"


NONE = Schedule()
SCHEDULES: tuple[Schedule, ...] = (NONE, *(Schedule(d, t) for t in DAYS_OUT for d in DISCOUNTS))


@dataclass(frozen=True)
class Choice:
    """The oracle's pick for one flight, and what no promotion would have made."""

    flight_id: str
    discount: int
    days: int
    revenue: Decimal
    baseline_revenue: Decimal


@dataclass
class OracleResult:
    """The oracle's run: per flight its chosen schedule's outcome (a ledger like any run's),
    the choices, and each schedule's own total (departed flights)."""

    ledger: Ledger
    choices: dict[str, Choice]
    schedule_revenue: dict[Schedule, Decimal]
    seconds: float = 0.0
    simulated: int = 0  # flight simulations run (flights x schedules, less those skipped)

    def counts(self) -> dict[str, int]:
        """Departed flights per chosen schedule (label), in the family's order."""
        departed = {fid for fid, f in self.ledger.flights.items() if f.status == "departed"}
        by = {s: 0 for s in SCHEDULES}
        for fid, c in self.choices.items():
            if fid in departed:
                by[Schedule(c.discount, c.days)] += 1
        return {s.label: n for s, n in by.items() if n}


class ScheduleLookup:
    """The live discount of every flight under one schedule, learnt from its FlightScheduled
    (the simulation asks only about flights already open, so always after it)."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.table: dict[str, tuple[int, ActiveDiscount]] = {}

    def register(self, event: FlightScheduled) -> None:
        s = self.schedule
        start = int(event.scheduled_departure_time.timestamp()) - s.days * DAY_SECONDS
        promo = derive_id("oracle", event.flight_id, s.discount, s.days)
        self.table[event.flight_id] = (start, ActiveDiscount(promo, target_bucket(event),
                                                             s.discount))

    def __call__(self, flight_id: str, at: int) -> ActiveDiscount | None:
        entry = self.table.get(flight_id)
        return entry[1] if entry is not None and at >= entry[0] else None


def _label_id(*parts: object) -> str:
    return "/".join(map(str, parts))


@contextmanager
def _cheap_ids() -> Iterator[None]:
    """Plain labels instead of UUIDs for the simulation's ids while it runs (ids draw no random
    number, and booking ids stay unique per flight): a third of the simulation's time."""
    saved = simulation.derive_id
    simulation.derive_id = _label_id
    try:
        yield
    finally:
        simulation.derive_id = saved


class _Screening(Ledger):
    """A ledger that also notes when each flight's target bucket sold out for good: the time
    of the booking that last filled it (None while seats are left at departure)."""

    def __init__(self) -> None:
        super().__init__()
        self.target: dict[str, tuple[str, int]] = {}  # flight -> (bucket, its seats)
        self.sold: dict[str, int] = {}
        self.closed_at: dict[str, float | None] = {}

    def record_inputs(self, events: Iterable[tuple[Topic, Any]]) -> None:
        events = list(events)
        super().record_inputs(events)
        for _, event in events:
            kind = type(event)
            if kind is BookingCreated or kind is BookingCancelled:
                fid = event.flight_id
                bucket, seats = self.target[fid]
                if event.fare_bucket != bucket:
                    continue
                sign = 1 if kind is BookingCreated else -1
                self.sold[fid] += sign * len(event.passengers)
                if self.sold[fid] < seats:
                    self.closed_at[fid] = None
                elif sign > 0:
                    self.closed_at[fid] = event.event_time.timestamp()
            elif kind is FlightScheduled:
                bucket = target_bucket(event)
                seats = next((b.seats for b in event.fare_buckets if b.bucket == bucket), 0)
                self.target[event.flight_id] = (bucket, seats)
                self.sold[event.flight_id] = 0
                self.closed_at[event.flight_id] = None if seats > 0 else float("-inf")


def _flights(producer: ProducerSettings) -> list[Flight]:
    return build_schedule(producer.flights, producer.days, producer.first_departure_date)


def simulate_schedule(producer: ProducerSettings, schedule: Schedule,
                      indices: Sequence[int] | None = None
                      ) -> tuple[dict[str, FlightOutcome], dict[str, float | None]]:
    """The flights ``indices`` (default all) of ``producer``'s world under ``schedule``
    (snapshots off, label ids): their outcomes, and when each one's target bucket sold out for
    good (None: never)."""
    everything = _flights(producer)
    chosen = everything if indices is None else [everything[i] for i in indices]
    lookup = ScheduleLookup(schedule)
    sim = Simulation(producer.replace(snapshot_interval_minutes=NO_SNAPSHOTS),
                     lookup=lookup if schedule.discount else None,
                     flights=[dataclasses.replace(f, index=k) for k, f in enumerate(chosen)])
    ledger = _Screening()
    with _cheap_ids():
        for tick in sim.run():
            if not tick.events:
                continue
            for _, event in tick.events:
                if type(event) is FlightScheduled:
                    lookup.register(event)
            ledger.record_inputs(tick.events)
    return ledger.flights, ledger.closed_at


def may_change(flight: Flight, closed_at: float | None, schedule: Schedule) -> bool:
    """Whether ``schedule`` can change ``flight`` (its target bucket sells at some moment of
    the window, in the no-promotion run)."""
    return bool(schedule.discount) and (
        closed_at is None or closed_at >= flight.departure - schedule.days * DAY_SECONDS)


Job = tuple[ProducerSettings, Schedule, Sequence[int] | None]


def _job(job: Job) -> tuple[Schedule, dict[str, FlightOutcome], dict[str, float | None]]:
    producer, schedule, indices = job
    return (schedule, *simulate_schedule(producer, schedule, indices))


def _map(jobs: list[Job], workers: int, progress: Callable[[], None]
         ) -> Iterator[tuple[Schedule, dict[str, FlightOutcome], dict[str, float | None]]]:
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield _job(job)
            progress()
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        for future in as_completed([pool.submit(_job, job) for job in jobs]):
            yield future.result()
            progress()


def run(producer: ProducerSettings, workers: int = 1,
        progress: Callable[[int, int], None] | None = None) -> OracleResult:
    """The oracle on ``producer``'s world, over ``workers`` processes (1: in this one).

    ``progress(simulations_done, simulations_total)`` after each simulation."""
    started = time.monotonic()
    flights = _flights(producer)
    chunks = max(1, min(workers, len(flights)))
    first: list[Job] = [(producer, NONE, range(k, len(flights), chunks)) for k in range(chunks)]
    total = len(first) + len(SCHEDULES) - 1
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    none: dict[str, FlightOutcome] = {}
    closed_at: dict[str, float | None] = {}
    for _, outcome, closed in _map(first, workers, step):
        none.update(outcome)
        closed_at.update(closed)
    rest: list[Job] = []
    for schedule in SCHEDULES[1:]:
        rest.append((producer, schedule, [i for i, f in enumerate(flights)
                                          if may_change(f, closed_at[f.flight_id], schedule)]))
    rest.sort(key=lambda job: -len(job[2] or ()))  # the largest first: the workers end together
    runs: dict[Schedule, dict[str, FlightOutcome]] = {NONE: none}
    simulated = sum(len(j[2] or ()) for j in rest)
    for schedule, outcome, _ in _map([j for j in rest if j[2]], workers, step):
        runs[schedule] = outcome
    for _ in range(sum(1 for j in rest if not j[2])):
        step()
    result = _choose(flights, none, runs)
    result.seconds = time.monotonic() - started
    result.simulated = len(flights) + simulated
    return result


def _choose(flights: list[Flight], none: dict[str, FlightOutcome],
            runs: dict[Schedule, dict[str, FlightOutcome]]) -> OracleResult:
    """Per flight the schedule of the highest departed revenue (a tie goes to the earlier
    schedule of :data:`SCHEDULES`, no promotion first); a flight a schedule was not simulated
    on has its no-promotion outcome under it."""
    ledger = Ledger()
    choices = {}
    totals = dict.fromkeys(SCHEDULES, Decimal(0))
    for flight in flights:
        fid = flight.flight_id
        base = none[fid]
        best, best_revenue, best_outcome = NONE, Decimal(0), base
        for rank, schedule in enumerate(SCHEDULES):
            outcome = runs.get(schedule, {}).get(fid, base)
            revenue = outcome.revenue if outcome.status == "departed" else Decimal(0)
            totals[schedule] += revenue
            if rank == 0 or revenue > best_revenue:
                best, best_revenue, best_outcome = schedule, revenue, outcome
        # The oracle's own promotions: one per flight it discounts.
        ledger.flights[fid] = dataclasses.replace(
            best_outcome, promotions=1 if best.discount else 0, max_discount=best.discount)
        choices[fid] = Choice(fid, best.discount, best.days, best_revenue,
                              base.revenue if base.status == "departed" else Decimal(0))
    ledger.closed_flights = sum(f.status != "open" for f in ledger.flights.values())
    return OracleResult(ledger, choices, totals)
