"""The engine's verdicts, without a server: every lake line has its Kafka position, dead-letter
lines carry verdicts, and a verdict rejects the line at its position only."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from airline_core import events as ev
from airline_core.contract import Reason
from airline_engine.core import COMPONENT
from airline_etl import lake, transform
from airline_etl.errors import LakeError
from airline_testkit.events import make_world
from airline_testkit.lake import write_legacy, write_roll
from etl_lake_fixtures import envelope, positions_of, write_envelopes


def _lines(lake_dir: Path, topic: str) -> pl.DataFrame:
    entries = [e for e in lake.discover(lake_dir) if e.topic == topic]
    return pl.concat([lake.read_entry(lake_dir, e) for e in entries])


def _bookings(n: int = 4) -> list[ev.Event]:
    return make_world(flights=1, bookings_per_flight=n).by_topic["bookings"][:n]


def test_the_engine_component_is_the_engines() -> None:
    assert transform.ENGINE_COMPONENT == COMPONENT


def test_each_line_has_the_kafka_position_its_manifest_gives(tmp_path: Path) -> None:
    """Offsets come from each file's ``offset_runs`` (gaps and several date files included),
    partition and generation from the manifest; old day files have none."""
    world = make_world(flights=1, bookings_per_flight=6)
    events = world.by_topic["bookings"]
    late = ev.BookingCancelled(**{**{f: getattr(events[2], f) for f in ("booking_id", "flight_id",
                                                                      "fare_bucket")},
                                  "event_id": "late", "passengers": [],
                                  "event_time": events[0].event_time + timedelta(days=3)})
    chosen = [events[0], late, events[1], events[2]]
    offsets = [5, 6, 9, 12]
    write_roll(tmp_path, "bookings", 2, 0, [ev.encode(e) for e in chosen], offsets=offsets,
               generation=3)
    write_legacy(tmp_path, "bookings", "2025-11-20", [{"event_type": "BookingCreated"}])
    frame = _lines(tmp_path, "bookings")
    positioned = frame.filter(~pl.col("legacy"))
    by_line = {line: pos for line, pos in zip(
        positioned["line"], positioned.select(lake.POSITION).rows(), strict=True)}
    assert by_line == {ev.encode(e).decode(): (3, 2, o)
                       for e, o in zip(chosen, offsets, strict=True)}
    assert len({f for f in positioned["source_file"]}) == 2  # two event dates, two files
    assert {line.decode(): [tuple(p)] for line, [p] in positions_of(tmp_path, "bookings").items()
            } == {k: [v] for k, v in by_line.items()}
    legacy = frame.filter(pl.col("legacy"))
    assert legacy.height == 1 and legacy.select(lake.POSITION).row(0) == (None, None, None)


def test_generation_and_positions_come_from_the_manifest(tmp_path: Path) -> None:
    """The manifest format is the lake writer's (airline_core.lake.manifest): a manifest that
    lacks its generation or a file's offset runs is not a manifest of this lake."""
    path = write_roll(tmp_path, "seat_map", 1, 40, [b'{"a":1}'], generation=2)
    assert path.name.endswith("+g2.json")
    [entry] = lake.discover(tmp_path)
    assert (entry.partition, entry.generation, entry.offset_range) == (1, 2, (40, 40))
    body = json.loads(path.read_text())
    for broken in ({**body, "generation": None},
                   {**body, "files": [{k: v for k, v in body["files"][0].items()
                                       if k != "offset_runs"}]}):
        path.write_text(json.dumps(broken))
        with pytest.raises(LakeError, match="does not parse"):
            lake.discover(tmp_path)


