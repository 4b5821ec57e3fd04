"""The engine's verdicts in the warehouse: what a run's lines are judged against, and the
retraction of rows that were loaded before their verdict arrived.

The engine rejects some records by rules the ETL cannot decide from a lake line (the Kafka key,
the event-time watermark, the flight's state). Its ``DeadLetter`` envelope names the record's
Kafka position, so the ETL takes the verdict by position (never by content: a record rejected
for its key can be byte-identical to an accepted one):

* ``etl_engine_verdicts`` keeps every verdict read (keyed by generation, source topic,
  partition and offset; a verdict's generation is that of the lake roll of ``dead_letter``
  holding its envelope). A run judges its lines against the verdicts known so far and those it
  reads itself (:func:`known`, :func:`airline_etl.transform.apply_verdicts`).
* ``etl_input_positions`` keeps the Kafka position of every accepted input line and the event it
  carries. A verdict that names a position loaded by an earlier run *retracts* that event
  (:func:`retract`, before anything is staged, in the run's transaction): every row it supplied
  is deleted, with every row that shares a key with it (the booking's rows of the table it fed;
  the flight's cabins for a schedule), and the lake entries holding the other occurrences of
  those events are read again in this run (:class:`Plan`). Of those lines, the ones the
  verdicts reject become rejects (with their file and line number), and the others supply the
  deleted rows again exactly as a full load would (first occurrence in lake order wins). So
  incremental loading equals ``--full`` whichever run brings a line and whichever its verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import polars as pl
import psycopg2.extensions
from airline_core.logging import get_logger
from airline_core.topics import Topic

from airline_etl import lake, transform, warehouse

log = get_logger(__name__)

_CREATE: Final = (
    "CREATE TEMP TABLE stg_verdicts (generation integer, source_topic text, source_partition "
    "integer, source_offset bigint, reason_code text, reason text, dead_letter_event_id text) "
    "ON COMMIT DROP",
    "CREATE TEMP TABLE stg_retracted (event_id text, topic text, event_type text, flight_id "
    "text) ON COMMIT DROP",
    "CREATE TEMP TABLE stg_retracted_flights (flight_id text) ON COMMIT DROP",
    # created: the booking's fact_booking rows are rebuilt; else its cancellations are.
    "CREATE TEMP TABLE stg_retracted_bookings (booking_id text, created boolean) ON COMMIT DROP",
    "CREATE TEMP TABLE stg_reload (event_id text) ON COMMIT DROP",
)

_MATCH: Final = """
FROM etl_input_positions p JOIN stg_verdicts v
  ON v.generation = p.generation AND v.source_topic = p.topic
 AND v.source_partition = p.kafka_partition AND v.source_offset = p.kafka_offset"""

#: Lines loaded earlier that a verdict of this run names.
_COUNT: Final = "SELECT count(*)" + _MATCH

_FIND: Final = (
    # The events those lines carry.
    "INSERT INTO stg_retracted SELECT DISTINCT p.event_id, p.topic, l.event_type, l.flight_id"
    + _MATCH + " LEFT JOIN etl_event_ledger l ON l.event_id = p.event_id AND l.topic = p.topic",
    "ANALYZE stg_retracted",
    "INSERT INTO stg_retracted_flights SELECT DISTINCT flight_id FROM stg_retracted "
    "WHERE flight_id IS NOT NULL",
    # The bookings whose rows they supplied (each booking's rows are rebuilt whole).
    """INSERT INTO stg_retracted_bookings
       SELECT DISTINCT b.booking_id, true FROM stg_retracted r
       JOIN fact_booking b ON b.flight_id = r.flight_id AND b.event_id = r.event_id
       WHERE r.topic = 'bookings'
       UNION
       SELECT DISTINCT c.booking_id, false FROM stg_retracted r
       JOIN fact_booking_cancellation c ON c.event_id = r.event_id
       WHERE r.topic = 'bookings'""",
    # The events whose lines are read again: the retracted ones (their other occurrences may
    # stand), the events holding rows of the rebuilt bookings, the flight's bookings events that
    # hold no row at all (another event's rows shadowed theirs), and every schedule of a flight
    # whose schedule is retracted (its cabins are rebuilt).
    """INSERT INTO stg_reload
       SELECT event_id FROM stg_retracted
       UNION SELECT b.event_id FROM fact_booking b
             JOIN stg_retracted_bookings k ON k.booking_id = b.booking_id WHERE k.created
       UNION SELECT c.event_id FROM fact_booking_cancellation c
             JOIN stg_retracted_bookings k ON k.booking_id = c.booking_id WHERE NOT k.created
       UNION SELECT l.event_id FROM etl_event_ledger l
             JOIN (SELECT DISTINCT flight_id, event_type FROM stg_retracted
                   WHERE topic = 'bookings') r
               ON r.flight_id = l.flight_id AND r.event_type = l.event_type
             WHERE l.topic = 'bookings'
               AND NOT EXISTS (SELECT 1 FROM fact_booking b
                               WHERE b.flight_id = l.flight_id AND b.event_id = l.event_id)
               AND NOT EXISTS (SELECT 1 FROM fact_booking_cancellation c
                               WHERE c.event_id = l.event_id)
       UNION SELECT e.event_id FROM fact_flight_event e
             JOIN (SELECT DISTINCT flight_id FROM stg_retracted
                   WHERE event_type = 'FlightScheduled') r USING (flight_id)
             WHERE e.event_type = 'FlightScheduled'""",
)

#: Where the events read again are: every Kafka position, and the ledger's file (which also
#: finds an occurrence in one of the user's old day files, which have no positions).
_SOURCES: Final = (
    "SELECT DISTINCT p.topic, p.kafka_partition, p.generation, p.kafka_offset "
    "FROM etl_input_positions p JOIN stg_reload USING (event_id)",
    "SELECT DISTINCT l.source_file FROM etl_event_ledger l JOIN stg_reload USING (event_id)",
)

#: (counter, statement): the rows retracted. ``<table>.retracted`` counts tell the gold export
#: which tables changed.
_DELETES: Final = (
    ("fact_booking.retracted", "DELETE FROM fact_booking b USING stg_retracted_bookings k "
     "WHERE k.created AND b.booking_id = k.booking_id"),
    ("fact_booking_cancellation.retracted", "DELETE FROM fact_booking_cancellation c USING "
     "stg_retracted_bookings k WHERE NOT k.created AND c.booking_id = k.booking_id"),
    ("fact_flight_event.retracted", "DELETE FROM fact_flight_event e USING stg_retracted r "
     "WHERE r.topic = 'flight_lifecycle' AND e.event_id = r.event_id"),
    ("dim_flight_cabin.retracted", "DELETE FROM dim_flight_cabin d USING (SELECT DISTINCT "
     "flight_id FROM stg_retracted WHERE event_type = 'FlightScheduled') r "
     "WHERE d.flight_id = r.flight_id"),
    ("etl_event_ledger.retracted", "DELETE FROM etl_event_ledger l USING stg_retracted r "
     "WHERE l.event_id = r.event_id AND l.topic = r.topic"),
    ("etl_input_positions.retracted", "DELETE FROM etl_input_positions p USING stg_retracted r "
     "WHERE p.event_id = r.event_id AND p.topic = r.topic"),
)
#: Every counter :func:`retract` reports (0 when nothing was retracted).
COUNTERS: Final = tuple(name for name, _ in _DELETES)

_KNOWN: Final = """
SELECT v.generation, v.source_topic, v.source_partition, v.source_offset, v.reason_code,
       v.reason, v.dead_letter_event_id
