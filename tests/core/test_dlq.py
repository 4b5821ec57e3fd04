"""``airline-dlq`` without a broker: selection, counts, rendering, replay planning, arguments."""

from __future__ import annotations

import base64
import json
import socket
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest
from airline_core import dlq as dl
from airline_core import dlq_cli as cli
from airline_core import events as ev
from airline_core.contract import Reason, Rejection
from airline_core.dead_letter import MAX_ORIGINAL_BYTES, dead_letter_for

T0 = datetime(2025, 11, 28, 10, tzinfo=UTC)
NOT_JSON = Rejection(Reason.NOT_JSON, "not one JSON document")
UNKNOWN = Rejection(Reason.UNKNOWN_FLIGHT, "no FlightScheduled")
BOOKING = ev.BookingCreated(
    event_id="bk-1", event_time=T0, flight_id="BA1_2025-12-01", booking_id="b1", channel="WEB",
    fare_bucket="K", currency="GBP", total_price=Decimal("140.00"),
    passengers=[ev.Passenger(passenger_id="p1", seat_id="1A", cabin_code="Y")])


class Rec:
    """The accessor surface of a confluent-kafka Message, for a record we choose."""

    def __init__(self, key: bytes | None, value: bytes | None, partition: int = 0,
                 offset: int = 0, headers: list[tuple[str, bytes]] | None = None) -> None:
        self._key, self._value, self._p, self._o = key, value, partition, offset
        self._headers = headers or []

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000)

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers


def envelope(value: bytes | None = b"{not json", *, topic: str = "bookings", partition: int = 0,
             offset: int = 0, rejection: Rejection = NOT_JSON, component: str = "airline-engine",
             key: bytes | None = b"BA1_2025-12-01", when: datetime | None = T0,
             headers: list[tuple[str, bytes]] | None = None) -> ev.DeadLetter:
    return dead_letter_for(Rec(key, value, partition, offset, headers), topic, rejection,
                           component, fallback_time=when)


# --------------------------------------------------------------------------- selection
def test_selection_combines_criteria_with_and_and_values_with_or() -> None:
    a = envelope(offset=1, when=T0)
    b = envelope(offset=2, rejection=UNKNOWN, when=T0 + timedelta(hours=1))
    c = envelope(topic="seat_map", offset=3, component="lake-writer",
                 when=T0 + timedelta(hours=2))
    everything = [a, b, c]
    assert dl.Selection().apply(everything) == everything and dl.Selection().is_everything
    assert dl.Selection(reasons=frozenset({"not_json"})).apply(everything) == [a, c]
    assert dl.Selection(reasons=frozenset({"not_json", "unknown_flight"})).apply(
        everything) == everything
    assert dl.Selection(reasons=frozenset({"not_json"}),
                        topics=frozenset({"bookings"})).apply(everything) == [a]
    assert dl.Selection(components=frozenset({"lake-writer"})).apply(everything) == [c]
    assert dl.Selection(ids=frozenset({b.event_id})).apply(everything) == [b]
    # since inclusive, until exclusive
    window = dl.Selection(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=2))
    assert window.apply(everything) == [b] and not window.is_everything


def test_reason_code_of_an_old_envelope_comes_from_its_reason() -> None:
    old = msgspec.structs.replace(envelope(), reason_code="")
    assert dl.reason_code(old) == "not_json"
    assert dl.reason_code(msgspec.structs.replace(old, reason="undecodable: boom")) == ""


def test_catalogue_keeps_each_envelope_once_and_counts_what_is_not_one() -> None:
    late = envelope(offset=5, when=T0 + timedelta(days=1))
    early = envelope(offset=9, when=T0)
    values = [ev.encode(late), ev.encode(early), ev.encode(late), b"junk", None]
    catalogue = dl.catalogue_of(values)
    assert catalogue.envelopes == (early, late)  # event-time order, not topic order
    assert (catalogue.records, catalogue.duplicates, catalogue.unreadable) == (5, 1, 2)


