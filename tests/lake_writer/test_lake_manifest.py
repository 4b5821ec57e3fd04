"""Manifest schema, resume offsets, orphan detection and the audit, on a real directory."""

import hashlib
import json
from pathlib import Path

from airline_core.lake import manifest as mf
from airline_core.lake.layout import RollId
from airline_lake_writer.rolls import LakeRecord, build_roll
from airline_lake_writer.store import LakeStore

SOURCE = {"bookings": "topic-id-b"}


def land(store: LakeStore, first: int, last: int, partition: int = 0,
         dates: tuple[str, ...] = ("2025-11-28",)) -> mf.Manifest:
    records = [LakeRecord(o, f'{{"o":{o}}}'.encode(), dates[o % len(dates)])
               for o in range(first, last + 1)]
    return store.land(build_roll("bookings", partition, store.generation, records, "records"))


def test_manifest_schema(tmp_path: Path) -> None:
    store = LakeStore(tmp_path, 0, "cluster-1", SOURCE)
    land(store, 0, 3, dates=("2025-11-28", "2025-11-29"))
    path = (tmp_path / "raw/_manifests/bookings"
            / "bookings+0+00000000000000000000+00000000000000000003.json")
    doc = json.loads(path.read_text())
    assert set(doc) == {"format_version", "topic", "partition", "first_offset", "last_offset",
                        "generation", "records", "invalid_records", "files", "diverted", "source",
                        "roll_reason"}
    assert (doc["topic"], doc["partition"], doc["first_offset"], doc["last_offset"],
            doc["records"]) == ("bookings", 0, 0, 3, 4)
    assert doc["source"] == {"cluster_id": "cluster-1", "topic_id": "topic-id-b", "generation": 0}
    first = doc["files"][0]
    assert first["path"] == ("raw/bookings/date=2025-11-28/"
                             "bookings+0+00000000000000000000+00000000000000000003.jsonl")
    data = (tmp_path / first["path"]).read_bytes()
    assert data == b'{"o":0}\n{"o":2}\n'
    assert (first["records"], first["bytes"], first["sha256"], first["date"],
            first["first_offset"], first["last_offset"], first["offset_runs"]) == (
        2, len(data), hashlib.sha256(data).hexdigest(), "2025-11-28", 0, 2, [[0, 0], [2, 2]])


def test_resume_at_last_plus_one_of_the_highest_manifest_per_partition(tmp_path: Path) -> None:
    store = LakeStore(tmp_path, 0, "c", SOURCE)
    assert store.resume("bookings", [0, 1]) == {0: None, 1: None}
    land(store, 0, 9)
    land(store, 12, 20)  # a gap: transaction markers
    land(store, 0, 4, partition=1)
    assert store.resume("bookings", [0, 1, 2]) == {0: 21, 1: 5, 2: None}


def test_orphans_of_a_roll_without_manifest_are_deleted_on_resume(tmp_path: Path) -> None:
    store = LakeStore(tmp_path, 0, "c", SOURCE)
    kept = land(store, 0, 9, dates=("2025-11-28", "2025-11-29"))
    orphan = land(store, 10, 19, dates=("2025-11-28", "2025-11-30"))
    other = land(store, 10, 19, partition=1)
    (tmp_path / mf.manifest_relpath_of(orphan)).unlink()  # the crash came before the manifest
    tmp = tmp_path / "raw/bookings/date=2025-11-28/.bookings+0+00000000000000000020+x.jsonl.1.tmp"
    tmp.write_bytes(b"half")
    assert store.resume("bookings", [0]) == {0: 10}
    for entry in orphan.files:
        assert not (tmp_path / entry.path).exists()
    assert not tmp.exists()
    for entry in (*kept.files, *other.files):
        assert (tmp_path / entry.path).exists()
    assert mf.audit(tmp_path, ["bookings"]).ok


def test_orphan_rule() -> None:
    file_id = RollId("bookings", 0, 10, 19)
    assert mf.is_orphan(file_id, 0, 0, None)
    assert mf.is_orphan(file_id, 0, 0, 10)
    assert not mf.is_orphan(file_id, 0, 0, 20)
    assert not mf.is_orphan(file_id, 1, 0, None)
    assert not mf.is_orphan(file_id, 0, 1, None)  # another generation's history is kept


def test_generations_resume_independently(tmp_path: Path) -> None:
    land(LakeStore(tmp_path, 0, "old", SOURCE), 0, 99)
    new = LakeStore(tmp_path, 1, "new", SOURCE)
    assert new.resume("bookings", [0]) == {0: None}  # nothing deleted: history stays
    manifest = land(new, 0, 9)
    assert manifest.files[0].path.endswith("+00000000000000000009+g1.jsonl")
    assert new.resume("bookings", [0]) == {0: 10}
    assert LakeStore(tmp_path, 0, "old", SOURCE).resume("bookings", [0]) == {0: 100}
    assert mf.audit(tmp_path, ["bookings"]).ok


def test_overlaps_and_audit_find_broken_lakes(tmp_path: Path) -> None:
    ids = [RollId("bookings", 0, 0, 9), RollId("bookings", 0, 5, 12), RollId("bookings", 1, 5, 12),
           RollId("bookings", 0, 5, 12, 1)]
    assert mf.overlaps(ids) == [(ids[0], ids[1])]
    store = LakeStore(tmp_path, 0, "c", SOURCE)
    manifest = land(store, 0, 9)
    (tmp_path / manifest.files[0].path).write_bytes(b"tampered\n")
    land(store, 10, 19)
    (tmp_path / mf.manifest_relpath_of(land(store, 20, 29))).unlink()
    problems = mf.audit(tmp_path, ["bookings"]).problems
    assert len(problems) == 2
    assert "does not match" in problems[0] and "has no manifest" in problems[1]


def test_landing_the_same_roll_twice_is_idempotent(tmp_path: Path) -> None:
    store = LakeStore(tmp_path, 0, "c", SOURCE)
    first = land(store, 0, 9)
    assert land(store, 0, 9) == first
    assert mf.audit(tmp_path, ["bookings"]).records == 10
