"""The engine's settings: environment variables with defaults documented in ``--help``."""

from __future__ import annotations

import dataclasses
import os
from typing import Literal

from airline_core.config import (
    ConsumerSettings,
    KafkaSettings,
    LogSettings,
    group,
    metrics_port,
    non_negative,
    positive,
    setting,
    stop_when_idle,
)


def _fraction(value: float) -> str | None:
    return None if 0.0 <= value < 1.0 else "must be in [0, 1)"


def _load_factor(value: float) -> str | None:
    return None if 0.0 < value <= 1.0 else "must be in (0, 1]"


def _elasticity(value: float) -> str | None:
    return None if -3.0 <= value <= 0.0 else "must be an elasticity in [-3, 0]"


def _tiers(value: str) -> str | None:
    try:
        tiers = [int(part) for part in value.split(",")]
    except ValueError:
        return "must be comma-separated whole percentages, e.g. 5,10,15,25"
    if not tiers or any(not 0 < t <= 100 for t in tiers) or tiers != sorted(set(tiers)):
        return "must be increasing percentages between 1 and 100"
    return None


def _curve(value: str) -> str | None:
    from airline_engine.curve import BookingCurve  # local: settings must import cheaply

    try:
        BookingCurve.parse(value)
    except ValueError as e:
        return str(e)
    return None


def default_instance_id() -> str:
    """``HOSTNAME`` (a StatefulSet pod name such as ``airline-engine-0``), else ``engine-0``."""
    return os.environ.get("HOSTNAME") or "engine-0"