FROM etl_engine_verdicts v
JOIN unnest(%s::integer[], %s::text[], %s::integer[], %s::bigint[], %s::bigint[])
     AS r(generation, topic, kafka_partition, lo, hi)
  ON v.generation = r.generation AND v.source_topic = r.topic
 AND v.source_partition = r.kafka_partition AND v.source_offset BETWEEN r.lo AND r.hi
ORDER BY 1, 2, 3, 4
"""


@dataclass(frozen=True)
class Plan:
    """What :func:`retract` removed, and what must be read again to put back what stands."""

    lines: int = 0  # lines loaded earlier that this run's verdicts reject
    events: frozenset[str] = frozenset()  # the events those lines carried
    bookings_created: frozenset[str] = frozenset()  # fact_booking rows rebuilt
    bookings_cancelled: frozenset[str] = frozenset()  # fact_booking_cancellation rows rebuilt
    schedule_flights: frozenset[str] = frozenset()  # dim_flight_cabin rows rebuilt
    positions: tuple[tuple[str, int, int, int], ...] = ()  # (topic, partition, gen, offset)
    files: tuple[str, ...] = ()  # data files (ledger's source_file) to read again
    deleted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))

    def keep(self, topic: str) -> pl.Expr:
        """Which accepted lines read again become events: occurrences of the retracted events,
        and the events that supply the rebuilt rows (selected by what the line says, so an
        event merely sharing an entry with them is left as it is)."""
        expr = pl.col("event_id").is_in(_series(self.events))
        if topic == Topic.BOOKINGS:
            kind, booking = pl.col("event_type"), pl.col("booking_id")
            expr = expr | ((kind == "BookingCreated")
                           & booking.is_in(_series(self.bookings_created))) | (
                (kind == "BookingCancelled") & booking.is_in(_series(self.bookings_cancelled)))
        elif topic == Topic.FLIGHT_LIFECYCLE:
            expr = expr | ((pl.col("event_type") == "FlightScheduled")
                           & pl.col("flight_id").is_in(_series(self.schedule_flights)))
        return expr

    def entries(self, index: lake.EntryIndex) -> list[lake.LakeEntry]:
        """The lake entries to read again (an occurrence no longer in the lake is not found,
        just as a full load would not find it)."""
        found: dict[str, lake.LakeEntry] = {}
        missing = 0
        for topic, partition, generation, offset in self.positions:
            entry = index.by_position(topic, partition, generation, offset)
            if entry is None:
                missing += 1
            else:
                found.setdefault(entry.key, entry)
        for path in self.files:
            entry = index.by_file(path)
            if entry is None:
                missing += 1
            else:
                found.setdefault(entry.key, entry)
        if missing:
            log.warning("lines loaded earlier are no longer in the lake; not read again",
                        missing=missing)
        return list(found.values())


def _series(values: Iterable[str]) -> pl.Series:
    """``values`` as one list value, for ``is_in``."""
    return pl.Series(sorted(values), dtype=pl.String).implode()


def stage(conn: psycopg2.extensions.connection, run_verdicts: pl.DataFrame) -> None:
    """The run's temporary tables, with the verdicts the run read (``VERDICT_SCHEMA``)."""
    with conn.cursor() as cur:
        for sql in _CREATE:
            cur.execute(sql)
    warehouse.copy_frame(conn, "stg_verdicts", run_verdicts)
    with conn.cursor() as cur:
        cur.execute("ANALYZE stg_verdicts")


