"""What a reader accepts from a topic: one decision, made the same way by every component.

:func:`read_event` turns any byte sequence into either a validated event or a
:class:`Rejection` with a stable :class:`Reason` code and a detail. It never raises: size,
line and nesting limits are checked on the bytes *before* parsing (so no input can make the
parser recurse or allocate without bound), then the value is decoded against the typed,
range-checked contract of :mod:`airline_core.events`, and whatever the decoder raises becomes
a reason. The engine, the lake writer's classification and the ETL all call it, so a record
one of them rejects is rejected by the others with the same code.

Rules that need state (the flight's schedule, what was already seen, the engine's event-time
watermark) are the engine's alone; their codes are listed here too, so a dead letter always
carries a code from this one list. ``docs/contract.md`` documents every code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Final, NamedTuple, TypeGuard

import msgspec

from airline_core import events as ev
from airline_core.errors import UnsupportedSchemaError
from airline_core.topics import Topic

#: Largest value accepted (the biggest event of the contract, a snapshot of a wide-body
#: aircraft with every fare bucket, is under 16 KiB).
MAX_VALUE_BYTES: Final = 256 * 1024
#: Deepest nesting of arrays and objects accepted (the contract's deepest event nests 5).
MAX_DEPTH: Final = 16


class Reason(StrEnum):
    """Why a record was rejected: the stable codes of dead letters and ETL rejects."""

    # ---- decided on the bytes and the contract, by every reader
    TOMBSTONE = "tombstone"
    """The record has no value (a tombstone on an event topic)."""
    EMPTY = "empty_value"
    """The value is empty."""
    OVERSIZED = "oversized"
    """The value is larger than ``MAX_VALUE_BYTES``."""
    MULTILINE = "multiline"
    """The value holds a line break, so it cannot be one line of the JSON Lines lake."""
    TOO_DEEP = "too_deep"
    """Arrays and objects nest deeper than ``MAX_DEPTH``."""
    NOT_UTF8 = "not_utf8"
    """The value is not UTF-8 text."""
    NUL_CHARACTER = "nul_character"
    """A string holds the NUL character (``\\u0000``), which the warehouse cannot store."""
    NOT_JSON = "not_json"
    """The value is not one JSON document."""
    WRONG_TOPIC = "wrong_topic"
    """The ``event_type`` is missing, unknown, or not one this topic carries."""
    UNSUPPORTED_SCHEMA = "unsupported_schema"
    """The ``schema_version`` has a major version this reader does not know."""
    EVENT_TIME_OUT_OF_RANGE = "time_out_of_range"
    """A timestamp is outside the contract's range (1970 to 2100) or inconsistent with the
    event's other times (a departure more than the sale horizon ahead)."""
    INVALID_FIELD = "invalid_field"
    """A field is missing, of the wrong type, or out of its range."""
    # ---- decided by the engine, from the record's Kafka key
    MISSING_KEY = "missing_key"
    """The record has no key (every event topic is keyed by ``flight_id``)."""
    KEY_MISMATCH = "key_mismatch"
    """The record's key is not its ``flight_id``."""
    # ---- decided by the engine, from its state
    AHEAD_OF_WATERMARK = "ahead_of_watermark"
    """The event time is further ahead of its input's event-time watermark than
    ``ENGINE_MAX_LEAD_MINUTES`` (it would hold back every record behind it)."""
    UNKNOWN_FLIGHT = "unknown_flight"
    """No ``FlightScheduled`` for the flight arrived within ``ENGINE_UNKNOWN_FLIGHT_MINUTES``."""
    BEFORE_SALE_OPENING = "before_sale_opening"
    """The event is dated before its flight opened for sale."""
    FLIGHT_CLOSED = "flight_closed"
    """A booking or seat change for a flight that has departed or was cancelled (or was
    forgotten after ``ENGINE_CLOSED_RETENTION_MINUTES``)."""
    CONFLICTING_DUPLICATE = "conflicting_duplicate"
    """An ``event_id`` seen before, with different content."""
    OVERSOLD = "oversold_cabin"
    """A booking for more seats than its cabin has left."""
    UNKNOWN_BOOKING = "unknown_booking"
    """A cancellation of a booking the flight does not hold."""
    INCONSISTENT_SCHEDULE = "inconsistent_schedule"
    """A ``FlightScheduled`` that contradicts the flight already scheduled (another departure,
    other cabins): the first schedule stands."""
    # ---- the ETL
    WAREHOUSE_REFUSED = "warehouse_refused"
    """The ETL could not type a line the contract accepted. Never expected (a test proves every
    accepted value fits its column); seen, it is a bug to report."""


