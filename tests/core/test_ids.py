"""Derived ids are stable across runs and distinct across inputs."""

import uuid

import pytest
from airline_core.ids import derive_id, derived_event_id


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
