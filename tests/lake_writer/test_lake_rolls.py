"""Roll cutting: deterministic by count and bytes, one file per event date, offsets kept."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from airline_core.contract import MAX_DEPTH, MAX_VALUE_BYTES, Reason
from airline_core.events import BookingCancelled, Passenger, encode
from airline_core.lake.manifest import expand_runs, offset_runs
from airline_lake_writer.rolls import (
    LakeRecord,
    PartitionBuffer,
    Roll,
    RollLimits,
    build_roll,
    classify,
    classify_all,
)
from hypothesis import given
from hypothesis import strategies as st

T0 = datetime(2025, 11, 28, 23, 59, tzinfo=UTC)


def event(i: int, when: datetime = T0) -> bytes:
    return encode(BookingCancelled(event_id=f"e{i}", event_time=when, flight_id="BA210_2025-11-30",
                                   booking_id=f"b{i}", fare_bucket="Y",
                                   passengers=[Passenger(passenger_id="p", seat_id="1A",
                                                         cabin_code="Y")]))


def feed(buffer: PartitionBuffer, records: list[LakeRecord]) -> list[Roll]:
    return [roll for r in records if (roll := buffer.append(r, 0.0)) is not None]


def test_classify_dates_by_event_time_in_utc() -> None:
    record = classify(7, event(1, T0 + timedelta(minutes=2)), kafka_timestamp_ms=0)
    assert (record.offset, record.date, record.valid) == (7, "2025-11-29", True)


def test_invalid_values_land_dated_by_kafka_timestamp() -> None:
    ms = int(datetime(2024, 2, 29, 12, tzinfo=UTC).timestamp() * 1000)
    for value in (b"not json", b'{"event_type": "Nope"}', b""):
        record = classify(1, value, ms)
        assert (record.date, record.valid, record.unstorable, record.value) == (
            "2024-02-29", False, None, value)


def test_null_and_multiline_values_cannot_be_lines() -> None:
    null, multiline = classify(1, None, 0).unstorable, classify(1, b'{"a":\n1}', 0).unstorable
    assert null is not None and null.code is Reason.TOMBSTONE
    assert multiline is not None and multiline.code is Reason.MULTILINE
    assert classify(1, None, -1).date == "1970-01-01"


def test_poison_values_land_raw_and_never_raise() -> None:
    """Nesting that would exhaust the decoder's recursion, invalid UTF-8, a huge value, a date
    the calendar cannot shift and a Kafka timestamp no date has: each lands as an invalid
    line, dated by a (clamped) Kafka timestamp."""
    deep = b'{"event_time":"2025-01-01T00:00:00Z","x":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    poison = [deep, b'{"event_id":"\xff\xfe"}', b'{"x":"' + b"y" * MAX_VALUE_BYTES + b'"}',
              b'{"event_id":"e","event_type":"T","flight_id":"f",'
              b'"event_time":"0001-01-01T00:00:00+05:00"}',
              b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)]
    for value in poison:
        record = classify(3, value, 2**62)
        assert (record.valid, record.unstorable, record.value) == (False, None, value)
        assert record.date == "2099-12-31"


def test_cut_by_record_count() -> None:
    buffer = PartitionBuffer("bookings", 1, 0, RollLimits(max_records=3, max_bytes=10**9))
    rolls = feed(buffer, [classify(o, event(o), 0) for o in range(8)])
    assert [(r.id.first, r.id.last, r.reason) for r in rolls] == [(0, 2, "records"),
                                                                  (3, 5, "records")]
    assert [r.offset for r in buffer.records] == [6, 7]
    tail = buffer.flush("idle")
    assert tail is not None and tail.id.last == 7
    assert buffer.flush("idle") is None


def test_cut_by_bytes_after_the_record_that_reaches_the_limit() -> None:
    value = b"x" * 99  # 100 bytes with the newline
    buffer = PartitionBuffer("bookings", 0, 0, RollLimits(max_records=1000, max_bytes=250))
    rolls = feed(buffer, [LakeRecord(o, value, "2025-01-01") for o in range(7)])
    assert [(r.id.first, r.id.last, r.reason, r.bytes) for r in rolls] == [
        (0, 2, "bytes", 300), (3, 5, "bytes", 300)]
    huge = PartitionBuffer("bookings", 0, 0, RollLimits(max_records=1000, max_bytes=10))
    assert feed(huge, [LakeRecord(0, value, "2025-01-01")])[0].records == 1


def test_offsets_with_gaps_from_transaction_markers_keep_first_and_last_record() -> None:
    buffer = PartitionBuffer("bookings", 0, 0, RollLimits(max_records=3, max_bytes=10**9))
    rolls = feed(buffer, [LakeRecord(o, b"{}", "2025-01-01") for o in (0, 1, 3, 5, 6, 8)])
    assert [(r.id.first, r.id.last) for r in rolls] == [(0, 3), (5, 8)]


def test_offsets_must_increase() -> None:
    buffer = PartitionBuffer("bookings", 0, 0, RollLimits(10, 10**9))
    buffer.append(LakeRecord(5, b"{}", "2025-01-01"), 0.0)
    with pytest.raises(ValueError):
        buffer.append(LakeRecord(5, b"{}", "2025-01-01"), 0.0)


def test_one_file_per_event_date_in_offset_order() -> None:
    dates = ["2025-11-29", "2025-11-28", "2025-11-29", "2025-11-30", "2025-11-28"]
    records = [LakeRecord(o, f'{{"o":{o}}}'.encode(), d) for o, d in enumerate(dates)]
    roll = build_roll("seat_map", 2, 0, records, "records")
    assert [(f.date, f.first_offset, f.last_offset, f.records) for f in roll.files] == [
        ("2025-11-28", 1, 4, 2), ("2025-11-29", 0, 2, 2), ("2025-11-30", 3, 3, 1)]
    assert roll.files[0].content() == b'{"o":1}\n{"o":4}\n'
    assert [f.offset_runs for f in roll.files] == [((1, 1), (4, 4)), ((0, 0), (2, 2)), ((3, 3),)]
    names = {f.relpath.name for f in roll.files}
    assert names == {"seat_map+2+00000000000000000000+00000000000000000004.jsonl"}
    assert str(roll.files[1].relpath).startswith("raw/seat_map/date=2025-11-29/")


def test_diverted_and_invalid_records_are_accounted() -> None:
    records = [classify(0, event(0), 0), classify(1, None, 0), classify(2, b"junk", 0)]
    roll = build_roll("bookings", 0, 0, records, "stop")
    assert (roll.id.first, roll.id.last, roll.records, roll.invalid_records) == (0, 2, 2, 1)
    assert [(d.offset, d.reason.split(":")[0]) for d in roll.diverted] == [(1, "tombstone")]


def test_idle_and_clear() -> None:
    buffer = PartitionBuffer("bookings", 0, 0, RollLimits(10, 10**9))
    assert not buffer.idle(100.0, 5.0)
    buffer.append(LakeRecord(0, b"{}", "2025-01-01"), 10.0)
    assert not buffer.idle(14.0, 5.0) and buffer.idle(15.0, 5.0)
    assert buffer.clear() == 1 and buffer.records == [] and buffer.bytes == 0


@given(sizes=st.lists(st.integers(0, 300), min_size=1, max_size=200),
       max_records=st.integers(1, 50), max_bytes=st.integers(1, 2000),
       split=st.integers(0, 200))
def test_cutting_is_deterministic_and_covers_every_offset_once(
        sizes: list[int], max_records: int, max_bytes: int, split: int) -> None:
    """Replaying from any roll boundary cuts the same rolls again (so a rewrite after a crash
    produces the same names), and the rolls partition the offsets exactly."""
    records = [LakeRecord(o, b"x" * n, "2025-01-01") for o, n in enumerate(sizes)]
    limits = RollLimits(max_records, max_bytes)
    rolls = feed(PartitionBuffer("t", 0, 0, limits), records)
    covered = [o for r in rolls for f in r.files for o in range(f.first_offset, f.last_offset + 1)]
    assert covered == list(range(len(covered)))
    for r in rolls:
        assert r.records <= max_records
        assert r.bytes - (len(records[r.id.last].value) + 1) < max_bytes
    if rolls:
        restart = rolls[min(split, len(rolls) - 1)].id.first
        replay = feed(PartitionBuffer("t", 0, 0, limits), records[restart:])
        assert [r.id for r in replay] == [r.id for r in rolls if r.id.first >= restart]


@given(st.sets(st.integers(0, 500)))
def test_offset_runs_round_trip(offsets: set[int]) -> None:
    ordered = sorted(offsets)
    runs = offset_runs(ordered)
    assert expand_runs(runs) == ordered
    assert all(b[0] > a[1] + 1 for a, b in itertools.pairwise(runs))


def cuts_one_at_a_time(records: list[LakeRecord], limits: RollLimits
                       ) -> list[tuple[int, int, str]]:
    """The rule, written as the obvious loop: after each record, cut by count, else by bytes."""
    cuts, count, size, first = [], 0, 0, 0
    for i, record in enumerate(records):
        count, size = count + 1, size + record.size
        reason = ("records" if count >= limits.max_records
                  else "bytes" if size >= limits.max_bytes else None)
        if reason:
            cuts.append((records[first].offset, record.offset, reason))
            count, size, first = 0, 0, i + 1
    return cuts


@given(sizes=st.lists(st.integers(0, 300), min_size=1, max_size=200),
       unstorable=st.sets(st.integers(0, 199)), gaps=st.lists(st.integers(1, 3), max_size=200),
       max_records=st.integers(1, 50), max_bytes=st.integers(1, 2000),
       chunks=st.lists(st.integers(1, 60), min_size=1, max_size=20))
def test_extend_cuts_where_the_records_one_at_a_time_would(
        sizes: list[int], unstorable: set[int], gaps: list[int], max_records: int,
        max_bytes: int, chunks: list[int]) -> None:
    """Any split of the stream into batches gives the same rolls, with the same bytes and
    reasons, as the per-record rule (unstorable records count but add no bytes)."""
    offsets = list(itertools.accumulate(gaps[i] if i < len(gaps) else 1
                                        for i in range(len(sizes))))
    diverted = classify(0, None, 0).unstorable
    records = [LakeRecord(o, b"x" * n, "2025-01-01", i not in unstorable,
                          diverted if i in unstorable else None)
               for i, (o, n) in enumerate(zip(offsets, sizes, strict=True))]
    limits = RollLimits(max_records, max_bytes)
    buffer = PartitionBuffer("t", 0, 0, limits)
    rolls, start = [], 0
    for size in itertools.cycle(chunks):
        if start >= len(records):
            break
        rolls += buffer.extend(records[start:start + size], 0.0)
        start += size
    assert [(r.id.first, r.id.last, r.reason) for r in rolls] == cuts_one_at_a_time(records,
                                                                                   limits)
    last_cut = rolls[-1].id.last if rolls else -1
    assert buffer.records == [r for r in records if r.offset > last_cut]
    assert buffer.bytes == sum(r.size for r in buffer.records)


def test_extend_refuses_offsets_that_do_not_increase() -> None:
    buffer = PartitionBuffer("t", 0, 0, RollLimits(10, 10**9))
    buffer.extend([LakeRecord(4, b"{}", "2025-01-01")], 0.0)
    for offsets, bad in (((4, 5), 4), ((5, 7, 7), 7), ((6, 9, 8), 8)):
        with pytest.raises(ValueError, match=f"offset {bad} is not after"):
            buffer.extend([LakeRecord(o, b"{}", "2025-01-01") for o in offsets], 0.0)
    assert [r.offset for r in buffer.records] == [4]


#: One partition's stream as the lake writer meets it: valid events of several dates and
#: zones, with the odd record of every kind the byte checks and the header decoder refuse.
ODD = [None, b"", b"junk", b'{"a":\n1}', b"\xff", b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
       '{"event_id":"Zoë"}'.encode(), event(9).replace(b"2025-11-28", b"2299-11-28"),
       event(8) + b" " + event(7), b" " + event(6)]


@given(st.lists(st.sampled_from(ODD) | st.integers(0, 500).map(
    lambda i: event(i, T0 + timedelta(minutes=7 * i - 1500))), max_size=80))
def test_classify_all_equals_classify_one_by_one(values: list[bytes | None]) -> None:
    offsets = [3 * i + 1 for i in range(len(values))]
    stamps = [10**12 + i for i in range(len(values))]
    assert classify_all(offsets, values, stamps.__getitem__) == [
        classify(o, v, t) for o, v, t in zip(offsets, values, stamps, strict=True)]
