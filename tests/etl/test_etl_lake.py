"""The lake reader (no server): which entries exist, and their lines exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from airline_core import events as ev
from airline_etl import lake
from airline_etl.errors import LakeError
from airline_testkit.events import make_world
from airline_testkit.lake import write_legacy, write_roll


def test_lines_keep_their_numbers_and_odd_bytes() -> None:
    """Every line is kept, blank ones too, each with the contract's verdict on its bytes."""
    data = (b'{"a":1}\n{"b":"x\ry"}\n{"a":1}\x1fjunk\n\xff{}\n\n{"c":2}\r\n{"d":3}')
    rows = lake._lines_of(data, "f.jsonl", False, "bookings").select(
        "line", "line_number", "reason_code").rows()
    assert rows == [('{"a":1}', 1, "wrong_topic"), ('{"b":"x\ry"}', 2, "multiline"),
                    ('{"a":1}\x1fjunk', 3, "wrong_topic"), ("\ufffd{}", 4, "not_utf8"),
                    ("", 5, "empty_value"), ('{"c":2}\r', 6, "multiline"),
                    ('{"d":3}', 7, "wrong_topic")]
    fast = lake._lines_of(b'{"a":1}\n\n{"c":2}\r\n', "f.jsonl", True, "bookings")
    assert fast.select("line", "line_number", "legacy").rows() == [
        ('{"a":1}', 1, True), ("", 2, True), ('{"c":2}', 3, True)]


def test_an_accepted_line_is_exactly_its_bytes() -> None:
    value = ev.encode(make_world(flights=1).by_topic["bookings"][0])
    frame = lake._lines_of(value + b"\n" + b"bad\x00\n", "f.jsonl", False, "bookings")
    assert frame["line"].to_list() == [value.decode(), "bad\ufffd"]
    assert frame["reason_code"].to_list() == [None, "not_json"]


def test_discover_reads_manifests_and_old_day_files_only(tmp_path: Path) -> None:
    lines = [ev.encode(e) for e in make_world(flights=1).by_topic["bookings"]]
    write_roll(tmp_path, "bookings", 0, 0, lines)
    write_roll(tmp_path, "bookings", 0, 100, lines, manifest=False)  # incomplete roll
    (tmp_path / "raw/_manifests/bookings/.bookings+0+x.json.tmp").write_text("{}")
    write_legacy(tmp_path, "bookings", "2025-11-20", [{"event_type": "BookingCreated"}])
    (tmp_path / "raw/bookings/notes.jsonl").write_text("{}\n")  # neither layout
    entries = lake.discover(tmp_path)
    assert [(e.kind, e.key) for e in entries] == [
        ("manifest", "raw/_manifests/bookings/bookings+0+00000000000000000000+"
                     f"{len(lines) - 1:020d}.json"),
        ("legacy", "raw/bookings/2025-11-20.jsonl")]
    manifest = entries[0]
    assert sum(f.records or 0 for f in manifest.files) == len(lines) == manifest.records
    assert lake.read_entry(tmp_path, manifest).height == len(lines)
    assert lake.new_entries(entries, {(manifest.key, manifest.sha256)}) == [entries[1]]


def test_a_manifest_pointing_outside_the_lake_is_refused(tmp_path: Path) -> None:
    lines = [ev.encode(e) for e in make_world(flights=1).by_topic["bookings"]][:1]
    path = write_roll(tmp_path, "bookings", 0, 1, lines)
    body = json.loads(path.read_text())
    body["files"][0]["path"] = "../../etc/passwd"
    path.write_text(json.dumps(body))
    with pytest.raises(LakeError, match="outside the lake"):
        lake.discover(tmp_path)
    path.write_text("{not json")
    with pytest.raises(LakeError, match="does not parse"):
        lake.discover(tmp_path)


def _entry(key: str, mtime_ns: int, records: int | None, size: int = 0) -> lake.LakeEntry:
    return lake.LakeEntry(key=key, sha256="0" * 64, topic="bookings",
                          kind="manifest" if records is not None else "legacy", files=(),
                          records=records, mtime_ns=mtime_ns, size=size)


def test_a_run_takes_the_oldest_entries_within_its_caps() -> None:
    """Oldest first, up to the entry and record caps; the oldest entry is always taken, even
    alone over the record cap (else a big roll would never load); discovery order kept. An
    old day file, which does not say its lines, weighs its bytes / LEGACY_BYTES_PER_RECORD."""
    a, b, c = _entry("a", 3, 40), _entry("b", 1, 40), _entry("c", 2, 40)
    entries = [a, b, c]
    assert lake.oldest_first(entries, 0) == entries
    assert lake.oldest_first(entries, 2) == [b, c]
    assert lake.oldest_first(entries, 0, 80) == [b, c]
    assert lake.oldest_first(entries, 0, 79) == [b]
    assert lake.oldest_first(entries, 0, 10) == [b]  # over the cap alone: still taken
    assert lake.oldest_first(entries, 1, 1000) == [b]
    assert lake.oldest_first([c, b, a], 0, 80) == [c, b]
    old = _entry("old", 0, None, size=lake.LEGACY_BYTES_PER_RECORD * 50)
    assert lake.records_of(old) == 50
    assert lake.oldest_first([a, old, b], 0, 89) == [old]
    assert lake.oldest_first([a, old, b], 0, 90) == [old, b]