def test_ids_resolve_exactly_or_by_unique_prefix() -> None:
    a = msgspec.structs.replace(envelope(offset=1), event_id="abc-111")
    b = msgspec.structs.replace(envelope(offset=2), event_id="abc-222")
    catalogue = dl.Catalogue((a, b))
    assert catalogue.resolve(["abc-111", "abc-2"]) == {"abc-111", "abc-222"}
    with pytest.raises(dl.NotFoundError, match="'nope' matches no dead letters"):
        catalogue.resolve(["nope"])
    with pytest.raises(dl.NotFoundError, match="'abc' matches 2 dead letters"):
        catalogue.resolve(["abc"])


def test_summary_counts_by_reason_and_topic_most_frequent_first() -> None:
    items = [envelope(offset=1), envelope(offset=2), envelope(offset=3, rejection=UNKNOWN),
             envelope(topic="seat_map", offset=4, rejection=UNKNOWN),
             envelope(topic="seat_map", offset=5, rejection=UNKNOWN)]
    summary = dl.summarise(items)
    assert summary.total == 5
    assert list(summary.by_reason.items()) == [("unknown_flight", 3), ("not_json", 2)]
    assert list(summary.by_topic.items()) == [("bookings", 3), ("seat_map", 2)]


# --------------------------------------------------------------------------- originals
def test_original_keeps_tombstones_empty_values_and_headers_apart() -> None:
    tomb = envelope(None, rejection=Rejection(Reason.TOMBSTONE, "no value"), key=None)
    assert dl.original_of(tomb) == dl.Original(None, None, ())
    empty = envelope(b"", rejection=Rejection(Reason.EMPTY, "empty"))
    assert dl.original_of(empty).value == b""
    with_headers = envelope(headers=[("trace", b"\x00\x01"), ("source", b"app")])
    assert dl.original_of(with_headers) == dl.Original(
        b"BA1_2025-12-01", b"{not json", (("trace", b"\x00\x01"), ("source", b"app")))


def test_truncated_and_damaged_originals_are_refused() -> None:
    big = envelope(b'{"pad":"' + b"x" * (MAX_ORIGINAL_BYTES + 10) + b'"}',
                   rejection=Rejection(Reason.OVERSIZED, "too big"))
    assert big.original_truncated
    assert "truncated" in (dl.refusal(big) or "")
    assert dl.refusal(envelope()) is None
    tampered = msgspec.structs.replace(envelope(),
                                   original_value_b64=base64.b64encode(b"{other").decode())
    assert "damaged" in (dl.refusal(tampered) or "")
    garbled = msgspec.structs.replace(envelope(), original_value_b64="%%%")
    assert "damaged base64" in (dl.refusal(garbled) or "")


# --------------------------------------------------------------------------- replay planning
def test_replay_plan_replays_originals_with_the_header_and_refuses_truncated_ones() -> None:
    first = envelope(offset=7, headers=[("trace", b"t"), (dl.REPLAY_HEADER, b"older-id")])
    second = envelope(b"{also bad", partition=2, offset=3)
    big = envelope(b"[" * 10 + b"x" * (MAX_ORIGINAL_BYTES + 1), offset=1,
                   rejection=Rejection(Reason.OVERSIZED, "too big"))
    plan = dl.plan_replay([second, big, first], {}, {})
    assert [r.envelope for r in plan.records] == [first, second]  # source order
    record = plan.records[0]
    assert (record.key, record.value, record.target) == (b"BA1_2025-12-01", b"{not json",
                                                         ("bookings", 0))
    # the older replay header is replaced, not kept beside the new one
    assert record.headers == (("trace", b"t"), (dl.REPLAY_HEADER, first.event_id.encode()))
    assert [(s.envelope, s.kind) for s in plan.skipped] == [(big, "truncated")]
    assert plan.counts() == {"truncated": 1}
    # the scan starts at the lowest replayable source offset of each partition
    assert dl.scan_starts([second, big, first]) == {("bookings", 0): 7, ("bookings", 2): 3}


