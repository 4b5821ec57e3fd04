"""Settings of ``airline-producer``: every knob of the simulation and of its Kafka shell.

Defaults and where they come from are listed in ``docs/producer.md``; the published figures are
in ``../shared/domain.md``. Nothing here reads the wall clock: ``start_date`` is a fixed date so
the same seed and settings always give the same stream.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any, Literal

from airline_core.config import (
    KafkaSettings,
    LogSettings,
    group,
    metrics_port,
    non_negative,
    positive,
    setting,
)
from airline_core.ids import derive_id


def _speed(value: str) -> str | None:
    if value == "max":
        return None
    try:
        factor = float(value)
    except ValueError:
        return "must be 'max' or a positive factor of real time (e.g. 3600)"
    return None if factor > 0 else "must be 'max' or a positive factor of real time"


def _iso_date(value: str) -> str | None:
    try:
        date.fromisoformat(value)
    except ValueError:
        return "must be a date YYYY-MM-DD"
    return None


def _rate(value: float) -> str | None:
    return None if 0.0 <= value <= 1.0 else "must be between 0 and 1"


def _load_factor(value: float) -> str | None:
    return None if 0.0 < value <= 1.5 else "must be in (0, 1.5]"


#: 24 routes x 3 departures a day x 3 days: "a few dozen routes from a hub, several a day".
DEFAULT_FLIGHTS = 216
DEFAULT_DAYS = 3


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything ``airline-producer`` reads; env var, flag, default and meaning of each."""

    kafka: KafkaSettings = group(KafkaSettings)
    log: LogSettings = group(LogSettings)
    metrics_port: int = metrics_port(8001)

    # ---------------------------------------------------------------- schedule
    seed: int = setting("PRODUCER_SEED", 42, "seed of every random draw and every id; same seed "
                        "and settings give the same stream", check=non_negative)
    flights: int = setting(
        "PRODUCER_FLIGHTS", DEFAULT_FLIGHTS,
        "number of flights in the schedule, spread evenly over --days (3 departures a day per "
        "route, as many hub routes as needed, up to 30)", check=positive)
    days: int = setting("PRODUCER_DAYS", DEFAULT_DAYS,
                        "number of departure days in the schedule", check=positive)
    start_date: str = setting(
        "PRODUCER_START_DATE", "2025-11-28",
        "first departure date (YYYY-MM-DD; a fixed date, never today, so runs are reproducible)",
        check=_iso_date)
    booking_horizon_days: int = setting(
        "PRODUCER_BOOKING_HORIZON_DAYS", 90,
        "days before departure a flight opens for sale (FlightScheduled); the published curves "
        "start at 63 days out, so 90 puts the whole curve inside the run", check=positive)

    # ---------------------------------------------------------------- demand
    target_load_factor: float = setting(
        "PRODUCER_TARGET_LOAD_FACTOR", 0.83,
        "mean final load factor the demand is sized for without promotions (IATA 2019 82.6%, "
        "2024 83.5%)", check=_load_factor)
    demand_cv: float = setting(
        "PRODUCER_DEMAND_CV", 0.12,
        "k-factor: coefficient of variation of a flight's total demand (PODS/PassengerSim use "
        "about 0.1 to 0.15)", check=non_negative)
    elasticity_business: float = setting(
        "PRODUCER_ELASTICITY_BUSINESS", -0.7,
        "price elasticity of business demand (IATA/InterVISTAS short-haul business -0.7)")
    elasticity_leisure: float = setting(
        "PRODUCER_ELASTICITY_LEISURE", -1.5,
        "price elasticity of leisure demand (IATA/InterVISTAS short-haul leisure -1.5)")
    booking_cancellation_rate: float = setting(
        "PRODUCER_BOOKING_CANCELLATION_RATE", 0.06,
        "share of bookings later cancelled (their seats are freed and can be resold)",
        check=_rate)

    # ---------------------------------------------------------------- operations
    flight_delay_rate: float = setting(
        "PRODUCER_FLIGHT_DELAY_RATE", 0.2, "share of flights delayed (FlightDelayed)", check=_rate)
    flight_cancellation_rate: float = setting(
        "PRODUCER_FLIGHT_CANCELLATION_RATE", 0.01, "share of flights cancelled (FlightCancelled)",
        check=_rate)
    snapshot_interval_minutes: int = setting(
        "PRODUCER_SNAPSHOT_INTERVAL_MINUTES", 360,
        "simulated minutes between CabinInventorySnapshot events of each flight on sale",
        check=positive)
    tick_minutes: int = setting(
        "PRODUCER_TICK_MINUTES", 60,
        "simulated minutes per tick: the unit of pacing, of promotion look-ups and of Kafka "
        "transactions", check=positive)

    # ---------------------------------------------------------------- running
    speed: str = setting(
        "PRODUCER_SPEED", "max",
        "'max' (as fast as the broker takes it, then exit 0) or a factor of real time "
        "(3600 = one simulated hour per second)", check=_speed)
    promotions: Literal["off", "topic", "redis", "file"] = setting(
        "PRODUCER_PROMOTIONS", "off",
        "where live discounts come from: off (open loop), topic (promo_decisions), redis (the "
        "engine's live offers) or file (replay recorded decisions)")
    promotions_file: str = setting(
        "PRODUCER_PROMOTIONS_FILE", "",
        "JSONL file of PromotionTriggered/PromotionEnded events (for --promotions file)")
    promotion_delay_minutes: float = setting(
        "PRODUCER_PROMOTION_DELAY_MINUTES", 5.0,
        "simulated minutes between a decision's event time and the moment it affects demand",
        check=non_negative)
    redis_url: str = setting("REDIS_URL", "redis://localhost:6379/0",
                             "Redis URL of the engine's live offers (for --promotions redis)")
    transactional_id: str = setting(
        "PRODUCER_TRANSACTIONAL_ID", "",
        "Kafka transactional.id (empty: airline-producer-<seed>-<start date>); a restart must "
        "reuse it, and two runs writing at once need different ones")
    transaction_max_ticks: int = setting(
        "PRODUCER_TRANSACTION_MAX_TICKS", 24,
        "with --speed max, whole ticks grouped into one transaction at most (1: one per tick)",
        check=positive)
    exit_when_done: bool = setting(
        "PRODUCER_EXIT_WHEN_DONE", True,
        "exit 0 once every flight has departed (bounded runs); false keeps the process up, idle "
        "and ready, until SIGTERM (a Deployment in the cluster, which would otherwise restart "
        "a finished producer forever)")

    @property
    def first_departure_date(self) -> date:
        """``start_date`` as a date."""
        return date.fromisoformat(self.start_date)

    @property
    def effective_transactional_id(self) -> str:
        """The transactional id: given, else derived from the seed and start date.

        Stable across restarts of one run (a restart must fence its dead incarnation), and
        different for runs that are distinct simulations: a new seed or a new start date (the
        two knobs for "simulate again") gets its own id, so it never fences another run."""
        return self.transactional_id or f"airline-producer-{self.seed}-{self.start_date}"

    @property
    def run_id(self) -> str:
        """Identity of this simulation on the topics: the settings that decide which flights and
        ticks exist. A restart of the same run resumes after its own last tick; another run
        (new seed, dates or size) on the same topics starts from its first tick."""
        return derive_id("producer-run", self.seed, self.start_date, self.days, self.flights,
                         self.booking_horizon_days, self.tick_minutes)

    @property
    def speed_factor(self) -> float | None:
        """``None`` for ``max``, else the factor of real time."""
        return None if self.speed == "max" else float(self.speed)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (tests, benchmarks)."""
        return dataclasses.replace(self, **changes)
