"""One policy, closed loop, in process: the simulator's demand meets the engine's own code.

The producer's :class:`~airline_producer.simulation.Simulation` yields one tick of simulated
time at a time; its events go, in the order the engine would see them on Kafka (event time,
then topic rank), through the engine's functional :class:`~airline_engine.core.EngineCore`; the
promotions it decides feed the simulation's :class:`~airline_producer.promotions.DiscountBook`
exactly as ``--promotions topic`` does in the cluster: effective from the decision's event time
plus the delay, and never before the end of the tick that produced it (the producer learns a
decision only after writing the events that caused it). No Kafka, no clock: the same seed gives
the same result, and a policy is judged on thousands of flights in seconds.

With ``apply_decisions=False`` the engine still decides, but nobody acts on it: the open-loop
baseline every policy is compared with, on the very same demand draws.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airline_core.config import from_values
from airline_core.events import PromotionEnded, PromotionTriggered
from airline_core.topics import ENGINE_INPUTS, Topic
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
    policy: str  # the engine's ENGINE_POLICY: "pace" or "iteration2"
    apply_decisions: bool = True
    engine_overrides: tuple[tuple[str, str], ...] = ()  # extra ENGINE_* settings


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
    core = engine_core(config.policy, config.engine_overrides)
    ledger = Ledger() if ledger is None else ledger
    total = len(simulation.flights)
    for tick in simulation.run():
        if not tick.events:
            continue
        ordered = sorted(tick.events, key=_engine_order)
        ledger.record_inputs(ordered)
        for output in core.apply_all((str(topic), event) for topic, event in ordered):
            event: Any = output.event
            if output.topic is not Topic.PROMO_DECISIONS:
                continue
            ledger.record_decision(event)
            if config.apply_decisions and isinstance(event, PromotionTriggered | PromotionEnded):
                book.apply(event, delay, not_before=tick.end)
        if progress is not None and tick.index % 500 == 0:
            progress(ledger.closed_flights, total)
    return ledger


def _engine_order(item: tuple[Topic, Any]) -> tuple[float, int]:
    """The engine's merge order within a partition: event time, then topic rank (a stable
    sort keeps the producer's order for equal keys, as offsets do on Kafka)."""
    topic, event = item
    return event.event_time.timestamp(), _RANK[topic]
