"""One policy, closed loop, in process: the simulator's demand meets the engine's own code.

The producer's :class:`~airline_producer.simulation.Simulation` yields one tick of simulated
time at a time; its events go, in the order the engine would see them on Kafka (event time,
then topic rank), through the engine's functional :class:`~airline_engine.core.EngineCore`; the
promotions it decides feed the simulation's :class:`~airline_producer.promotions.DiscountBook`
exactly as ``--promotions topic`` does in the cluster: effective from the decision's event time
plus the delay, and never before the end of the tick that produced it (the producer learns a
decision only after writing the events that caused it). No Kafka, no clock: the same seed gives
the same result, and a policy is judged on thousands of flights in seconds.

Flights are split over ``partitions`` cores exactly as the producer's keys land on the topics'
partitions (:func:`airline_core.topics.partition_of`), because each of the engine's partitions
learns its own price response: a core per partition makes the evaluator's decisions the ones
the engine takes on Kafka.

With ``apply_decisions=False`` the engine still decides, but nobody acts on it: the open-loop
baseline every policy is compared with, on the very same demand draws.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airline_core.config import from_values
from airline_core.events import PromotionEnded, PromotionTriggered
from airline_core.topics import DEFAULT_PARTITIONS, ENGINE_INPUTS, Topic, partition_of
from airline_engine.core import EngineCore, core_config
from airline_engine.settings import Settings as EngineSettings
from airline_producer.promotions import DiscountBook
from airline_producer.settings import Settings as ProducerSettings
from airline_producer.simulation import Simulation

from airline_evaluator.outcomes import Ledger

_RANK = {topic: rank for rank, topic in enumerate(ENGINE_INPUTS)}


@dataclass(frozen=True)
class LoopConfig:
    """What one closed-loop run simulates and which policy decides."""

    producer: ProducerSettings
    policy: str  # the engine's ENGINE_POLICY: "revenue", "pace" or "iteration2"
    apply_decisions: bool = True
    engine_overrides: tuple[tuple[str, str], ...] = ()  # extra ENGINE_* settings
    partitions: int = DEFAULT_PARTITIONS  # of the engine's input topics: one core each


def engine_core(policy: str, overrides: tuple[tuple[str, str], ...] = ()) -> EngineCore:
    """The engine's functional core configured as ``airline-engine`` would be."""
    settings = from_values(EngineSettings, {"ENGINE_POLICY": policy, **dict(overrides)}, {})
    return EngineCore(core_config(settings))


def run(config: LoopConfig, progress: Callable[[int, int], None] | None = None,
        ledger: Ledger | None = None) -> Ledger:
    """Simulate every flight to departure under ``config``; the ledger of what happened
    (``ledger`` if given, for callers that record more).

    ``progress(flights_closed, flights_total)`` is called now and then for long runs."""
    book = DiscountBook()
    delay = round(config.producer.promotion_delay_minutes * 60)
    simulation = Simulation(config.producer, lookup=book.lookup if config.apply_decisions
                            else None)
    cores = [engine_core(config.policy, config.engine_overrides)
             for _ in range(config.partitions)]
    partition: dict[str, int] = {}
    ledger = Ledger() if ledger is None else ledger
    total = len(simulation.flights)
    for tick in simulation.run():
        if not tick.events:
            continue
        ordered = sorted(tick.events, key=_engine_order)
        ledger.record_inputs(ordered)
        split: list[list[tuple[str, Any]]] = [[] for _ in cores]
        for topic, item in ordered:
            p = partition.get(item.flight_id)
            if p is None:
                p = partition[item.flight_id] = partition_of(item.key, config.partitions)
            split[p].append((str(topic), item))
        for core, items in zip(cores, split, strict=True):
            for output in core.apply_all(items):
                event: Any = output.event
                if output.topic is not Topic.PROMO_DECISIONS:
                    continue
                ledger.record_decision(event)
                if config.apply_decisions and isinstance(event,
                                                         PromotionTriggered | PromotionEnded):
                    book.apply(event, delay, not_before=tick.end)
        if progress is not None and tick.index % 500 == 0:
            progress(ledger.closed_flights, total)
    return ledger


def _engine_order(item: tuple[Topic, Any]) -> tuple[float, int]:
    """The engine's merge order within a partition: event time, then topic rank (a stable
    sort keeps the producer's order for equal keys, as offsets do on Kafka)."""
    topic, event = item
    return event.event_time.timestamp(), _RANK[topic]
