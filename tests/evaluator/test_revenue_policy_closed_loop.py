"""The revenue policy in closed loop: its control group and its hysteresis, on simulated demand."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from airline_core.events import PromotionTriggered
from airline_engine.core import EngineCore
from airline_engine.revenue_policy import RevenuePolicy
from airline_evaluator import closed_loop
from airline_producer.settings import Settings as ProducerSettings

#: A weak market over a horizon longer than the revenue policy's window: it promotes a lot.
WORLD = ProducerSettings(seed=7, flights=60, days=3, booking_horizon_days=63,
                         snapshot_interval_minutes=1440, target_load_factor=0.65)


@pytest.fixture
def cores(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[EngineCore]]:
    """The engine cores the next closed-loop run builds (one per partition)."""
    built: list[EngineCore] = []
    make = closed_loop.engine_core

    def recording(*args: Any, **kwargs: Any) -> EngineCore:
        built.append(make(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(closed_loop, "engine_core", recording)
    yield built


def _run(**engine: str) -> closed_loop.Ledger:
    overrides = tuple((f"ENGINE_{k.upper()}", v) for k, v in engine.items())
    return closed_loop.run(closed_loop.LoopConfig(WORLD, "revenue", engine_overrides=overrides))


def test_held_out_flights_are_never_discounted_but_teach_the_control_ratio(
        cores: list[EngineCore]) -> None:
    ledger = _run()
    policy = cores[0].policy
    assert isinstance(policy, RevenuePolicy)
    triggered = {e.flight_id for e in ledger.decisions if isinstance(e, PromotionTriggered)}
    held = {fid for fid in ledger.flights if policy.held_out(fid)}
    assert triggered and held, "the world is too small to show both groups"
    assert not triggered & held
    assert 0.02 < len(held) / len(ledger.flights) < 0.3  # about ENGINE_HOLDOUT_SHARE = 0.1
    control = [core.market.response.stats.control for core in cores]
    assert any(control), "held-out flights left no control evidence"
    assert all(row.expected > 0 for table in control for rows in table.values() for row in rows)


def test_everything_held_out_means_no_promotion_at_all() -> None:
    assert not [e for e in _run(holdout_share="0.9999").decisions
                if isinstance(e, PromotionTriggered)]


def test_hysteresis_keeps_promotions_steady() -> None:
    def triggers(ledger: closed_loop.Ledger) -> int:
        return sum(isinstance(e, PromotionTriggered) for e in ledger.decisions)

    steady = triggers(_run())
    restless = triggers(_run(change_gain="0"))
    assert 0 < steady < restless
