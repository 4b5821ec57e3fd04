"""Pure Polars: raw lake lines of one topic → validated, typed, deduplicated event frames, then
the rows of each warehouse table, plus rejects (the line, its file and line number, the reason).

Nothing here touches files or the database, so every rule is unit-testable.

Decoding: each topic has one JSON schema, the union of its event types' fields, with every scalar
read as text (a number in the wrong place is then a *reject with a reason*, not a failed decode).
A batch that Polars cannot decode at all (not JSON, an object where a scalar belongs) is split in
halves until the offending lines are isolated; they become rejects, the rest is decoded.

The engine's verdicts: a line of an engine input topic that the engine dead-lettered (its
``DeadLetter`` envelope names the line's Kafka position) is a reject with the envelope's reason
code and reason (:func:`engine_verdicts`, :func:`apply_verdicts`), matched by position, never
by content: a record rejected for its key can be byte-identical to an accepted one.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import polars as pl
from airline_core.contract import Reason, Rejection, read_event
from airline_core.errors import InvalidEventError
from airline_core.events import (
    SCHEMA_MAJOR,
    DeadLetter,
    DecisionExplanation,
    check_schema_version,
    event_types_of,
)
from airline_core.ids import derive_id
from airline_core.topics import ENGINE_INPUTS, Topic

S: Final = pl.String()
TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S%.f%#z"
UTC_TIME: Final = pl.Datetime("us", "UTC")
MONEY: Final = pl.Decimal(10, 2)
#: Money as text: not negative, at most 2 decimals, fits numeric(10,2). Checked on the text
#: before the cast, because a cast rounds ("140.005" -> 140.00, "140.999" -> 141.00) and
#: accepts exponents ("1e3"): an amount that is not exactly representable is a reject, never a
#: silently different price. ASCII digits only (a regex ``\d`` would admit other scripts).
MONEY_TEXT: Final = r"^[0-9]{1,8}(\.[0-9]{1,2})?$"
_DECODE_BLOCK: Final = 65536

#: The ``component`` of the engine's dead letters (``airline_engine.core.COMPONENT``; a test
#: keeps them equal): only its verdicts are the engine's.
ENGINE_COMPONENT: Final = "airline-engine"
#: The engine's input topics, whose lines the engine's verdicts reject.
INPUT_TOPICS: Final = frozenset(str(t) for t in ENGINE_INPUTS)
#: A line's Kafka position (null for lines of the user's old day files).
POSITION: Final = ("kafka_generation", "kafka_partition", "kafka_offset")
#: Internal line flags: read again for a retraction (``RELOAD``), rejected by the engine's
#: verdict (``VERDICT``).
RELOAD: Final = "_reload"
VERDICT: Final = "_verdict"
#: The engine's verdict on one record: where it was (the generation of the lake roll of
#: ``dead_letter`` holding the envelope, then the envelope's source), and why.
VERDICT_SCHEMA: Final[dict[str, pl.DataType]] = {
    "generation": pl.Int64(), "source_topic": pl.String(), "source_partition": pl.Int64(),
    "source_offset": pl.Int64(), "reason_code": pl.String(), "reason": pl.String(),
    "dead_letter_event_id": pl.String(),
}
VERDICT_KEY: Final = ("generation", "source_topic", "source_partition", "source_offset")
#: A run's positions of accepted input lines (``etl_input_positions``).
POSITION_SCHEMA: Final[dict[str, pl.DataType]] = {
    "generation": pl.Int64(), "topic": pl.String(), "kafka_partition": pl.Int64(),
    "kafka_offset": pl.Int64(), "event_id": pl.String(),
}

COMMON: Final = {"event_type": S, "event_id": S, "event_time": S, "schema_version": S,
                 "flight_id": S}
PASSENGER: Final = pl.Struct({"passenger_id": S, "seat_id": S, "cabin_code": S})
CABIN: Final = pl.Struct({"cabin_code": S, "seat_count": S})
#: The fields of a promotion decision's explanation (schema 1.2), in the contract's order; each
#: is a column of ``fact_promotions`` and ``fact_promotion_end`` of the same name.
EXPLANATION_FIELDS: Final[tuple[str, ...]] = DecisionExplanation.__struct_fields__
EXPLANATION: Final = pl.Struct({f: S for f in EXPLANATION_FIELDS})
#: Per topic, the nested objects whose fields become top-level columns of the same names once
#: decoded (then typed and checked like any field): object column → its fields.
FLATTENED: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    Topic.PROMO_DECISIONS: {"explanation": EXPLANATION_FIELDS},
}

#: Per topic, the fields read (text leaves); fields of the contract not listed are ignored.
TOPIC_FIELDS: Final[dict[str, dict[str, pl.DataType]]] = {
    Topic.FLIGHT_LIFECYCLE: {
        "airline_code": S, "origin_airport": S, "destination_airport": S,
        "scheduled_departure_time": S, "scheduled_arrival_time": S, "aircraft_type": S,
        "total_seats": S, "cabins": pl.List(CABIN), "flight_number": S, "currency": S,
        "new_departure_time": S, "delay_minutes": S, "reason": S, "actual_departure_time": S,
    },
    Topic.BOOKINGS: {
        "booking_id": S, "channel": S, "fare_bucket": S, "currency": S, "total_price": S,
        "passengers": pl.List(PASSENGER), "segment": S, "promo_id": S,
        "discount_percentage": S, "reason": S,
    },
    Topic.SEAT_INVENTORY: {"time_to_departure_minutes": S, "currency": S},
    Topic.SEAT_MAP: {"booking_id": S, "passenger_id": S, "seat_id": S, "row": S, "letter": S,
                     "cabin_code": S},
    Topic.INVENTORY_METRICS: {
        "booked_seats": S, "total_seats": S, "load_factor": S, "minutes_to_departure": S,
        "seats_remaining": S, "bookings_last_hour": S, "bookings_last_day": S,
        "expected_booked_to_date": S, "forecast_load_factor": S,
        "active_discount_percentage": S, "active_promo_id": S, "state_version": S,
    },
    Topic.PROMO_DECISIONS: {
        "decision_source": S, "current_load_factor": S, "minutes_to_departure": S,
        "target_fare_bucket": S, "discount_percentage": S, "promo_id": S, "tier": S,
        "reason": S, "policy_version": S, "explanation": EXPLANATION,
    },
    Topic.DEAD_LETTER: {
        "source_topic": S, "source_partition": S, "source_offset": S, "reason": S,
        "component": S, "original_value_b64": S, "original_key_b64": S, "reason_code": S,
        "original_size": S, "original_sha256": S,
    },
}

# Field kinds: how a text leaf is typed and what makes it invalid.
TEXT, STR, TIME, UINT, INT, POS, MONEY_K, FRACTION, PCT, FLOAT, LIST, NELIST, BIGUINT = (
    "text", "str", "time", "uint", "int", "pos", "money", "fraction", "pct", "float", "list",
    "nelist", "biguint")
ESTIMATE: Final = "estimate"
INT32_MAX: Final = 2**31 - 1
#: The contract's bound of an explanation's estimate (``airline_core.events.Estimate``): what
#: the warehouse's numeric(12,3) and numeric(12,2) columns hold.
ESTIMATE_BOUND: Final = 1e8
_KIND_PROBLEM: Final = {
    TEXT: "missing or empty", STR: "missing", TIME: "missing or not an ISO-8601 time with zone",
    UINT: "missing or not an integer in [0, 2^31)", INT: "missing or not a 32-bit integer",
    POS: "missing or not an integer in [1, 2^31)", BIGUINT: "missing or not an integer >= 0",
    MONEY_K: "missing or not an amount >= 0 with at most 8 digits and 2 decimals "
             "(numeric(10,2), no rounding)",
    FRACTION: "missing or not a number in [0, 1]", PCT: "missing or not an integer in [0, 100]",
    FLOAT: "missing or not a number", LIST: "missing or not a list",
    ESTIMATE: "missing or not a number in [-1e8, 1e8]",
    NELIST: "missing or an empty list",
}

#: Field kinds of every field, per topic (a field has one kind whatever the event type).
FIELD_KINDS: Final[dict[str, dict[str, str]]] = {
    Topic.FLIGHT_LIFECYCLE: {
        "airline_code": TEXT, "origin_airport": TEXT, "destination_airport": TEXT,
        "scheduled_departure_time": TIME, "scheduled_arrival_time": TIME, "aircraft_type": TEXT,
        "total_seats": UINT, "cabins": LIST, "flight_number": STR, "currency": STR,
        "new_departure_time": TIME, "delay_minutes": UINT, "reason": STR,
        "actual_departure_time": TIME,
    },
    Topic.BOOKINGS: {
        "booking_id": TEXT, "channel": STR, "fare_bucket": TEXT, "currency": STR,
        "total_price": MONEY_K, "passengers": NELIST, "segment": STR, "promo_id": STR,
        "discount_percentage": PCT, "reason": STR,
    },
    Topic.SEAT_INVENTORY: {"time_to_departure_minutes": INT, "currency": STR},
    Topic.SEAT_MAP: {"booking_id": TEXT, "passenger_id": TEXT, "seat_id": TEXT, "row": POS,
                     "letter": TEXT, "cabin_code": TEXT},
    Topic.INVENTORY_METRICS: {
        "booked_seats": UINT, "total_seats": UINT, "load_factor": FRACTION,
        "minutes_to_departure": INT, "seats_remaining": UINT, "bookings_last_hour": UINT,
        "bookings_last_day": UINT, "expected_booked_to_date": FLOAT,
        "forecast_load_factor": FLOAT, "active_discount_percentage": PCT,
        "active_promo_id": STR, "state_version": BIGUINT,
    },
    Topic.PROMO_DECISIONS: {
        "decision_source": STR, "current_load_factor": FRACTION, "minutes_to_departure": INT,
        "target_fare_bucket": TEXT, "discount_percentage": PCT, "promo_id": STR, "tier": UINT,
        "reason": STR, "policy_version": STR,
        **dict.fromkeys(EXPLANATION_FIELDS, ESTIMATE),
    },
    Topic.DEAD_LETTER: {
        "source_topic": TEXT, "source_partition": UINT, "source_offset": BIGUINT, "reason": TEXT,
        "component": TEXT, "original_value_b64": STR, "original_key_b64": STR, "reason_code": STR,
        "original_size": BIGUINT, "original_sha256": STR,
    },
}

#: Required fields of each event type (the contract's fields without a default).
REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "FlightScheduled": ("airline_code", "origin_airport", "destination_airport",
                        "scheduled_departure_time", "scheduled_arrival_time", "aircraft_type",
                        "total_seats", "cabins"),
    "CheckInOpened": (), "BoardingStarted": (),
    "FlightDelayed": ("new_departure_time", "delay_minutes"),
    "FlightDeparted": ("actual_departure_time",),
    "FlightCancelled": (),
    "BookingCreated": ("booking_id", "channel", "fare_bucket", "currency", "total_price",
                       "passengers"),
    "BookingCancelled": ("booking_id", "fare_bucket", "passengers"),
    "CabinInventorySnapshot": ("time_to_departure_minutes",),
    "SeatAssigned": ("booking_id", "passenger_id", "seat_id", "row", "letter", "cabin_code"),
    "SeatReleased": ("booking_id", "passenger_id", "seat_id", "row", "letter", "cabin_code"),
    "CabinInventoryMetrics": ("booked_seats", "total_seats", "load_factor",
                              "minutes_to_departure"),
    "PromotionTriggered": ("decision_source", "current_load_factor", "minutes_to_departure",
                           "target_fare_bucket", "discount_percentage"),
    "PromotionEnded": ("promo_id", "decision_source", "reason"),
    "DeadLetter": ("source_topic", "source_partition", "source_offset", "reason", "component",
                   "original_value_b64"),
}

REJECT_SCHEMA: Final[dict[str, pl.DataType]] = {
    "source_file": S, "line_number": pl.Int64(), "topic": S, "reason": S, "raw_line": S,
    "event_id": S, "reason_code": S}
#: A legacy line (the user's old day files have no ``event_id``) is judged with this one, so the
#: contract decides on everything else exactly as for a current line.
_LEGACY_ID: Final = b'{"event_id":"legacy",'


def verdicts(values: Sequence[bytes], topic: str, legacy: bool | Sequence[bool] = False
             ) -> tuple[list[str | None], list[str | None]]:
    """The contract's verdict on each raw line: (reason text, reason code), both None when
    the line is accepted. The same decision as the engine's and the lake writer's
    (:func:`airline_core.contract.read_event`), on the same bytes."""
    flags = [legacy] * len(values) if isinstance(legacy, bool) else list(legacy)
    reasons: list[str | None] = []
    codes: list[str | None] = []
    for value, old in zip(values, flags, strict=True):
        if old and value.startswith(b"{") and b'"event_id"' not in value:
            value = _LEGACY_ID + value[1:]
        result = read_event(topic, value)
        if isinstance(result, Rejection):
            reasons.append(result.text)
            codes.append(str(result.code))
        else:
            reasons.append(None)
            codes.append(None)
    return reasons, codes


def engine_verdicts(lines: pl.DataFrame) -> pl.DataFrame:
    """The engine's verdicts carried by lines of ``dead_letter`` (``lake.LINE_SCHEMA``).

    One row (``VERDICT_SCHEMA``) per envelope the contract accepts, written by the engine
    (``component`` ``ENGINE_COMPONENT``; the lake writer's own envelopes name records it
    diverted, never lines), about a record of one of its input topics. The generation is that
    of the envelope's own roll (offsets restart when the lake moves to a new broker, and the
    engine there dead-letters the new broker's offsets). Lines of old day files have no
    generation: they carry no verdict. One verdict per position (the first read)."""
    if "contract_reason" not in lines.columns:
        reasons, _ = verdicts([line.encode() for line in lines["line"]], Topic.DEAD_LETTER)
        lines = lines.with_columns(pl.Series("contract_reason", reasons, dtype=S))
    if "kafka_generation" not in lines.columns:
        return pl.DataFrame(schema=VERDICT_SCHEMA)
    candidates = lines.filter(pl.col("contract_reason").is_null()
                              & pl.col("kafka_generation").is_not_null())
    rows: dict[str, list[object]] = {name: [] for name in VERDICT_SCHEMA}
    for line, generation in zip(candidates["line"], candidates["kafka_generation"], strict=True):
        letter = read_event(Topic.DEAD_LETTER, line.encode())
        if (not isinstance(letter, DeadLetter) or letter.component != ENGINE_COMPONENT
                or letter.source_topic not in INPUT_TOPICS):
            continue
        for name, value in (("generation", generation), ("source_topic", letter.source_topic),
                            ("source_partition", letter.source_partition),
                            ("source_offset", letter.source_offset),
                            ("reason_code", letter.reason_code), ("reason", letter.reason),
                            ("dead_letter_event_id", letter.event_id)):
            rows[name].append(value)
    return pl.DataFrame(rows, schema=VERDICT_SCHEMA).unique(
        subset=list(VERDICT_KEY), keep="first", maintain_order=True)


def _line_defaults(lines: pl.DataFrame) -> pl.DataFrame:
    """Lines built without positions or flags (tests, benchmarks) get null positions and
    false flags."""
    missing = [pl.lit(None, pl.Int64).alias(c) for c in POSITION if c not in lines.columns]
    missing += [pl.lit(False).alias(flag) for flag in (RELOAD, VERDICT)
                if flag not in lines.columns]
    return lines.with_columns(missing) if missing else lines


def apply_verdicts(lines: pl.DataFrame, topic: str, engine: pl.DataFrame) -> pl.DataFrame:
    """``lines`` of ``topic`` with the engine's verdicts applied: a line whose Kafka position
    (generation, partition, offset) the engine dead-lettered gets the envelope's reason and
    reason code (whatever the contract said: the engine's decision is the one kept), and
    ``VERDICT`` set. ``engine`` holds the verdicts (``VERDICT_SCHEMA``). Lines without a
    position (old day files) are never matched; neither are lines of topics the engine does
    not read."""
    lines = _line_defaults(lines)
    if "contract_reason" not in lines.columns:
        reasons, codes = verdicts_of(lines, topic)
        lines = lines.with_columns(pl.Series("contract_reason", reasons, dtype=S),
                                   pl.Series("reason_code", codes, dtype=S))
    if str(topic) not in INPUT_TOPICS or engine.height == 0:
        return lines
    mine = (engine.filter(pl.col("source_topic") == str(topic))
            .select(pl.col("generation").alias("kafka_generation"),
                    pl.col("source_partition").alias("kafka_partition"),
                    pl.col("source_offset").alias("kafka_offset"),
                    pl.col("reason").alias("_v_reason"), pl.col("reason_code").alias("_v_code"))
            .unique(subset=list(POSITION), keep="first", maintain_order=True))
    if mine.height == 0:
        return lines
    joined = lines.join(mine, on=list(POSITION), how="left", maintain_order="left")
    hit = pl.col("_v_reason").is_not_null()
    return joined.with_columns(
        pl.when(hit).then(pl.col("_v_reason")).otherwise(pl.col("contract_reason"))
        .alias("contract_reason"),
        pl.when(hit).then(pl.col("_v_code")).otherwise(pl.col("reason_code"))
        .alias("reason_code"),
        (pl.col(VERDICT) | hit).alias(VERDICT),
    ).drop("_v_reason", "_v_code")


def verdicts_of(lines: pl.DataFrame, topic: str) -> tuple[list[str | None], list[str | None]]:
    """:func:`verdicts` on the text of ``lines`` (their ``legacy`` flags respected)."""
    return verdicts([line.encode() for line in lines["line"]], topic, lines["legacy"].to_list())


@dataclass(frozen=True)
class TopicEvents:
    """The outcome of validating one topic's lines."""

    topic: str
    events: pl.DataFrame  # typed, one row per distinct event_id
    rejects: pl.DataFrame  # REJECT_SCHEMA, of the lines read for the first time
    lines: int  # lines read for the first time
    duplicates: int
    #: Accepted lines of an engine input topic that have a Kafka position (POSITION_SCHEMA).
    positions: pl.DataFrame = dataclasses.field(
        default_factory=lambda: pl.DataFrame(schema=POSITION_SCHEMA))
    #: Rejects of lines read again whose rows the engine's verdict retracts (REJECT_SCHEMA).
    retracted: pl.DataFrame = dataclasses.field(
        default_factory=lambda: pl.DataFrame(schema=REJECT_SCHEMA))
    reloaded: int = 0  # lines read again (for a retraction)


def topic_dtype(topic: str) -> pl.Struct:
    """The JSON schema the topic's lines are decoded with."""
    return pl.Struct({**COMMON, **TOPIC_FIELDS[topic]})


def _rejects(frame: pl.DataFrame, topic: str, reason: pl.Expr | str,
             code: pl.Expr | str = str(Reason.WAREHOUSE_REFUSED)) -> pl.DataFrame:
    """Reject rows of ``frame``. Without a ``code``, the contract accepted the line but it does
    not fit the warehouse: a disagreement the tests make sure never happens."""
    reason_expr = pl.lit(reason) if isinstance(reason, str) else reason
    code_expr = pl.lit(code) if isinstance(code, str) else code
    event_id = (pl.col("event_id") if "event_id" in frame.columns else pl.lit(None, S))
    return frame.select(
        pl.col("source_file"), pl.col("line_number"), pl.lit(topic).alias("topic"),
        reason_expr.alias("reason"), pl.col("line").alias("raw_line"),
        event_id.cast(S).alias("event_id"), code_expr.cast(S).alias("reason_code"),
    )


def _decode(lines: pl.DataFrame, topic: str, dtype: pl.Struct) -> tuple[pl.DataFrame,
                                                                        list[pl.DataFrame]]:
    """Decode ``lines``; isolate undecodable lines by bisection. Returns (decoded, rejects)."""
    try:
        decoded = lines.with_columns(pl.col("line").str.json_decode(dtype).alias("_json"))
        return decoded, []
    except pl.exceptions.PolarsError as e:
        if lines.height == 1:
            message = str(e).splitlines()[0].removeprefix("error deserializing JSON: ")
            return lines.clear().with_columns(pl.lit(None, dtype).alias("_json")), [
                _rejects(lines, topic, f"not valid JSON for topic {topic}: {message}"[:500])]
    half = lines.height // 2
    left, left_rejects = _decode(lines.slice(0, half), topic, dtype)
    right, right_rejects = _decode(lines.slice(half), topic, dtype)
    return pl.concat([left, right]), left_rejects + right_rejects


def decode_lines(lines: pl.DataFrame, topic: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """JSON-decode a topic's lines into one column per field (text), plus undecodable rejects."""
    dtype = topic_dtype(topic)
    parts, rejects = [], []
    for offset in range(0, max(lines.height, 1), _DECODE_BLOCK):
        part, bad = _decode(lines.slice(offset, _DECODE_BLOCK), topic, dtype)
        parts.append(part)
        rejects.extend(bad)
    decoded = pl.concat(parts) if parts else lines.with_columns(pl.lit(None, dtype).alias("_json"))
    not_object = decoded.filter(pl.col("_json").is_null())
    if not_object.height:
        rejects.append(_rejects(not_object, topic, "not a JSON object"))
    decoded = decoded.filter(pl.col("_json").is_not_null()).unnest("_json")
    decoded = _flatten(decoded, topic)
    reject_frame = (pl.concat(rejects) if rejects
                    else pl.DataFrame(schema=REJECT_SCHEMA))
    return decoded, reject_frame


def _flatten(decoded: pl.DataFrame, topic: str) -> pl.DataFrame:
    """The fields of the topic's nested objects (``FLATTENED``) as top-level columns (null when
    the object is absent or null); the object column stays, for :func:`_nested_checks`."""
    return decoded.with_columns([
        pl.col(column).struct.field(f).alias(f)
        for column, fields in FLATTENED.get(topic, {}).items() for f in fields])


def _typed(column: str, kind: str) -> pl.Expr:
    """The typed value of a text leaf (null when it does not parse)."""
    c = pl.col(column)
    if kind == TIME:
        return c.str.to_datetime(TIME_FORMAT, strict=False, time_zone="UTC", time_unit="us")
    if kind in (UINT, INT, POS, PCT, BIGUINT):
        return c.cast(pl.Int64, strict=False)
    if kind == MONEY_K:
        return pl.when(c.str.contains(MONEY_TEXT)).then(c.cast(MONEY, strict=False))
    if kind in (FRACTION, FLOAT, ESTIMATE):
        return c.cast(pl.Float64, strict=False)
    return c


def _invalid(column: str, kind: str) -> pl.Expr:
    """True when a present (or required) value is not acceptable for its kind."""
    c = pl.col(column)
    if kind == TEXT:
        return c.is_null() | (c == "")
    if kind in (STR, LIST):
        return c.is_null()
    if kind == NELIST:
        return c.is_null() | (c.list.len() == 0)
    if kind == UINT:
        return c.is_null() | (c < 0) | (c > INT32_MAX)
    if kind == BIGUINT:
        return c.is_null() | (c < 0)
    if kind == INT:
        return c.is_null() | (c.abs() > INT32_MAX)
    if kind == POS:
        return c.is_null() | (c < 1) | (c > INT32_MAX)
    if kind == MONEY_K:
        return c.is_null() | (c < 0)
    if kind == FRACTION:
        return c.is_null() | (c < 0) | (c > 1) | c.is_nan()
    if kind == PCT:
        return c.is_null() | (c < 0) | (c > 100)
    if kind == FLOAT:
        return c.is_null() | c.is_nan()
    if kind == ESTIMATE:  # NaN is outside every interval
        return c.is_null() | c.is_nan() | (c.abs() > ESTIMATE_BOUND)
    return c.is_null()


def _legacy_ids(frame: pl.DataFrame, topic: str) -> pl.Series:
    """Stable ids for old-layout lines without ``event_id``: from topic and the line's sha256."""
    return pl.Series("event_id", [
        derive_id("legacy", topic, hashlib.sha256(line.encode()).hexdigest())
        for line in frame["line"]
    ], dtype=S)


def validate(lines: pl.DataFrame, topic: str, engine: pl.DataFrame | None = None,
             keep: pl.Expr | None = None) -> TopicEvents:
    """Decode, validate, type and deduplicate one topic's lines (``lake.LINE_SCHEMA``).

    The contract decides first (its verdict comes with the lines from :mod:`airline_etl.lake`,
    or is made here from their text), then the engine's verdicts (``engine``,
    ``VERDICT_SCHEMA``) by position: a line either rejects is a reject with its reason code,
    the same the engine gives the record. The rest is typed for the warehouse.

    Lines flagged ``RELOAD`` were loaded by an earlier run and are read again because a verdict
    retracts rows they share keys with: of those, only the accepted lines ``keep`` selects
    become events, and only the lines a verdict rejects become rejects (``retracted``); they
    are not counted in ``lines``."""
    topic = str(Topic(topic))
    lines = apply_verdicts(lines, topic, engine if engine is not None
                           else pl.DataFrame(schema=VERDICT_SCHEMA))
    reload = pl.col(RELOAD)
    total = lines.filter(~reload).height
    again = lines.height - total
    reload_files = lines.filter(reload)["source_file"].unique().implode()
    refused = lines.filter(pl.col("contract_reason").is_not_null())
    contract_rejects = _rejects(refused.filter(~reload), topic, pl.col("contract_reason"),
                                pl.col("reason_code"))
    retracted = _rejects(refused.filter(reload & pl.col(VERDICT)), topic,
                         pl.col("contract_reason"), pl.col("reason_code"))
    lines = lines.filter(pl.col("contract_reason").is_null()).drop("contract_reason",
                                                                   "reason_code")
    decoded, decode_rejects = decode_lines(lines, topic)
    decode_rejects = pl.concat([contract_rejects, decode_rejects])
    # Old-layout lines have no event_id: derive a stable one from the line itself.
    missing_id = pl.col("event_id").is_null() & pl.col("legacy")
    if decoded.height and decoded.select(missing_id.any()).item():
        needs = decoded.filter(missing_id)
        derived = needs.with_columns(_legacy_ids(needs, topic))
        decoded = pl.concat([decoded.filter(~missing_id), derived])
    kinds = FIELD_KINDS[topic]
    raw_present = {f: pl.col(f).is_not_null() for f in kinds}
    typed = decoded.with_columns(
        pl.col("event_time").str.to_datetime(TIME_FORMAT, strict=False, time_zone="UTC",
                                             time_unit="us").alias("_event_time"),
        *[_typed(f, k).alias(f"_t_{f}") for f, k in kinds.items()],
    )
    allowed = list(event_types_of(Topic(topic)))
    checks: list[pl.Expr] = [
        pl.when(pl.col("event_type").is_null()).then(pl.lit("event_type missing")),
        pl.when(~pl.col("event_type").is_in(allowed)).then(
            pl.format("event_type {} does not belong on topic " + topic, pl.col("event_type"))),
        pl.when(pl.col("event_id").is_null() | (pl.col("event_id") == "")).then(
            pl.lit("event_id missing")),
        _schema_version_check(decoded),
        pl.when(pl.col("_event_time").is_null()).then(
            pl.lit("event_time missing or not an ISO-8601 time with zone")),
        pl.when(pl.col("flight_id").is_null() | (pl.col("flight_id") == "")).then(
            pl.lit("flight_id missing or empty")),
    ]
    for event_type, required in REQUIRED.items():
        if event_type not in allowed:
            continue
        is_type = pl.col("event_type") == event_type
        for field, kind in kinds.items():
            if field in required:
                cond = is_type & _invalid(f"_t_{field}", kind)
            else:  # an optional field, when present, must only have the right type
                loose = {TEXT: STR, NELIST: LIST}.get(kind, kind)
                cond = is_type & raw_present[field] & _invalid(f"_t_{field}", loose)
            checks.append(pl.when(cond).then(
                pl.lit(f"{event_type}: {field} {_KIND_PROBLEM[kind]}")))
    nested = _nested_checks(topic)
    checks.extend(nested)
    with_reason = typed.with_columns(pl.coalesce(checks).alias("_reason"))
    bad_rows = with_reason.filter(pl.col("_reason").is_not_null())
    rejects = pl.concat([decode_rejects, _rejects(bad_rows, topic, pl.col("_reason"))])
    if again:  # lines read again were judged when first read: only their verdicts are news
        rejects = rejects.filter(~pl.col("source_file").is_in(reload_files))
    good = with_reason.filter(pl.col("_reason").is_null())
    if again:
        good = good.filter(~reload | (keep if keep is not None else pl.lit(True)))
    positions = pl.DataFrame(schema=POSITION_SCHEMA)
    if topic in INPUT_TOPICS:
        positions = good.filter(pl.col("kafka_offset").is_not_null()).select(
            pl.col("kafka_generation").alias("generation"), pl.lit(topic).alias("topic"),
            "kafka_partition", "kafka_offset", pl.col("event_id").cast(S),
        ).unique(subset=["generation", "topic", "kafka_partition", "kafka_offset"],
                 keep="first", maintain_order=True)
    # Replace text leaves by their typed values.
    events = good.select(
        "event_id", "event_type", pl.col("_event_time").alias("event_time"),
        "flight_id", "schema_version", "source_file", "line_number", "line",
        *[pl.col(f"_t_{f}").alias(f) for f in kinds],
    )
    before = events.height
    events = events.unique(subset="event_id", keep="first", maintain_order=True)
    return TopicEvents(topic=topic, events=events, rejects=rejects.sort(
        "source_file", "line_number"), lines=total, duplicates=before - events.height,
        positions=positions, retracted=retracted.sort("source_file", "line_number"),
        reloaded=again)


def _schema_version_check(decoded: pl.DataFrame) -> pl.Expr:
    """The reason for an unsupported ``schema_version`` (absent is accepted: old events).

    The rule is the contract's own (:func:`airline_core.events.check_schema_version`: same
    major as ``SCHEMA_MAJOR``, any minor), applied to each distinct version present (a handful
    per batch), so the ETL and every other reader accept exactly the same versions.
    """
    if not decoded.height:
        return pl.lit(None, S)
    problems: dict[str, str] = {}
    for version in decoded["schema_version"].drop_nulls().unique().to_list():
        try:
            check_schema_version(version)
        except (InvalidEventError, ValueError) as e:
            problems[version] = (f"unsupported schema_version {version} (this reader "
                                 f"understands {SCHEMA_MAJOR}.x: {e})")[:500]
    if not problems:
        return pl.lit(None, S)
    return pl.col("schema_version").replace_strict(problems, default=None, return_dtype=S)


def _nested_checks(topic: str) -> list[pl.Expr]:
    """Checks inside lists (passengers, cabins) and objects (a decision's explanation)."""
    def any_blank(column: str, fields: tuple[str, ...]) -> pl.Expr:
        element_bad = pl.any_horizontal(
            [pl.element().struct.field(f).fill_null("") == "" for f in fields])
        return pl.col(column).list.eval(element_bad).list.any().fill_null(False)

    if topic == Topic.BOOKINGS:
        return [pl.when(any_blank("passengers", ("passenger_id", "seat_id", "cabin_code"))).then(
            pl.lit("passengers: an entry lacks passenger_id, seat_id or cabin_code"))]
    if topic == Topic.FLIGHT_LIFECYCLE:
        bad_count = pl.col("cabins").list.eval(
            pl.element().struct.field("seat_count").cast(pl.Int64, strict=False).fill_null(-1)
            .is_between(0, INT32_MAX).not_()).list.any().fill_null(False)
        return [pl.when(any_blank("cabins", ("cabin_code", "seat_count")) | bad_count).then(
            pl.lit("cabins: an entry lacks cabin_code or a seat_count >= 0"))]
    if topic == Topic.PROMO_DECISIONS:  # an explanation, when present, has every field
        partial = pl.col("explanation").is_not_null() & pl.any_horizontal(
            [pl.col("explanation").struct.field(f).is_null() for f in EXPLANATION_FIELDS])
        return [pl.when(partial).then(pl.lit(
            "explanation: lacks one of " + ", ".join(EXPLANATION_FIELDS)))]
    return []
