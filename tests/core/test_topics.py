"""The topic registry is the single source and keeps the user's names."""

from airline_core.topics import (
    ENGINE_INPUTS,
    LAKE_TOPICS,
    REGISTRY,
    Topic,
    logical_topic,
    physical_name,
    spec,
)


def test_user_topic_names_are_kept() -> None:
    names = {s.name for s in REGISTRY}
    assert {"flight_lifecycle", "bookings", "seat_inventory", "seat_map", "inventory_metrics",
            "promo_decisions", "dead_letter"} <= names


def test_engine_inputs_and_state_are_co_partitioned() -> None:
    assert all(spec(t).co_partitioned for t in ENGINE_INPUTS)
    assert not spec(Topic.DEAD_LETTER).co_partitioned
    assert spec(Topic.ENGINE_STATE_CHANGELOG).co_partitioned


def test_state_changelog_is_compacted_and_event_topics_are_not() -> None:
    assert spec(Topic.ENGINE_STATE_CHANGELOG).configs["cleanup.policy"] == "compact"
    assert all(spec(t).configs["cleanup.policy"] == "delete" for t in LAKE_TOPICS)


def test_prefix_round_trip() -> None:
    assert physical_name(Topic.BOOKINGS, "t1-") == "t1-bookings"
    assert logical_topic("t1-bookings", "t1-") is Topic.BOOKINGS