def test_replayed_records_and_their_other_envelopes_are_skipped() -> None:
    engine = envelope(b"a\nb", offset=4, rejection=Rejection(Reason.MULTILINE, "line break"))
    lake = envelope(b"a\nb", offset=4, rejection=Rejection(Reason.MULTILINE, "line break"),
                    component="lake-writer")
    other = envelope(offset=5)
    assert engine.event_id != lake.event_id
    known = {e.event_id: e for e in (engine, lake, other)}
    # one record rejected by two components is replayed once
    plan = dl.plan_replay([engine, lake, other], {}, known)
    assert [r.envelope for r in plan.records] == [engine, other]
    assert [(s.envelope, s.kind) for s in plan.skipped] == [(lake, "same_record")]
    # once a replay of it exists, neither envelope of that record is replayed again
    found = {engine.event_id: dl.Location("bookings", 0, 40)}
    plan = dl.plan_replay([lake, engine, other], found, known)
    assert [r.envelope for r in plan.records] == [other]
    assert {s.envelope.event_id: s.kind for s in plan.skipped} == {
        engine.event_id: "already_replayed", lake.event_id: "already_replayed"}
    assert "bookings[0]@40" in plan.skipped[0].detail


def test_replay_header_is_read_from_bytes_or_text() -> None:
    assert dl.replay_of([("x", b"1"), (dl.REPLAY_HEADER, b"id-1")]) == "id-1"
    assert dl.replay_of([(dl.REPLAY_HEADER, "id-2")]) == "id-2"
    assert dl.replay_of(None) is None and dl.replay_of([(dl.REPLAY_HEADER, None)]) is None


# --------------------------------------------------------------------------- rendering
def test_list_line_and_summary() -> None:
    item = envelope(topic="seat_map", partition=2, offset=41)
    line = cli.line_of(item)
    assert line.startswith("2025-11-28T10:00:00Z  not_json ")
    for part in ("seat_map[2]@41", "airline-engine", "BA1_2025-12-01", item.event_id):
        assert part in line
    catalogue = dl.Catalogue((item,), records=3, unreadable=1, duplicates=1)
    lines = cli.summary_lines(dl.summarise([item]), catalogue, shown=1)
    assert lines[0] == "1 dead letter; 3 records on the topic, 1 duplicate, 1 not a dead letter"
    assert lines[1:] == ["by reason:", f"  {'not_json':<24}{1:>8}", "by topic:",
                         f"  {'seat_map':<24}{1:>8}"]
    summary = json.loads(cli.summary_json(dl.summarise([item]), catalogue))["summary"]
    assert summary["by_reason"] == {"not_json": 1} and summary["unreadable"] == 1


def test_show_decodes_text_or_base64_and_judges_the_original_now() -> None:
    item = envelope(b"{not json\n", key=b"\xff\xfe", headers=[("trace", b"abc")])
    text = "\n".join(cli.show_lines(item))
    assert "value (text)        {not json\\n" in text  # escaped: stays on one line
    assert "key (base64)        " + base64.b64encode(b"\xff\xfe").decode() in text
    assert "header (text)       trace = abc" in text
    assert f"event_id            {item.event_id}" in text
    assert "source              bookings[0]@0" in text
    assert "contract now        rejected: multiline:" in text
    # a record the contract accepts now (e.g. rejected by an older reader) says so
    fixed = envelope(ev.encode(BOOKING))
    assert cli.verdict(fixed).startswith("accepted: BookingCreated bk-1")
    # the key rule is checked too (what the engine would say first)
    assert cli.verdict(envelope(ev.encode(BOOKING), key=b"other")).startswith(
        "rejected: key_mismatch")
    tomb = envelope(None, key=None, rejection=Rejection(Reason.TOMBSTONE, "no value"))
    assert "value               (none: a tombstone)" in cli.show_lines(tomb)


