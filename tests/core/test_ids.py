"""Derived ids are stable across runs and distinct across inputs."""

import uuid

import pytest
from airline_core.ids import AIRLINE_NAMESPACE, derive_id, derived_event_id


def test_same_parts_same_id_and_valid_uuid() -> None:
    first = derive_id("seed", 42, "booking", "BA210_2025-11-28", 1)
    assert first == derive_id("seed", 42, "booking", "BA210_2025-11-28", 1)
    assert uuid.UUID(first).version == 5


def test_different_parts_different_ids() -> None:
    ids = {derive_id("seed", 42, "booking", n) for n in range(1000)}
    assert len(ids) == 1000
    assert derived_event_id("e-1", "metrics") != derived_event_id("e-1", "promotion")


def test_no_parts_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one part"):
        derive_id()


@pytest.mark.parametrize("name", ["x", "seed/42/booking/1", "é/ünïcode/✈", "a" * 500, ""])
def test_ids_are_the_standard_uuid5_of_the_joined_parts(name: str) -> None:
    """Ids already in the lake and the warehouse are uuid5s: a faster derivation must give
    exactly the same text."""
    parts = name.split("/")
    assert derive_id(*parts) == str(uuid.uuid5(AIRLINE_NAMESPACE, "/".join(parts)))