def test_offset_runs_that_do_not_match_the_lines_fail(tmp_path: Path) -> None:
    path = write_roll(tmp_path, "bookings", 0, 0, [ev.encode(e) for e in _bookings(2)])
    body = json.loads(path.read_text())
    body["files"][0]["offset_runs"] = [[0, 5]]
    path.write_text(json.dumps(body))
    [entry] = lake.discover(tmp_path)
    with pytest.raises(LakeError, match="offset_runs name 6 offsets for 2 lines"):
        lake.read_entry(tmp_path, entry)
    body["files"][0]["offset_runs"] = [[3, 1]]
    path.write_text(json.dumps(body))
    with pytest.raises(LakeError, match="does not parse"):
        lake.discover(tmp_path)


def test_dead_letter_lines_carry_the_engines_verdicts_with_their_rolls_generation(
        tmp_path: Path) -> None:
    booking = ev.encode(_bookings(1)[0])
    ours = envelope("bookings", 1, 7, booking, Reason.KEY_MISMATCH, detail="key K")
    writer = envelope("bookings", 1, 8, None, Reason.TOMBSTONE,
                      component="airline-lake-writer")  # about a diverted record, not a line
    output = envelope("inventory_metrics", 0, 3, booking, Reason.NOT_JSON)  # not an engine input
    write_envelopes(tmp_path, [ours, writer, output], generation=1, first=10)
    write_roll(tmp_path, "dead_letter", 0, 20, [b"{not an envelope"])
    write_legacy(tmp_path, "dead_letter", "2025-11-20", [json.loads(ev.encode(ours))])
    found = transform.engine_verdicts(_lines(tmp_path, "dead_letter"))
    assert found.to_dicts() == [{
        "generation": 1, "source_topic": "bookings", "source_partition": 1, "source_offset": 7,
        "reason_code": "key_mismatch", "reason": "key_mismatch: key K",
        "dead_letter_event_id": ours.event_id}]


def _judged(tmp_path: Path, letters: list[ev.DeadLetter], **roll: int) -> transform.TopicEvents:
    write_envelopes(tmp_path, letters, **roll)
    verdicts = transform.engine_verdicts(_lines(tmp_path, "dead_letter"))
    return transform.validate(_lines(tmp_path, "bookings"), "bookings", verdicts)


def test_a_verdict_rejects_the_line_at_its_position_not_its_copies(tmp_path: Path) -> None:
    """The same bytes at two positions (a replayed record): only the dead-lettered position
    is a reject; the event is loaded once, from the other."""
    events = _bookings(3)
    value = ev.encode(events[1])
    write_roll(tmp_path, "bookings", 0, 0, [ev.encode(e) for e in events])  # value at offset 1
    write_roll(tmp_path, "bookings", 0, 50, [value])  # the same bytes again at offset 50
    alone = transform.validate(_lines(tmp_path, "bookings"), "bookings")
    assert (alone.events.height, alone.duplicates, alone.rejects.height) == (3, 1, 0)

    result = _judged(tmp_path, [envelope("bookings", 0, 1, value, Reason.KEY_MISMATCH)])
    assert result.events.height == 3 and result.duplicates == 0
    [reject] = result.rejects.to_dicts()
    assert reject["reason_code"] == "key_mismatch" and reject["raw_line"] == value.decode()
    assert reject["source_file"].endswith("+00000000000000000000+00000000000000000002.jsonl")
    assert reject["line_number"] == 2
    assert result.positions.filter(pl.col("event_id") == events[1].event_id).select(
        "kafka_partition", "kafka_offset").rows() == [(0, 50)]
    assert sorted(result.positions["kafka_offset"].to_list()) == [0, 2, 50]


def test_a_verdict_matches_its_topic_partition_and_generation_only(tmp_path: Path) -> None:
    events = _bookings(2)
    write_roll(tmp_path, "bookings", 0, 0, [ev.encode(e) for e in events])
    letters = [envelope("bookings", 0, 0, None, Reason.MISSING_KEY)]
    assert _judged(tmp_path, letters, generation=1).rejects.height == 0  # another generation
    for path in (tmp_path / "raw").rglob("dead_letter+*.json*"):
        path.unlink()
    assert _judged(tmp_path, [envelope("bookings", 1, 0, None), envelope("seat_map", 0, 1, None)]
                   ).rejects.height == 0  # another partition, another topic
    result = _judged(tmp_path, letters, first=5)  # generation 0, like the bookings roll
    assert result.rejects["reason_code"].to_list() == ["missing_key"]
    assert result.events["event_id"].to_list() == [events[1].event_id]