#: The mixed booking curve of ``../shared/domain.md`` (logosorthos aviation articles): share of
#: final demand booked by days before departure; a curve starts at 0 some 120 days out.
DEFAULT_CURVE = "120:0,60:0.10,30:0.45,7:0.80,1:0.95,0:1"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything ``airline-engine`` reads at start."""

    kafka: KafkaSettings = group(KafkaSettings)
    consumer: ConsumerSettings = group(ConsumerSettings)
    log: LogSettings = group(LogSettings)
    metrics_port: int = metrics_port(8002)
    group_id: str = setting("KAFKA_GROUP_ID", "airline-engine", "consumer group of the engine")
    commit_interval_ms: int = setting(
        "ENGINE_COMMIT_INTERVAL_MS", 100,
        "how often the Kafka transaction (outputs + state changelog + input offsets) commits; "
        "an output is readable (read_committed) only after it, so this bounds latency (make "
        "bench at 5k events/s: p99 about 0.2 s at 100, 1.1 s at 1000; the same throughput)",
        check=positive)
    policy: Literal["revenue", "pace", "iteration2"] = setting(
        "ENGINE_POLICY", "revenue",
        "promotion policy: revenue (the discount that maximises expected revenue to departure, "
        "from a demand forecast and a learned price response), pace (behind the booking "
        "curve, tiers, cooldown) or iteration2 (the user's rule: one 10% promotion 2-7 days "
        "out with < 5 bookings in the last hour)")
    redis_url: str = setting(
        "REDIS_URL", "", "Redis for live offers (airline:offer:<flight_id>); empty: off",
        flag="--redis-url")
    stop_when_idle: float = stop_when_idle()
    target_load_factor: float = setting(
        "ENGINE_TARGET_LOAD_FACTOR", 0.835,
        "final load factor the booking curve aims at (IATA 2024 global record 83.5%)",
        check=_load_factor)
    booking_curve: str = setting(
        "ENGINE_BOOKING_CURVE", DEFAULT_CURVE,
        "expected share of final bookings by days out, 'days:share,...' (linear between points)",
        check=_curve)
    margin: float = setting(
        "ENGINE_MARGIN", 0.15,
        "a flight is behind when bookings < (1 - margin) x expected bookings to date",
        check=_fraction)
    recovery_margin: float = setting(
        "ENGINE_RECOVERY_MARGIN", 0.05,
        "a promotion ends when bookings >= (1 - recovery margin) x expected to date",
        check=_fraction)
    min_expected_seats: float = setting(
        "ENGINE_MIN_EXPECTED_SEATS", 5.0,
        "pace is judged only once the curve expects at least this many seats",
        check=non_negative)
    window_start_minutes: int = setting(
        "ENGINE_WINDOW_START_MINUTES", 14 * 24 * 60,
        "decision window opens this many minutes before departure", check=positive)
    window_end_minutes: int = setting(
        "ENGINE_WINDOW_END_MINUTES", 120,
        "decision window closes this many minutes before departure", check=non_negative)
    tiers: str = setting(
        "ENGINE_TIERS", "5,10,15,25", "discount tiers in percent, escalated one at a time",
        check=_tiers)
    cooldown_minutes: int = setting(
        "ENGINE_COOLDOWN_MINUTES", 360,
        "minimum simulated minutes between promotion changes on one flight (start, escalate, "
        "recovery end)", check=non_negative)
    discounts: str = setting(
        "ENGINE_DISCOUNTS", "5,10,15,25,35",
        "revenue policy: the discount levels it chooses from, in percent", check=_tiers)
    revenue_window_minutes: int = setting(
        "ENGINE_REVENUE_WINDOW_MINUTES", 42 * 24 * 60,
        "revenue policy: promotions start or change at most this many minutes before "
        "departure (until ENGINE_WINDOW_END_MINUTES)", check=positive)
    review_minutes: int = setting(
        "ENGINE_REVIEW_MINUTES", 3 * 24 * 60,
        "revenue policy: each flight is reviewed at most once per this many event-time minutes "
        "(a live promotion still ends at once when the flight fills, departs or is cancelled)",
        check=positive)
    min_gain: float = setting(
        "ENGINE_MIN_GAIN", 0.01,
        "revenue policy: a discount starts (or changes) only when it raises the expected "
        "revenue to departure by at least this share of the revenue expected without it",
        check=_fraction)
    change_gain: float = setting(
        "ENGINE_CHANGE_GAIN", 0.05,
        "revenue policy: a live promotion moves to another level, or ends before the flight "
        "fills, only when that raises the expected revenue by at least this share of the "
        "revenue expected without a discount (hysteresis: fewer, steadier promotions)",
        check=_fraction)
    holdout_share: float = setting(
        "ENGINE_HOLDOUT_SHARE", 0.1,
        "revenue policy: share of flights (a stable hash of the flight id) never discounted, "
        "the control group that keeps the learned price response unbiased",
        check=_fraction)
    response_prior: float = setting(
        "ENGINE_RESPONSE_PRIOR", -1.1,
        "prior price elasticity the learned response shrinks towards (midpoint of IATA's "
        "short-haul -0.7 business and -1.5 leisure)", check=_elasticity)
    response_prior_sd: float = setting(
        "ENGINE_RESPONSE_PRIOR_SD", 0.4,
        "standard deviation of that prior (how much evidence moves the estimate)",
        check=positive)
    metrics_interval_minutes: int = setting(
        "ENGINE_METRICS_INTERVAL_MINUTES", 15,
        "at most one inventory_metrics record per flight per this many simulated minutes "
        "(lifecycle and promotion changes always emit)", check=non_negative)
    unknown_flight_minutes: int = setting(
        "ENGINE_UNKNOWN_FLIGHT_MINUTES", 60,
        "events of a flight not yet scheduled wait this many event-time minutes for its "
        "FlightScheduled, then go to dead_letter", check=non_negative)
    closed_retention_minutes: int = setting(
        "ENGINE_CLOSED_RETENTION_MINUTES", 24 * 60,
        "departed or cancelled flights are dropped from state this many event-time minutes "
        "after their last event (later events of theirs go to dead_letter)", check=non_negative)
    max_lead_minutes: int = setting(
        "ENGINE_MAX_LEAD_MINUTES", 400 * 24 * 60,
        "a record dated more than this many minutes after the latest event time of its input "
        "partition goes to dead_letter (ahead_of_watermark) instead of holding back every "
        "record behind it (default: the longest sale horizon, 400 days)", check=positive)
    departure_grace_minutes: int = setting(
        "ENGINE_DEPARTURE_GRACE_MINUTES", 24 * 60,
        "bookings, seat changes and snapshots dated more than this many minutes after their "
        "flight's departure time go to dead_letter (flight_closed)", check=non_negative)
    idle_input_ms: int = setting(
        "ENGINE_IDLE_INPUT_MS", 100,
        "an input caught up with the broker for this long, with nothing more written to its "
        "partition, stops holding back the event-time merge of the others (the second part of "
        "the latency after the commit interval: make bench p99 0.22 s at 100, 0.5 s at 500)",
        check=non_negative)
    commit_max_records: int = setting(
        "ENGINE_COMMIT_MAX_RECORDS", 20000,
        "commit early once a transaction covers this many input records (bounds transaction "
        "size; 0: time only)", check=non_negative)
    redis_retry_seconds: float = setting(
        "ENGINE_REDIS_RETRY_SECONDS", 5.0,
        "while Redis is down, retry the resync this often", check=positive)

    def tier_list(self) -> tuple[int, ...]:
        """``ENGINE_TIERS`` as numbers."""
        return tuple(int(part) for part in self.tiers.split(","))

    def discount_list(self) -> tuple[int, ...]:
        """``ENGINE_DISCOUNTS`` as numbers."""
        return tuple(int(part) for part in self.discounts.split(","))

    @property
    def instance_id(self) -> str:
        """``KAFKA_GROUP_INSTANCE_ID``, else ``$HOSTNAME`` (a StatefulSet pod name such as
        ``airline-engine-0``), else ``engine-0``: the engine is always a static member, and
        its transactional id is ``<KAFKA_GROUP_ID>-<instance id>``."""
        return self.consumer.group_instance_id or default_instance_id()

    @property
    def transactional_id(self) -> str:
        """Stable per instance: a restarted pod fences its predecessor at once."""
        return f"{self.group_id}-{self.instance_id}"
