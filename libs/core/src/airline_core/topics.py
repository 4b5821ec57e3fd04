"""The topic registry: the single source of topic names, partition counts and configs.

It drives ``airline-topics create`` locally and the Helm chart's ``KafkaTopic`` resources
(``airline-topics export-values`` writes the chart's ``topics`` values; a test keeps them equal).

Every event topic is keyed by ``flight_id`` and co-partitioned: partition *p* of every input of
the engine holds the same flights, and the engine's state changelog partition *p* holds their
state. So all co-partitioned topics must have the same partition count.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

#: Partitions of every topic (one count for all: co-partitioned topics must share it, and one
#: number keeps scaling simple); ``airline-topics --partitions`` and the chart's
#: ``topics.partitions`` override it for a whole deployment.
DEFAULT_PARTITIONS: Final = 3
DAY_MS: Final = 24 * 60 * 60 * 1000
#: librdkafka's partitioner for keyed records, set explicitly on every producer
#: (:func:`airline_core.kafka.make_producer`) so :func:`partition_of` is where keys land.
PARTITIONER: Final = "consistent_random"


def partition_of(key: bytes, partitions: int) -> int:
    """The partition :data:`PARTITIONER` gives a non-empty ``key``: CRC-32 of the key modulo
    the partition count (librdkafka's ``rd_crc32``, which is zlib's). In-process runs use it to
    split flights as the engine's partitions do."""
    return zlib.crc32(key) % partitions


class Topic(StrEnum):
    """Logical topic names (the user's names, plus dead letters and the engine's changelog)."""

    FLIGHT_LIFECYCLE = "flight_lifecycle"
    BOOKINGS = "bookings"
    SEAT_INVENTORY = "seat_inventory"
    SEAT_MAP = "seat_map"
    INVENTORY_METRICS = "inventory_metrics"
    PROMO_DECISIONS = "promo_decisions"
    DEAD_LETTER = "dead_letter"
    ENGINE_STATE_CHANGELOG = "engine_state_changelog"


@dataclass(frozen=True)
class TopicSpec:
    """How one topic is created."""

    topic: Topic
    description: str
    configs: Mapping[str, str] = field(default_factory=dict)
    #: Keyed by flight and read together with the other co-partitioned topics (by the engine),
    #: so it must have their partition count; dead letters are keyed by source record only.
    co_partitioned: bool = True

    @property
    def name(self) -> str:
        """The logical name (without any deployment prefix)."""
        return str(self.topic)


_EVENTS: Final = {"cleanup.policy": "delete", "retention.ms": str(14 * DAY_MS)}

REGISTRY: Final[tuple[TopicSpec, ...]] = (
    TopicSpec(Topic.FLIGHT_LIFECYCLE, "Flights opening for sale, check-in, boarding, delays, "
              "departures, cancellations (producer).", _EVENTS),
    TopicSpec(Topic.BOOKINGS, "Bookings created and cancelled (producer).", _EVENTS),
    TopicSpec(Topic.SEAT_INVENTORY, "Periodic per-cabin availability snapshots (producer).",
              _EVENTS),
    TopicSpec(Topic.SEAT_MAP, "Seats assigned and released (producer).", _EVENTS),
    TopicSpec(Topic.INVENTORY_METRICS, "Per-flight load, pace and forecast (engine).", _EVENTS),
    TopicSpec(Topic.PROMO_DECISIONS, "Promotions triggered and ended (engine).", _EVENTS),
    TopicSpec(Topic.DEAD_LETTER, "Records a component rejected, whole, with the reason.",
              {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)},
              co_partitioned=False),
    TopicSpec(Topic.ENGINE_STATE_CHANGELOG, "The engine's per-flight state, one record per flight "
              "(compacted); partition p holds the state of input partition p.",
              {"cleanup.policy": "compact", "min.compaction.lag.ms": "0",
               "min.cleanable.dirty.ratio": "0.1", "segment.ms": str(60 * 60 * 1000)}),
)

#: Topics the producer writes and the engine reads, in the engine's merge rank (a lower rank wins
#: a tie on event time, so a flight is scheduled before its bookings at the same instant).
ENGINE_INPUTS: Final = (Topic.FLIGHT_LIFECYCLE, Topic.BOOKINGS, Topic.SEAT_MAP,
                        Topic.SEAT_INVENTORY)
#: Topics the lake stores (every record of every event topic and the dead letters).
LAKE_TOPICS: Final = (Topic.FLIGHT_LIFECYCLE, Topic.BOOKINGS, Topic.SEAT_INVENTORY,
                      Topic.SEAT_MAP, Topic.INVENTORY_METRICS, Topic.PROMO_DECISIONS,
                      Topic.DEAD_LETTER)


def spec(topic: Topic) -> TopicSpec:
    """The registry entry of ``topic``."""
    for entry in REGISTRY:
        if entry.topic == topic:
            return entry
    raise KeyError(topic)


def physical_name(topic: Topic | str, prefix: str = "") -> str:
    """The name on the broker: ``prefix`` + logical name (a prefix isolates tests or tenants)."""
    return f"{prefix}{topic}"


def logical_topic(name: str, prefix: str = "") -> Topic:
    """Inverse of :func:`physical_name`."""
    if prefix and not name.startswith(prefix):
        raise ValueError(f"topic {name!r} does not start with prefix {prefix!r}")
    return Topic(name[len(prefix):])