class Rejection(NamedTuple):
    """A record not accepted: its code and a human detail (with the field, when known)."""

    code: Reason
    detail: str

    @property
    def text(self) -> str:
        """``<code>: <detail>``, the ``reason`` of a dead letter or ETL reject."""
        return f"{self.code}: {self.detail}"[:2000]


# A JSON string: quote, then runs of plain bytes or escapes (possessive: linear, no backtracking).
_STRING: Final = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")
_OPEN: Final = frozenset(b"[{")
#: The escape ``\u0000`` itself, not an escaped backslash followed by the text "u0000".
_NUL_ESCAPE: Final = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def nesting_depth_exceeds(value: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects in ``value`` nest deeper than ``limit``, without parsing.

    Fast path: fewer brackets than the limit cannot nest deeper. Otherwise the strings are
    blanked out (a bracket inside a string is text) and the remaining brackets counted."""
    if value.count(b"[") + value.count(b"{") <= limit:
        return False
    depth = 0
    for byte in _STRING.sub(b'""', value).translate(None, _NOT_BRACKETS):
        if byte in _OPEN:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def check_bytes(value: bytes | None) -> Rejection | None:
    """The checks made on the raw value before any parsing (size, line, nesting, encoding)."""
    if value is None:
        return Rejection(Reason.TOMBSTONE, "record has no value (tombstone) on an event topic")
    if not value:
        return Rejection(Reason.EMPTY, "record value is empty")
    if len(value) > MAX_VALUE_BYTES:
        return Rejection(Reason.OVERSIZED,
                         f"value of {len(value)} bytes exceeds {MAX_VALUE_BYTES} bytes")
    if b"\n" in value or b"\r" in value:
        return Rejection(Reason.MULTILINE, "value contains a line break: cannot be one line "
                                           "of JSON Lines")
    if value.count(b"[") + value.count(b"{") > MAX_DEPTH and nesting_depth_exceeds(value):
        return Rejection(Reason.TOO_DEEP, f"arrays and objects nest deeper than {MAX_DEPTH}")
    if not value.isascii():
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as e:
            return Rejection(Reason.NOT_UTF8, f"not UTF-8: {e.reason} at byte {e.start}")
    if b"u0000" in value and _NUL_ESCAPE.search(value):
        return Rejection(Reason.NUL_CHARACTER, "a string holds the NUL character (U+0000)")
    return None


def all_pass_byte_checks(values: Sequence[bytes | None]) -> TypeGuard[Sequence[bytes]]:
    """Whether every value passes :func:`check_bytes`, decided for the whole batch at once.

    The scans for line breaks, non-ASCII bytes and the NUL escape run once over the joined
    values instead of once per value. Conservative: ``False`` also for a batch holding any
    non-ASCII byte or the text ``u0000`` (both legal), so a caller falls back to
    :func:`check_bytes` per value and gets the exact verdict; ``True`` is always exact."""
    for value in values:
        if not value or len(value) > MAX_VALUE_BYTES:
            return False
        if value.count(b"[") + value.count(b"{") > MAX_DEPTH and nesting_depth_exceeds(value):
            return False
    joined = b" ".join(values)  # type: ignore[arg-type]  # no None: refused above
    return (joined.isascii() and b"\n" not in joined and b"\r" not in joined
            and b"u0000" not in joined)


#: Money is written as plain digits ("140.00", or the number 140.5): the decoder would also
#: take "+1", " 1", "1.", "1_000" or other scripts' digits, which the warehouse would not.
#: After a ``"price"`` or ``"total_price"`` key: the colon, then a plain amount, quoted or not,
#: then the end of the value.
_KEY_COLON: Final = re.compile(rb"\s*+:")
_PLAIN: Final = (rb'\s*+(?:"[0-9]{1,8}(?:\.[0-9]{1,2})?"'
                 rb'|[0-9]{1,8}(?:\.[0-9]{1,2})?(?![0-9.eE]))\s*+[,}\]]')
_PLAIN_AMOUNT: Final = re.compile(_PLAIN)
#: Any key ending in ``price`` whose value is not a plain amount: a superset of what
#: :func:`_odd_money` rejects, found in one search (a quarter of the cost of the exact scan), so
#: the exact scan runs only for the rare value it flags.
_MAYBE_ODD: Final = re.compile(rb'price"\s*+:(?!' + _PLAIN + rb")")


def _odd_money(value: bytes) -> Rejection | None:
    """The first amount not written as plain digits (only ``"price"`` and ``"total_price"``
    keys are money)."""
    if _MAYBE_ODD.search(value) is None:
        return None
    start = value.find(b'price"')
    while start >= 0:
        key_end = start + 6
        is_key = value[start - 1:start] == b'"' or value[start - 7:start] == b'"total_'
        colon = _KEY_COLON.match(value, key_end) if is_key else None
        if colon is not None and _PLAIN_AMOUNT.match(value, colon.end()) is None:
            shown = value[colon.end():colon.end() + 40].strip().decode("utf-8", "replace")
            return Rejection(Reason.INVALID_FIELD, f"amount {shown} is not plain digits with at "
                                                   "most 8 before and 2 after the point")
        start = value.find(b'price"', key_end)
    return None


class _Version(msgspec.Struct):
    schema_version: str = ev.SCHEMA_VERSION


_VERSION_DECODER: Final = msgspec.json.Decoder(_Version)


def _unsupported_version(value: bytes) -> Rejection | None:
    """A record of another major version is ``unsupported_schema`` whatever else is wrong
    with it (a newer major may lack fields this reader requires)."""
    try:
        ev.check_schema_version(_VERSION_DECODER.decode(value).schema_version)
    except UnsupportedSchemaError as e:
        return Rejection(Reason.UNSUPPORTED_SCHEMA, str(e))
    except Exception:
        pass
    return None


def _decoders() -> dict[str, msgspec.json.Decoder[Any]]:
    return {str(topic): msgspec.json.Decoder(types)
            for topic, types in ev.TOPIC_EVENT_TYPES.items()}


_DECODERS: Final = _decoders()


def _cause(error: BaseException) -> BaseException | None:
    return error.__cause__ or error.__context__


def _validation_rejection(error: msgspec.ValidationError, value: bytes) -> Rejection:
    cause = _cause(error)
    message = str(error)
    if isinstance(cause, UnsupportedSchemaError):
        return Rejection(Reason.UNSUPPORTED_SCHEMA, str(cause))
    unsupported = _unsupported_version(value)
    if unsupported is not None:
        return unsupported
    if isinstance(cause, ev.TimeRangeError):
        return Rejection(Reason.EVENT_TIME_OUT_OF_RANGE, message)
    if message.endswith("`$.event_type`") or "missing required field `event_type`" in message:
        return Rejection(Reason.WRONG_TOPIC, message)
    return Rejection(Reason.INVALID_FIELD, message)


def read_event(topic: Topic | str, value: bytes | None) -> ev.Event | Rejection:
    """The event ``value`` holds, validated for ``topic`` (its logical name), or why not.

    Never raises for any ``value``: every failure is a :class:`Rejection`."""
    problem = check_bytes(value)
    if problem is not None:
        return problem
    decoder = _DECODERS.get(str(topic))
    if decoder is None:
        return Rejection(Reason.WRONG_TOPIC, f"topic {topic!r} carries no events of the contract")
    assert value is not None  # check_bytes refused None
    try:
        event: ev.Event = decoder.decode(value)
    except msgspec.ValidationError as e:
        return _validation_rejection(e, value)
    except msgspec.DecodeError as e:
        return Rejection(Reason.NOT_JSON, f"not one JSON document: {e}")
    except UnsupportedSchemaError as e:
        return Rejection(Reason.UNSUPPORTED_SCHEMA, str(e))
    except UnicodeError as e:
        return Rejection(Reason.NOT_UTF8, f"not UTF-8: {e}")
    except RecursionError:
        return Rejection(Reason.TOO_DEEP, "nesting too deep to decode")
    except Exception as e:
        return Rejection(Reason.INVALID_FIELD, f"{type(e).__name__}: {e}")
    return _odd_money(value) or event


def check_key(event: ev.Event, key: bytes | None) -> Rejection | None:
    """The Kafka key rule: present, and equal to the event's ``flight_id`` (UTF-8)."""
    if key is None:
        return Rejection(Reason.MISSING_KEY, "record has no key; every event topic is keyed by "
                                             "flight_id")
    if key != event.key:
        shown = key[:80].decode("utf-8", "replace")
        return Rejection(Reason.KEY_MISMATCH,
                         f"record key {shown!r} does not match flight_id {event.flight_id!r}")
    return None


def read_record(topic: Topic | str, key: bytes | None, value: bytes | None
                ) -> ev.Event | Rejection:
    """:func:`read_event` plus :func:`check_key`: what a keyed consumer (the engine) accepts."""
    result = read_event(topic, value)
    if isinstance(result, Rejection):
        return result
    return check_key(result, key) or result
