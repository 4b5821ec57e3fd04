"""Names of data files and manifests, and parsing them back."""

from pathlib import PurePosixPath

import pytest
from airline_core.lake.layout import RollId, data_relpath, manifest_relpath, parse_name


def test_offsets_are_zero_padded_to_20_digits_so_names_sort_by_offset() -> None:
    roll = RollId("bookings", 2, 5, 1234)
    assert roll.data_name == "bookings+2+00000000000000000005+00000000000000001234.jsonl"
    assert roll.manifest_name == "bookings+2+00000000000000000005+00000000000000001234.json"
    names = [RollId("bookings", 0, f, f + 9).data_name for f in (100, 20, 3)]
    assert sorted(names) == [RollId("bookings", 0, f, f + 9).data_name for f in (3, 20, 100)]


def test_paths_follow_the_layout() -> None:
    roll = RollId("seat_map", 0, 0, 9)
    assert data_relpath(roll, "2025-11-28") == PurePosixPath(
        "raw/seat_map/date=2025-11-28/seat_map+0+00000000000000000000+00000000000000000009.jsonl")
    assert manifest_relpath(roll) == PurePosixPath(
        "raw/_manifests/seat_map/seat_map+0+00000000000000000000+00000000000000000009.json")


def test_generation_tag_only_after_a_new_source() -> None:
    assert "+g" not in RollId("bookings", 0, 0, 9, 0).stem
    assert RollId("bookings", 0, 0, 9, 3).data_name.endswith("+00000000000000000009+g3.jsonl")


@pytest.mark.parametrize("roll", [RollId("bookings", 0, 0, 0), RollId("dead_letter", 2, 7, 99, 2),
                                  RollId("flight_lifecycle", 11, 10**12, 10**12 + 5, 1)])
def test_parse_inverts_naming(roll: RollId) -> None:
    assert parse_name(roll.data_name) == (roll, ".jsonl")
    assert parse_name(roll.manifest_name) == (roll, ".json")


@pytest.mark.parametrize("name", ["2025-11-28.jsonl", "bookings+0+1+2.jsonl",
                                  ".bookings+0+00000000000000000000+00000000000000000009.jsonl.1.tmp",
                                  "bookings+0+00000000000000000000+00000000000000000009+g0.jsonl",
                                  "bookings+0+00000000000000000000+00000000000000000009.parquet"])
def test_other_names_are_not_lake_files(name: str) -> None:
    assert parse_name(name) is None


def test_invalid_ranges_are_rejected() -> None:
    with pytest.raises(ValueError):
        RollId("bookings", 0, 10, 9)
