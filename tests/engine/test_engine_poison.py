"""Poison input mixed into valid traffic on every engine input topic, on the real broker and
Postgres (hypothesis draws the junk):

- no service stops: the engine, the lake writer and the ETL all exit 0;
- every malformed record is in ``dead_letter`` exactly once (from the engine), with its reason
  code and its original bytes (or, when truncated, their size and sha256);
- the outputs of the valid records are byte-identical to a run without the junk;
- the ETL rejects, with the same codes, exactly the records the engine dead-lettered: for the
  contract's reasons by its own check of the same bytes, for the engine's own rules (key,
  watermark, state) by the engine's verdicts, even when they arrive after the lines.

Run with ``-s`` to see, per kind of junk, how many records were sent and dead-lettered.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from airline_core import events as ev
from airline_core.contract import Reason, Rejection, read_event
from airline_core.topics import ENGINE_INPUTS, Topic, physical_name
from airline_testkit import kafka as kit
from engine_harness import (
    PARTITIONS,
    create_topics,
    dataset,
    partition_of,
    read_outputs,
    run_engine,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

FLIGHTS = 10
BIN = Path(sys.executable).parent
#: Codes every reader decides from the bytes and the contract alone.
CONTRACT_CODES = frozenset(str(r) for r in (
    Reason.TOMBSTONE, Reason.EMPTY, Reason.OVERSIZED, Reason.MULTILINE, Reason.TOO_DEEP,
    Reason.NOT_UTF8, Reason.NUL_CHARACTER, Reason.NOT_JSON, Reason.WRONG_TOPIC,
    Reason.UNSUPPORTED_SCHEMA, Reason.EVENT_TIME_OUT_OF_RANGE, Reason.INVALID_FIELD))
#: What the lake writer cannot store as a line (it diverts those itself; the ETL never sees them).
UNSTORABLE = frozenset({"tombstone", "multiline"})

Valid = list[tuple[bytes, bytes, Any]]  # (key, value, event) of one topic-partition, in order


@dataclass
class Junk:
    """A malformed record: where it goes (after how many valid records) and what it holds."""

    topic: Topic
    partition: int
    after: int
    key: bytes | None
    value: bytes | None
    codes: frozenset[str]
    offset: int = -1
    kind: str = ""

    def __repr__(self) -> str:
        value = None if self.value is None else self.value[:60]
        return (f"Junk({self.topic}[{self.partition}] after {self.after}, key={self.key!r:.40}, "
                f"value={value!r}, codes={sorted(self.codes)})")


class Outputs(dict[str, Any]):
    """The outputs of a run (shown by size only, when hypothesis prints a failing example)."""

    def __repr__(self) -> str:
        return f"Outputs({ {t: sum(map(len, p.values())) for t, p in self.items()} })"


def _valid_records() -> dict[tuple[str, int], Valid]:
    items, _ = dataset(FLIGHTS)
    by_place: dict[tuple[str, int], Valid] = {}
    for topic, event in items:
        by_place.setdefault((str(topic), partition_of(event.flight_id)), []).append(
            (event.key, ev.encode(event), event))
    return by_place


VALID = _valid_records()


def _replace(value: bytes, field: str, new: Any) -> bytes:
    body = json.loads(value)
    body[field] = new
    return json.dumps(body, separators=(",", ":")).encode()


def _shift(value: bytes, field: str, days: float) -> bytes:
    when = datetime.fromisoformat(json.loads(value)[field].replace("Z", "+00:00"))
    return _replace(value, field, (when + timedelta(days=days)).isoformat())


def _booking(flight_id: str, when: str, cabin: str, n: int) -> bytes:
    return json.dumps({
        "event_type": "BookingCreated", "event_id": f"junk-{n}", "event_time": when,
        "flight_id": flight_id, "booking_id": f"junk-booking-{n}", "channel": "WEB",
        "fare_bucket": "K", "currency": "GBP", "total_price": "10.00",
        "passengers": [{"passenger_id": f"jp{n}", "seat_id": "99Z", "cabin_code": cabin}],
    }, separators=(",", ":")).encode()


def make_junk(kind: str, topic: Topic, partition: int, fraction: float, noise: bytes,
              n: int) -> Junk | None:
    """A malformed record of ``kind`` placed ``fraction`` of the way into (topic, partition),
    built from the valid record before it (same key, same time: it must not look like valid
    traffic moving on). None when the place has no valid record to build from."""
    valid = VALID.get((str(topic), partition), [])
    if len(valid) < 2:
        return None
    after = max(1, int(len(valid) * fraction))
    key, prev, event = valid[after - 1]
    when = json.loads(prev)["event_time"]
    one = lambda code: frozenset({code})  # noqa: E731

    def junk(k: bytes | None, v: bytes | None, codes: frozenset[str]) -> Junk:
        return Junk(topic, partition, after, k, v, codes, kind=kind)

    if kind == "bytes":
        value = noise if isinstance(read_event(topic, noise), Rejection) else b"\xff" + noise
        return junk(noise[:8] or None, value, CONTRACT_CODES)
    if kind == "wrong_type":
        fields = sorted(f for f in json.loads(prev) if f != "event_type")
        return junk(key, _replace(prev, fields[n % len(fields)], {"x": [1]}),
                    one("invalid_field"))
    if kind == "not_utf8":
        return junk(key, prev.replace(b'"event_id":"', b'"event_id":"\xff\xfe', 1),
                    one("not_utf8"))
    if kind == "deep":
        return junk(key, prev[:-1] + b',"x":' + b"[" * 20_000 + b"]" * 20_000 + b"}",
                    one("too_deep"))
    if kind == "oversized":
        return junk(key, prev[:-1] + b',"x":"' + b"y" * 300_000 + b'"}', one("oversized"))
    if kind == "nul":
        return junk(key, prev.replace(b'"event_id":"', b'"event_id":"\\u0000', 1),
                    one("nul_character"))
    if kind == "far_future":
        return junk(key, _replace(prev, "event_time", "2999" + when[4:]),
                    one("time_out_of_range"))
    if kind == "before_1970":
        return junk(key, _replace(prev, "event_time", "1969-07-20T20:17:00Z"),
                    one("time_out_of_range"))
    if kind == "ahead":
        return junk(key, _shift(prev, "event_time", 450),
                    frozenset({"ahead_of_watermark", "time_out_of_range"}))
    if kind == "no_key":
        return junk(None, prev, one("missing_key"))
    if kind == "wrong_key":
        return junk(b"SOMEONE_ELSE_" + noise[:4].hex().encode(), prev, one("key_mismatch"))
    if kind == "tombstone":
        return junk(key, None, one("tombstone"))
    if kind == "empty":
        return junk(key, b"", one("empty_value"))
    if kind == "multiline":
        return junk(key, prev.replace(b",", b",\n", 1), one("multiline"))
    if kind == "wrong_topic":
        other = next(t for t in ENGINE_INPUTS if t != topic)
        k, v, _ = VALID[(str(other), partition)][0]
        return junk(k, v, one("wrong_topic"))
    if topic != Topic.BOOKINGS:
        return None
    flight = event.flight_id
    if kind == "conflict":  # a live booking of an open flight, its event again, altered
        cancelled = {e.booking_id for _, _, e in valid[:after]
                     if isinstance(e, ev.BookingCancelled)}
        live = [v for _, v, e in valid[:after] if isinstance(e, ev.BookingCreated)
                and e.flight_id == flight and e.booking_id not in cancelled]
        if not live:
            return None
        return junk(key, _replace(live[-1], "total_price", "1.00"), one("conflicting_duplicate"))
    if kind == "oversold":
        return junk(key, _booking(flight, when, "Z", n), one("oversold_cabin"))
    if kind == "unknown_booking":
        cancel = json.loads(_booking(flight, when, "Y", n))
        del cancel["channel"], cancel["currency"], cancel["total_price"]
        cancel["event_type"] = "BookingCancelled"
        return junk(key, json.dumps(cancel).encode(), one("unknown_booking"))
    if kind == "unknown_flight":
        ghost = f"JUNK{n}_{partition}"
        return junk(ghost.encode(), _booking(ghost, when, "Y", n), one("unknown_flight"))
    return None


KINDS = ("bytes", "wrong_type", "not_utf8", "deep", "oversized", "nul", "far_future",
         "before_1970", "ahead", "no_key", "wrong_key", "tombstone", "empty", "multiline",
         "wrong_topic", "conflict", "oversold", "unknown_booking", "unknown_flight")


BOOKING_KINDS = KINDS[-4:]


@st.composite
def junk_batches(draw: st.DrawFn) -> list[Junk]:
    """Every kind on every input topic it applies to, then more of any, anywhere before the
    last quarter (so parked records of unknown flights still see an hour of event time pass
    after them)."""
    places = [(kind, topic) for kind in KINDS for topic in ENGINE_INPUTS
              if kind not in BOOKING_KINDS or topic == Topic.BOOKINGS]
    places += draw(st.lists(st.tuples(st.sampled_from(KINDS), st.sampled_from(ENGINE_INPUTS)),
                            max_size=20))
    batch = []
    for n, (kind, topic) in enumerate(places):
        made = make_junk(kind, topic, draw(st.integers(0, PARTITIONS - 1)),
                         draw(st.floats(0.05, 0.75)), draw(st.binary(max_size=64)), n)
        if made is not None:
            batch.append(made)
    return batch


def write(bootstrap: str, prefix: str, junk: list[Junk]) -> int:
    """Valid records in their order, the junk among them; junk offsets set. Returns the count."""
    rows: list[kit.Row] = []
    placed: list[tuple[int, Junk]] = []  # (row index, junk)
    for (topic, partition), valid in sorted(VALID.items()):
        mine = sorted((j for j in junk if (str(j.topic), j.partition) == (topic, partition)),
                      key=lambda j: j.after)
        for index in range(len(valid) + 1):
            for j in (j for j in mine if j.after == index):
                placed.append((len(rows), j))
                rows.append((physical_name(topic, prefix), j.key, j.value, partition))
            if index < len(valid):
                key, value, _ = valid[index]
                rows.append((physical_name(topic, prefix), key, value, partition))
    offsets = kit.write_records(bootstrap, rows, transactional_id=f"poison-{prefix}",
                                extra={"message.max.bytes": 2_000_000})
    for row, j in placed:
        j.offset = offsets[row]
    assert all(j.offset >= 0 for j in junk)
    return len(rows)


def _decoded(outputs: dict[str, Any], topic: str) -> list[Any]:
    return [ev.decode(topic, v) for items in outputs[topic].values() for _, v in items]


@pytest.fixture(scope="module")
def reference(kafka_bootstrap: str) -> dict[str, Any]:
    """The engine's outputs for the valid records alone."""
    prefix = f"poisonref_{uuid.uuid4().hex[:8]}-"
    create_topics(kafka_bootstrap, prefix, PARTITIONS)
    write(kafka_bootstrap, prefix, [])
    run = run_engine(kafka_bootstrap, prefix)
    assert run.returncode == 0, run.stderr[-3000:]
    return Outputs(read_outputs(kafka_bootstrap, prefix))


