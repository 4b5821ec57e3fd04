"""What each component may do on Kafka: one identity per component, with only the grants its
code needs (least privilege). The local secure broker applies exactly these
(``airline_devstack.kafka_security``), and the Strimzi ``KafkaUser`` of each component in the
chart is checked against them, so the two cannot drift.

Groups and transactional ids are granted by prefix, the component's name: the engine's
transactional id is ``<KAFKA_GROUP_ID>-<instance>``, the producer's ``airline-producer-<seed>-
<date>`` and its promotion and recovery groups start with it too. A deployment that renames
them must keep the prefix (or grant its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from airline_core.topics import ENGINE_INPUTS, LAKE_TOPICS, Topic, physical_name

Kind = Literal["topic", "group", "transactionalId"]
Operation = Literal["Read", "Write", "Describe"]

PRODUCER, ENGINE, LAKE_WRITER = "airline-producer", "airline-engine", "airline-lake-writer"
COMPONENTS: Final = (PRODUCER, ENGINE, LAKE_WRITER)

_READ: Final[tuple[Operation, ...]] = ("Read", "Describe")
_WRITE: Final[tuple[Operation, ...]] = ("Write", "Describe")
_READ_WRITE: Final[tuple[Operation, ...]] = ("Read", "Write", "Describe")


@dataclass(frozen=True)
class Grant:
    """Operations allowed on one resource (a literal name, or every name with a prefix)."""

    kind: Kind
    name: str
    operations: tuple[Operation, ...]
    prefixed: bool = False


def _topics(topics: tuple[Topic, ...], operations: tuple[Operation, ...], prefix: str
            ) -> list[Grant]:
    return [Grant("topic", physical_name(t, prefix), operations) for t in topics]


def grants(component: str, topic_prefix: str = "") -> tuple[Grant, ...]:
    """Every grant of ``component`` for topics named with ``topic_prefix``."""
    if component == PRODUCER:
        # Writes the four event topics; reads them back to recover after a crash, and reads
        # the engine's decisions (the closed loop).
        found = [*_topics(ENGINE_INPUTS, _READ_WRITE, topic_prefix),
                 *_topics((Topic.PROMO_DECISIONS,), _READ, topic_prefix),
                 Grant("group", PRODUCER, ("Read",), prefixed=True),
                 Grant("transactionalId", PRODUCER, _WRITE, prefixed=True)]
    elif component == ENGINE:
        found = [*_topics(ENGINE_INPUTS, _READ, topic_prefix),
                 *_topics((Topic.INVENTORY_METRICS, Topic.PROMO_DECISIONS, Topic.DEAD_LETTER),
                          _WRITE, topic_prefix),
                 *_topics((Topic.ENGINE_STATE_CHANGELOG,), _READ_WRITE, topic_prefix),
                 Grant("group", ENGINE, ("Read",), prefixed=True),
                 Grant("transactionalId", ENGINE, _WRITE, prefixed=True)]
    elif component == LAKE_WRITER:
        # Reads every lake topic; writes a record it cannot store to the dead letters.
        others = tuple(t for t in LAKE_TOPICS if t != Topic.DEAD_LETTER)
        found = [*_topics(others, _READ, topic_prefix),
                 *_topics((Topic.DEAD_LETTER,), _READ_WRITE, topic_prefix),
                 Grant("group", LAKE_WRITER, ("Read",), prefixed=True)]
    else:
        raise KeyError(f"no Kafka grants for {component!r} (known: {', '.join(COMPONENTS)})")
    return tuple(found)