def retract(conn: psycopg2.extensions.connection) -> Plan:
    """Retract what this run's verdicts (``stg_verdicts``) reject among the lines loaded by
    earlier runs; returns what was removed and what to read again. Idempotent: a retracted
    line's position is gone, so the same verdict read again finds nothing."""
    with conn.cursor() as cur:
        cur.execute(_COUNT)
        lines = int(cur.fetchone()[0])  # type: ignore[index]
        if not lines:
            return Plan()
        for sql in _FIND:
            cur.execute(sql)
        cur.execute("SELECT event_id, event_type, flight_id FROM stg_retracted")
        retracted = cur.fetchall()
        cur.execute("SELECT booking_id, created FROM stg_retracted_bookings")
        bookings = cur.fetchall()
        cur.execute(_SOURCES[0])
        positions = tuple((str(t), int(p), int(g), int(o)) for t, p, g, o in cur.fetchall())
        cur.execute(_SOURCES[1])
        files = tuple(sorted(str(f) for (f,) in cur.fetchall()))
        deleted = {}
        for name, sql in _DELETES:
            cur.execute(sql)
            deleted[name] = cur.rowcount
    plan = Plan(
        lines=lines, events=frozenset(e for e, _, _ in retracted),
        bookings_created=frozenset(b for b, created in bookings if created),
        bookings_cancelled=frozenset(b for b, created in bookings if not created),
        schedule_flights=frozenset(f for _, t, f in retracted if t == "FlightScheduled" and f),
        positions=positions, files=files, deleted=deleted)
    log.info("verdicts retract rows loaded earlier", lines=lines, events=len(plan.events),
             positions_read_again=len(positions), **deleted)
    return plan


def known(conn: psycopg2.extensions.connection, entries: Sequence[lake.LakeEntry]
          ) -> pl.DataFrame:
    """The verdicts already in the warehouse about lines of ``entries`` (``VERDICT_SCHEMA``)."""
    spans: list[tuple[int, str, int, int, int]] = []
    for entry in entries:
        span = entry.offset_range
        if span is None or entry.topic not in transform.INPUT_TOPICS:
            continue
        assert entry.partition is not None and entry.generation is not None
        spans.append((entry.generation, entry.topic, entry.partition, span[0], span[1]))
    if not spans:
        return pl.DataFrame(schema=transform.VERDICT_SCHEMA)
    columns: list[list[Any]] = [list(c) for c in zip(*spans, strict=True)]
    with conn.cursor() as cur:
        cur.execute(_KNOWN, columns)
        rows = cur.fetchall()
    return pl.DataFrame(rows, schema=transform.VERDICT_SCHEMA, orient="row").unique(
        subset=list(transform.VERDICT_KEY), keep="first", maintain_order=True)