def _run(script: str, env: dict[str, str], *args: str) -> None:
    done = subprocess.run([str(BIN / script), *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stderr[-4000:]}"


@settings(max_examples=2, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(junk=junk_batches())
def test_junk_on_every_input_changes_nothing_else(
    junk: list[Junk], reference: dict[str, Any], kafka_bootstrap: str, database_url: str,
    unique_name: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory,
) -> None:
    prefix = unique_name("poison") + "-"
    create_topics(kafka_bootstrap, prefix, PARTITIONS)
    written = write(kafka_bootstrap, prefix, junk)

    engine = run_engine(kafka_bootstrap, prefix, timeout=180)
    assert engine.returncode == 0, engine.stderr[-3000:]
    assert engine.summary()["processed"] == written
    outputs = read_outputs(kafka_bootstrap, prefix)
    for topic in ("inventory_metrics", "promo_decisions"):
        assert outputs[topic] == reference[topic], f"{topic} changed by the junk"

    letters = [d for d in _decoded(outputs, "dead_letter") if d.component == "airline-engine"]
    by_place = Counter((d.source_topic, d.source_partition, d.source_offset) for d in letters)
    assert all(n == 1 for n in by_place.values()), "a record was dead-lettered twice"
    placed = {(d.source_topic, d.source_partition, d.source_offset): d for d in letters}
    for j in junk:
        letter = placed.get((str(j.topic), j.partition, j.offset))
        assert letter is not None, f"not dead-lettered: {j.topic} {j.codes} {j.value!r:.200}"
        assert letter.reason_code in j.codes, (letter.reason, j.codes)
        assert letter.reason.startswith(f"{letter.reason_code}: ")
        original = j.value or b""
        assert letter.original_size == len(original)
        assert letter.original_sha256 == (hashlib.sha256(original).hexdigest()
                                          if j.value is not None else "")
        kept = base64.b64decode(letter.original_value_b64)
        assert kept == original or (letter.original_truncated and original.startswith(kept))
    assert len(letters) == len(junk) + len(_decoded(reference, "dead_letter"))
    sent = Counter(j.kind for j in junk)
    lettered = Counter(j.kind for j in junk if (str(j.topic), j.partition, j.offset) in placed)
    print("junk kind: sent / dead-lettered:",
          ", ".join(f"{k} {sent[k]}/{lettered[k]}" for k in sorted(sent)),
          f"| valid records {written - len(junk)}")

    # The lake keeps every record raw; the ETL takes the engine's verdicts by position, so its
    # rejects on the input topics are the engine's dead letters, code for code (all but the two
    # the lake writer cannot store as lines: it diverts them), and no dead-lettered record has
    # a row. Loaded first without the dead letters (their rolls land later), so the verdicts
    # retract rows already loaded; then with --full (every verdict in the run of its line):
    # the same warehouse.
    from airline_etl import warehouse  # the ETL's own reader of its tables

    lake = tmp_path_factory.mktemp("poison-lake")
    schema = unique_name("wh")
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    conn.close()
    sep = "&" if "?" in database_url else "?"
    url = f"{database_url}{sep}options=-csearch_path%3D{schema}"
    common = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "KAFKA_TOPIC_PREFIX": prefix,
              "LAKE_DIR": str(lake), "LOG_FORMAT": "json", "METRICS_PORT": "0"}
    _run("airline-lake-writer", {**common, "KAFKA_GROUP_ID": f"{prefix}lake"},
         "--new-source", "--stop-when-idle", "2")
    etl = {**common, "DATABASE_URL": url, "PUSHGATEWAY_URL": "", "ETL_MAX_REJECT_SHARE": "1"}
    letter_manifests = lake / "raw" / "_manifests" / "dead_letter"
    assert letter_manifests.is_dir()
    letter_manifests.rename(lake / "dead_letter_manifests_later")
    _run("airline-etl", etl)
    (lake / "dead_letter_manifests_later").rename(letter_manifests)
    _run("airline-etl", etl)

    inputs = {str(t) for t in ENGINE_INPUTS}
    dead = {(d.source_topic, d.source_partition, d.source_offset) for d in letters}
    records = kit.read_to_end(kafka_bootstrap, [physical_name(t, prefix) for t in ENGINE_INPUTS],
                              PARTITIONS)
    accepted: dict[tuple[str, int, int], Any] = {}  # position → the event the engine took
    for topic in ENGINE_INPUTS:
        for partition, items in records[physical_name(topic, prefix)].items():
            for record in items:
                if (str(topic), partition, record.offset) not in dead:
                    event = read_event(topic, record.value)
                    assert not isinstance(event, Rejection), (topic, partition, record)
                    accepted[(str(topic), partition, record.offset)] = event

    def warehouse_state() -> dict[str, Any]:
        conn = psycopg2.connect(url)
        try:
            with conn.cursor() as cur:
                def query(sql: str) -> list[tuple[Any, ...]]:
                    cur.execute(sql)
                    return list(cur.fetchall())

                return {
                    "rejects": Counter(query("SELECT topic, reason_code FROM etl_rejects")),
                    "positions": query("SELECT DISTINCT generation, topic, kafka_partition, "
                                       "kafka_offset FROM etl_input_positions"),
                    "ledger": set(query("SELECT topic, event_id FROM etl_event_ledger")),
                    "bookings": set(query("SELECT event_id, total_price FROM fact_booking")),
                    "cancellations": {e for (e,) in query("SELECT event_id FROM "
                                                          "fact_booking_cancellation")},
                    "flight_events": {e for (e,) in query("SELECT event_id FROM "
                                                          "fact_flight_event")},
                    "gold": {t: warehouse.read_table(conn, t) for t in warehouse.GOLD_TABLES},
                }
        finally:
            conn.close()

    incremental = warehouse_state()
    _run("airline-etl", etl, "--full")
    full = warehouse_state()
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("DROP SCHEMA " + schema + " CASCADE")
    conn.close()

    engine_side = Counter((d.source_topic, d.reason_code) for d in letters
                          if d.reason_code not in UNSTORABLE)
    for state in (incremental, full):
        rejects = state["rejects"]
        assert Counter({k: n for k, n in rejects.items() if k[0] in inputs}) == engine_side
        assert not any(code == "warehouse_refused" for _, code in rejects)
        # Exactly the accepted records' lines are loaded (by position), none dead-lettered...
        assert len({g for g, *_ in state["positions"]}) == 1
        positions = {tuple(p[1:]) for p in state["positions"]}
        assert not positions & dead, "a dead-lettered record's line was loaded"
        assert positions == set(accepted)
        # ...and the rows are exactly those of the accepted records (a dead-lettered record
        # byte-identical to an accepted one shares its event id, never its rows' content).
        assert {(t, e) for t, e in state["ledger"] if t in inputs} == {
            (t, e.event_id) for (t, _, _), e in accepted.items()}
        created = {(e.event_id, e.total_price) for e in accepted.values()
                   if isinstance(e, ev.BookingCreated)}
        assert state["bookings"] == created
        assert state["cancellations"] <= {e.event_id for e in accepted.values()
                                          if isinstance(e, ev.BookingCancelled)}
        assert state["flight_events"] == {e.event_id for (t, _, _), e in accepted.items()
                                          if t == Topic.FLIGHT_LIFECYCLE}
    assert incremental["ledger"] == full["ledger"]
    for table, frame in incremental["gold"].items():
        assert frame.equals(full["gold"][table]), f"{table}: incremental differs from --full"