def test_the_engines_code_and_reason_replace_the_contracts(tmp_path: Path) -> None:
    write_roll(tmp_path, "bookings", 0, 0, [b"{not json"])
    assert transform.validate(_lines(tmp_path, "bookings"), "bookings"
                              ).rejects["reason"][0].startswith("not_json: not one JSON")
    result = _judged(tmp_path, [envelope("bookings", 0, 0, b"{not json", Reason.NOT_JSON,
                                         detail="as the engine saw it")])
    assert result.rejects.select("reason_code", "reason").row(0) == (
        "not_json", "not_json: as the engine saw it")


def test_the_copy_that_stands_supplies_the_event_when_the_first_is_rejected() -> None:
    """Verdicts are applied before deduplication: a rejected first occurrence does not hide
    a later one, even with other content (a conflicting duplicate the engine refused)."""
    booking = _bookings(1)[0]
    assert isinstance(booking, ev.BookingCreated)
    other = ev.BookingCreated(**{**{f: getattr(booking, f) for f in booking.__struct_fields__},
                                 "channel": "APP"})
    lines = pl.DataFrame({"line": [ev.encode(other).decode(), ev.encode(booking).decode()],
                          "source_file": ["f.jsonl"] * 2, "line_number": [1, 2],
                          "legacy": [False] * 2, "kafka_generation": [0, 0],
                          "kafka_partition": [0, 0], "kafka_offset": [3, 4]})
    verdict = pl.DataFrame([{"generation": 0, "source_topic": "bookings",
                             "source_partition": 0, "source_offset": 3,
                             "reason_code": "conflicting_duplicate",
                             "reason": "conflicting_duplicate: x", "dead_letter_event_id": "d"}],
                           schema=transform.VERDICT_SCHEMA)
    assert transform.validate(lines, "bookings").events["channel"].to_list() == ["APP"]
    result = transform.validate(lines, "bookings", verdict)
    assert result.events["channel"].to_list() == ["WEB"]
    assert result.rejects["line_number"].to_list() == [1]


def test_lines_without_a_position_are_never_matched(tmp_path: Path) -> None:
    """Old day files have no positions: no verdict can name their lines."""
    booking = json.loads(ev.encode(_bookings(1)[0]))
    write_legacy(tmp_path, "bookings", "2025-11-21", [booking])
    result = _judged(tmp_path, [envelope("bookings", 0, 0, None), envelope("bookings", 0, 1, None)])
    assert result.rejects.height == 0 and result.events.height == 1
    assert result.positions.height == 0


def test_lines_read_again_count_only_through_their_verdicts_and_the_kept_events(
        tmp_path: Path) -> None:
    """A retraction reads entries loaded before again: their old rejects are not repeated,
    only the events ``keep`` selects become rows, and only verdict rejects are news."""
    events = _bookings(3)
    write_roll(tmp_path, "bookings", 0, 0, [ev.encode(e) for e in events] + [b"junk"])
    lines = _lines(tmp_path, "bookings").with_columns(pl.lit(True).alias(transform.RELOAD))
    write_envelopes(tmp_path, [envelope("bookings", 0, 0, ev.encode(events[0]))])
    verdicts = transform.engine_verdicts(_lines(tmp_path, "dead_letter"))
    keep = pl.col("event_id") == events[2].event_id
    result = transform.validate(lines, "bookings", verdicts, keep)
    assert (result.lines, result.reloaded, result.rejects.height) == (0, 4, 0)
    assert result.retracted["line_number"].to_list() == [1]
    assert result.events["event_id"].to_list() == [events[2].event_id]
    assert result.positions["kafka_offset"].to_list() == [2]