def test_show_of_a_truncated_original_does_not_judge_a_fragment() -> None:
    big = envelope(b"x" * (MAX_ORIGINAL_BYTES + 1), rejection=Rejection(Reason.OVERSIZED, "big"))
    assert cli.verdict(big).startswith("not checked: the envelope kept only part")


def test_replay_lines_report_what_was_written_and_skipped() -> None:
    ok = envelope(offset=1)
    big = envelope(b"x" * (MAX_ORIGINAL_BYTES + 1), offset=2,
                   rejection=Rejection(Reason.OVERSIZED, "big"))
    plan = dl.plan_replay([ok, big], {}, {})
    done = dl.ReplayResult(plan, {ok.event_id: dl.Location("bookings", 0, 12)}, dry_run=False)
    lines = cli.replay_lines(done, selected=2)
    assert lines[0] == f"replayed     {ok.event_id}  bookings[0]@1 -> bookings[0]@12"
    assert lines[1].startswith(f"skipped      {big.event_id}  bookings[0]@2: original truncated")
    assert lines[-1] == "replayed 1 of 2 selected dead letters; skipped 1 (1 truncated)"
    dry = cli.replay_lines(dl.ReplayResult(plan, {}, dry_run=True), selected=2)
    assert dry[0].startswith("would replay ") and dry[-1].startswith("dry run: would replay 1")
    assert dry[-1].endswith("nothing was written")


# --------------------------------------------------------------------------- arguments
def test_times_need_a_zone_unless_they_are_dates() -> None:
    assert cli.parse_time("2025-11-28") == datetime(2025, 11, 28, tzinfo=UTC)
    assert cli.parse_time("2025-11-28T10:00:00+01:00") == datetime(2025, 11, 28, 9, tzinfo=UTC)
    assert cli.parse_time("2025-11-28T10:00:00Z") == T0
    for bad in ("2025-11-28T10:00:00", "yesterday"):
        with pytest.raises(Exception, match=r"time zone|not a date"):
            cli.parse_time(bad)


@pytest.mark.parametrize("argv", [[], ["list"], ["show"], ["replay"]])
def test_help_on_everything(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*argv, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: airline-dlq")
    if argv:
        assert "KAFKA_BOOTSTRAP_SERVERS" in out and "DLQ_TIMEOUT_SECONDS" in out


@pytest.mark.parametrize("argv", [
    ["list", "--since", "2025-11-28T10:00:00"],  # no zone
    ["list", "--reason", "not-a-code"],
    ["list", "--topic", "bokings"],
    ["list", "--limit", "0"],
    ["show"],  # no id
    ["frobnicate"],
])
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    assert "error" in capsys.readouterr().err


def test_replay_without_a_selection_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["replay", "--dry-run"]) == 2
    assert capsys.readouterr().err.strip() == (
        "airline-dlq replay: replay needs a selection (--id, --reason, --topic, --component, "
        "--since, --until) or --all")


def test_a_bad_setting_exits_2_with_one_line_naming_it(capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLQ_TIMEOUT_SECONDS", "soon")
    assert cli.main(["list"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["airline-dlq: configuration error: DLQ_TIMEOUT_SECONDS='soon' is not a "
                   "valid float"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_broker_exits_1_with_one_log_line(capfd: pytest.CaptureFixture[str]
                                                         ) -> None:
    code = cli.main(["list", "--bootstrap-servers", f"127.0.0.1:{_closed_port()}",
                     "--timeout-seconds", "1.5", "--log-format", "json"])
    out, err = capfd.readouterr()
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # librdkafka's own connection errors are not shown
    record = json.loads(lines[0])
    assert (record["level"], record["event"]) == ("error", "list failed")
    assert "cannot read metadata of dead_letter" in record["error"]
