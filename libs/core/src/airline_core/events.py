"""The event contract: one module, used by every component and test.

Every Kafka message has key = ``flight_id`` (UTF-8) and a JSON value that starts with
``event_type``, ``event_id``, ``event_time``, ``schema_version``, ``flight_id``, then the type's
own fields. Names and fields of the user's first versions are kept (see
``../shared/seed/first-versions.md``); fields are only ever added, never renamed.

Money is an exact :class:`~decimal.Decimal` in code and a string in JSON (``"140.00"``).
Times are timezone-aware UTC datetimes in code and ISO-8601 with ``Z`` in JSON; they are
*simulated* time, never the wall clock.

Compatibility rule for ``schema_version`` (``MAJOR.MINOR``):

* A reader accepts every minor version of the major version it knows. Newer minors may add
  fields; a reader ignores fields it does not know and fills fields an older minor lacks with
  their documented defaults. So a new field always has a default.
* A different major version is a breaking change: the reader rejects the record with
  :class:`~airline_core.errors.UnsupportedSchemaError`, which sends it to ``dead_letter``
  (it is never guessed at, and never dropped).

Versions: 1.0 the first; 1.1 bounds every field (lengths, counts, minutes, money, times) and
gives dead letters ``reason_code``, ``original_size``, ``original_sha256`` and
``original_truncated``; 1.2 gives ``PromotionTriggered`` and ``PromotionEnded`` an optional
``explanation`` (:class:`DecisionExplanation`). What a reader accepts from a topic is decided in
:mod:`airline_core.contract`, which every reader calls.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

import msgspec

from airline_core.errors import InvalidEventError, UnsupportedSchemaError
from airline_core.topics import Topic

SCHEMA_MAJOR: Final = 1
SCHEMA_MINOR: Final = 2
SCHEMA_VERSION: Final = f"{SCHEMA_MAJOR}.{SCHEMA_MINOR}"
_KNOWN_VERSIONS: Final = frozenset(f"{SCHEMA_MAJOR}.{m}" for m in range(SCHEMA_MINOR + 1))

#: The plausible range of every timestamp of the contract. Times outside it (before 1970, or so
#: far ahead that minutes to departure would not fit the warehouse) are rejected, whatever the
#: record's other fields say; the engine bounds times further against its event-time watermark.
MIN_TIME: Final = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME: Final = datetime(2100, 1, 1, tzinfo=UTC)
#: Largest seat count of anything (an A380 seats at most 853).
MAX_SEATS: Final = 1000
#: Largest number of days a flight is on sale before departure (airlines sell about 330 to 360).
MAX_SALE_DAYS: Final = 400
#: Largest absolute minutes to departure: the whole sale horizon, on either side.
MAX_MINUTES: Final = 2 * MAX_SALE_DAYS * 24 * 60
#: Largest amount of money (the warehouse's numeric(10,2)).
MAX_MONEY: Final = Decimal("99999999.99")
INT64_MAX: Final = 2**63 - 1

#: A timezone-aware timestamp; naive times are invalid because their zone would be a guess.
#: :func:`check_time` bounds it in ``__post_init__`` (msgspec cannot bound a datetime).
UtcDateTime = Annotated[datetime, msgspec.Meta(tz=True)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
SeatCount = Annotated[int, msgspec.Meta(ge=0, le=MAX_SEATS)]
Minutes = Annotated[int, msgspec.Meta(ge=-MAX_MINUTES, le=MAX_MINUTES)]
#: Exact money. msgspec cannot bound a Decimal, so the structs holding money check it in
#: ``__post_init__`` with :func:`check_money` (finite, 0 to MAX_MONEY, at most 2 decimals).
Money = Decimal
Fraction = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
#: A ratio that may exceed 1 (a forecast above capacity), bounded so it stays a sane number.
Ratio = Annotated[float, msgspec.Meta(ge=0.0, le=1000.0)]
Percentage = Annotated[int, msgspec.Meta(ge=0, le=100)]
#: Largest party on one booking (airlines take at most 9 passengers per reservation).
MAX_PARTY: Final = 9
#: Largest seat row number.
MAX_ROWS: Final = 999
#: An identifier or code: not empty, and short.
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
#: An optional short string (may be empty).
Label = Annotated[str, msgspec.Meta(max_length=128)]
#: Free text (reasons); long enough for an explanation, never unbounded.
Prose = Annotated[str, msgspec.Meta(max_length=2000)]

Segment = Literal["business", "leisure"]


def check_schema_version(version: str) -> None:
    """Apply the compatibility rule: same major accepted (any minor), anything else rejected."""
    if version in _KNOWN_VERSIONS:  # nearly every event: no parsing
        return
    major, _, minor = version.partition(".")
    if not (major.isascii() and major.isdigit() and minor.isascii() and minor.isdigit()):
        raise UnsupportedSchemaError(f"schema_version {version!r} is not MAJOR.MINOR")
    if int(major) != SCHEMA_MAJOR:
        raise UnsupportedSchemaError(
            f"schema_version {version} has major {major}; this reader understands {SCHEMA_MAJOR}.x"
        )


_CENT: Final = Decimal("0.01")
_UNIT: Final = Decimal("1")
_TENTH: Final = Decimal("0.1")


def check_money(name: str, value: Decimal) -> None:
    """Reject NaN, infinities, negative or huge amounts, sub-cent digits and exponents ("1e3"):
    money is exact, and written as plain digits. (The exponent is tested with ``same_quantum``:
    a fifth of the cost of ``as_tuple()``, and this runs for every price of every snapshot.)"""
    if (not value.is_finite() or value < 0 or value > MAX_MONEY
            or not (value.same_quantum(_CENT) or value.same_quantum(_UNIT)
                    or value.same_quantum(_TENTH))):
        raise ValueError(f"{name} {value} is not an amount from 0 to {MAX_MONEY} with at most "
                         "2 decimals")


class TimeRangeError(ValueError):
    """A timestamp outside the contract's range, or inconsistent with the event's other times."""


def check_time(name: str, value: datetime) -> None:
    """Reject a timestamp outside [MIN_TIME, MAX_TIME)."""
    if not MIN_TIME <= value < MAX_TIME:
        raise TimeRangeError(f"{name} {value.isoformat()} is outside {MIN_TIME.year} to "
                         f"{MAX_TIME.year}")


class Event(msgspec.Struct, tag_field="event_type", kw_only=True, frozen=True):
    """Fields every event carries, in this order, before its own."""

    event_id: Text
    event_time: UtcDateTime
    schema_version: Annotated[str, msgspec.Meta(max_length=16)] = SCHEMA_VERSION
    flight_id: Text

    def __post_init__(self) -> None:
        check_schema_version(self.schema_version)
        check_time("event_time", self.event_time)

    @property
    def key(self) -> bytes:
        """The Kafka key: every topic is keyed (and so partitioned) by flight."""
        return self.flight_id.encode()


class Record(msgspec.Struct, kw_only=True, frozen=True):
    """Base of the nested value objects inside events."""


# --------------------------------------------------------------------------- flight_lifecycle
class Cabin(Record, kw_only=True, frozen=True):
    """A cabin of the aircraft (the user's ``cabins`` entries)."""

    cabin_code: Text
    seat_count: SeatCount


class FareBucketSpec(Record, kw_only=True, frozen=True):
    """A bookable fare bucket: its cabin, its price and the seats it may sell (nested: a cheaper
    bucket's seats are also available to dearer buckets of the same cabin)."""

    bucket: Text
    cabin_code: Text
    price: Money
    seats: SeatCount

    def __post_init__(self) -> None:
        check_money("price", self.price)


class FlightScheduled(Event, tag="FlightScheduled", kw_only=True, frozen=True):
    """A flight opens for sale. The user's fields, plus flight number, fare buckets and currency."""

    airline_code: Text
    origin_airport: Text
    destination_airport: Text
    scheduled_departure_time: UtcDateTime
    scheduled_arrival_time: UtcDateTime
    aircraft_type: Text
    total_seats: SeatCount
    cabins: Annotated[list[Cabin], msgspec.Meta(max_length=16)]
    flight_number: Label = ""
    fare_buckets: Annotated[list[FareBucketSpec], msgspec.Meta(max_length=128)] = []
    currency: Label = "GBP"

    def __post_init__(self) -> None:
        super().__post_init__()
        departure = self.scheduled_departure_time
        check_time("scheduled_departure_time", departure)
        check_time("scheduled_arrival_time", self.scheduled_arrival_time)
        on_sale = (departure - self.event_time).total_seconds() / 86400
        if not 0 <= on_sale <= MAX_SALE_DAYS:
            raise TimeRangeError(f"scheduled_departure_time is {on_sale:.1f} days after the sale "
                             f"opens (event_time); must be 0 to {MAX_SALE_DAYS}")
        if self.scheduled_arrival_time < departure:
            raise TimeRangeError("scheduled_arrival_time is before scheduled_departure_time")
        if sum(c.seat_count for c in self.cabins) > MAX_SEATS:
            raise ValueError(f"cabins seat more than {MAX_SEATS}")


class CheckInOpened(Event, tag="CheckInOpened", kw_only=True, frozen=True):
    """Online check-in opens (usually 24 hours before departure)."""


class BoardingStarted(Event, tag="BoardingStarted", kw_only=True, frozen=True):
    """Boarding starts at the gate."""


class FlightDelayed(Event, tag="FlightDelayed", kw_only=True, frozen=True):
    """The departure moved later; ``new_departure_time`` replaces the scheduled one."""

    new_departure_time: UtcDateTime
    delay_minutes: Annotated[int, msgspec.Meta(ge=0, le=MAX_MINUTES)]
    reason: Prose = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_time("new_departure_time", self.new_departure_time)
        ahead = (self.new_departure_time - self.event_time).total_seconds() / 86400
        if ahead > MAX_SALE_DAYS:
            raise TimeRangeError(f"new_departure_time is {ahead:.0f} days after event_time "
                             f"(at most {MAX_SALE_DAYS})")


class FlightDeparted(Event, tag="FlightDeparted", kw_only=True, frozen=True):
    """The flight left; its inventory is final."""

    actual_departure_time: UtcDateTime

    def __post_init__(self) -> None:
        super().__post_init__()
        check_time("actual_departure_time", self.actual_departure_time)


class FlightCancelled(Event, tag="FlightCancelled", kw_only=True, frozen=True):
    """The flight will not operate; no promotion may fire for it any more."""

    reason: Prose = ""


# --------------------------------------------------------------------------- bookings
class Passenger(Record, kw_only=True, frozen=True):
    """A booked passenger and their seat (the user's ``passengers`` entries)."""

    passenger_id: Text
    seat_id: Text
    cabin_code: Text


class BookingCreated(Event, tag="BookingCreated", kw_only=True, frozen=True):
    """A party buys seats in one fare bucket. ``total_price`` is for the whole party, after any
    promotion discount (``promo_id`` names it)."""

    booking_id: Text
    channel: Label
    fare_bucket: Text
    currency: Label
    total_price: Money
    passengers: Annotated[list[Passenger], msgspec.Meta(min_length=1, max_length=MAX_PARTY)]
    segment: Label = ""
    promo_id: Label | None = None
    discount_percentage: Percentage = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_money("total_price", self.total_price)


class BookingCancelled(Event, tag="BookingCancelled", kw_only=True, frozen=True):
    """A booking is cancelled; its seats are free again."""

    booking_id: Text
    fare_bucket: Text
    passengers: Annotated[list[Passenger], msgspec.Meta(min_length=1, max_length=MAX_PARTY)]
    reason: Prose = ""


# --------------------------------------------------------------------------- seat_inventory
class BucketAvailability(Record, kw_only=True, frozen=True):
    """Seats still sellable in a bucket, at its current price."""

    bucket: Text
    available_seats: SeatCount
    price: Money

    def __post_init__(self) -> None:
        check_money("price", self.price)


class CabinAvailability(Record, kw_only=True, frozen=True):
    """Availability of one cabin's buckets."""

    cabin_code: Text
    fare_buckets: Annotated[list[BucketAvailability], msgspec.Meta(max_length=128)]


class CabinInventorySnapshot(Event, tag="CabinInventorySnapshot", kw_only=True, frozen=True):
    """The producer's periodic view of what is still for sale (the user's fields)."""

    time_to_departure_minutes: Minutes
    cabins: Annotated[list[CabinAvailability], msgspec.Meta(max_length=16)]
    currency: Label = "GBP"


# --------------------------------------------------------------------------- seat_map
class _SeatChange(Event, kw_only=True, frozen=True):
    """Fields shared by a seat being taken and given back."""

    booking_id: Text
    passenger_id: Text
    seat_id: Text
    row: Annotated[int, msgspec.Meta(ge=1, le=MAX_ROWS)]
    letter: Text
    cabin_code: Text


class SeatAssigned(_SeatChange, tag="SeatAssigned", kw_only=True, frozen=True):
    """A passenger gets a seat."""


class SeatReleased(_SeatChange, tag="SeatReleased", kw_only=True, frozen=True):
    """A seat is free again because its booking was cancelled."""


# --------------------------------------------------------------------------- inventory_metrics
class CabinInventoryMetrics(Event, tag="CabinInventoryMetrics", kw_only=True, frozen=True):
    """The engine's view of a flight (the user's fields first, then pace and forecast)."""

    booked_seats: SeatCount
    total_seats: SeatCount
    load_factor: Fraction
    minutes_to_departure: Minutes
    seats_remaining: SeatCount = 0
    bookings_last_hour: NonNegativeInt = 0
    bookings_last_day: NonNegativeInt = 0
    expected_booked_to_date: Annotated[float, msgspec.Meta(ge=0.0, le=MAX_SEATS)] = 0.0
    forecast_load_factor: Ratio = 0.0
    active_discount_percentage: Percentage = 0
    active_promo_id: Label | None = None
    state_version: NonNegativeInt = 0


# --------------------------------------------------------------------------- promo_decisions
#: A forecast or estimate in a decision's explanation (seats, passengers, money): finite and
#: bounded so the warehouse's numeric columns always take it.
Estimate = Annotated[float, msgspec.Meta(ge=-1e8, le=1e8)]


class DecisionExplanation(Record, kw_only=True, frozen=True):
    """Why the revenue policy decided what it did, in the numbers it used (schema 1.2).

    Demand is counted in seats of the target bucket's cabin from the decision to departure, at
    the undiscounted price; the interval is the forecast's 90 % interval. Revenue is what the
    policy expects that cabin to earn to departure with the decided discount and without one
    (for an end: with the discount that was live, and without it). ``response_elasticity`` is
    the learned price elasticity used, ``response_evidence`` the expected bookings behind it
    (0: the prior alone)."""

    forecast_demand: Estimate
    forecast_low: Estimate
    forecast_high: Estimate
    expected_spoilage: Estimate
    response_elasticity: Estimate
    response_evidence: Estimate
    expected_revenue_with: Estimate
    expected_revenue_without: Estimate


class PromotionTriggered(Event, tag="PromotionTriggered", kw_only=True, frozen=True):
    """A discount starts (or escalates) on a flight's target bucket. ``inputs`` holds every number
    the policy used, so the decision can be explained and replayed."""

    decision_source: Label
    current_load_factor: Fraction
    minutes_to_departure: Minutes
    target_fare_bucket: Text
    discount_percentage: Percentage
    promo_id: Label = ""
    tier: Percentage = 0
    reason: Prose = ""
    inputs: Annotated[dict[str, float | int | str | None], msgspec.Meta(max_length=64)] = {}
    policy_version: Label = ""
    explanation: DecisionExplanation | None = None


class PromotionEnded(Event, tag="PromotionEnded", kw_only=True, frozen=True):
    """A discount stops (recovery, full, departure or cancellation)."""

    promo_id: Text
    decision_source: Label
    reason: Prose
    target_fare_bucket: Label = ""
    discount_percentage: Percentage = 0
    current_load_factor: Fraction = 0.0
    minutes_to_departure: Minutes = 0
    policy_version: Label = ""
    explanation: DecisionExplanation | None = None


# --------------------------------------------------------------------------- dead_letter
class DeadLetter(Event, tag="DeadLetter", kw_only=True, frozen=True):
    """A record some component could not accept, kept whole with the reason.

    ``flight_id`` is the record's key when it had one (else ``"unknown"``); ``event_time`` is the
    rejected event's own time when it could be read and plausible, else the time the rejecting
    component had reached (the Kafka record timestamp only as the last resort).
    """

    source_topic: Text
    source_partition: NonNegativeInt
    source_offset: NonNegativeInt
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    component: Text
    #: The original value, base64; only its first ``MAX_ORIGINAL_BYTES`` when it was larger
    #: (``original_truncated``), so an envelope always fits the broker's message size limit.
    original_value_b64: str
    original_key_b64: str | None = None
    headers: Annotated[list[tuple[str, str | None]], msgspec.Meta(max_length=64)] = []
    #: Why, as a stable code of :class:`airline_core.contract.Reason` (``reason`` adds detail).
    reason_code: Label = ""
    #: Size and sha256 of the whole original value (it stays whole in its topic and the lake).
    original_size: NonNegativeInt = 0
    original_sha256: Label = ""
    original_truncated: bool = False


LifecycleEvent = (
    FlightScheduled | CheckInOpened | BoardingStarted | FlightDelayed | FlightDeparted
    | FlightCancelled
)
BookingEvent = BookingCreated | BookingCancelled
SeatMapEvent = SeatAssigned | SeatReleased
PromotionEvent = PromotionTriggered | PromotionEnded
AnyEvent = (
    LifecycleEvent | BookingEvent | CabinInventorySnapshot | SeatMapEvent
    | CabinInventoryMetrics | PromotionEvent | DeadLetter
)

#: Which event types each topic carries. A type on the wrong topic is invalid.
TOPIC_EVENT_TYPES: Final[Mapping[Topic, Any]] = {
    Topic.FLIGHT_LIFECYCLE: LifecycleEvent,
    Topic.BOOKINGS: BookingEvent,
    Topic.SEAT_INVENTORY: CabinInventorySnapshot,
    Topic.SEAT_MAP: SeatMapEvent,
    Topic.INVENTORY_METRICS: CabinInventoryMetrics,
    Topic.PROMO_DECISIONS: PromotionEvent,
    Topic.DEAD_LETTER: DeadLetter,
}


class EventHeader(msgspec.Struct, frozen=True):
    """Just the common fields, for readers that route or partition without the whole event
    (the lake writer). Unknown fields are ignored, so it reads every event type."""

    event_id: Text
    event_type: Text
    event_time: UtcDateTime
    flight_id: Text
    schema_version: str = SCHEMA_VERSION

    def __post_init__(self) -> None:
        check_schema_version(self.schema_version)
        check_time("event_time", self.event_time)


_ENCODER: Final = msgspec.json.Encoder(decimal_format="string")
_ANY_DECODER: Final = msgspec.json.Decoder(AnyEvent)
_HEADER_DECODER: Final = msgspec.json.Decoder(EventHeader)


def encode(event: Event) -> bytes:
    """Serialise an event to its JSON value."""
    return _ENCODER.encode(event)


def decode(topic: Topic | str, value: bytes | None) -> Any:
    """Decode and validate a value read from ``topic`` (its logical name).

    Raises :class:`InvalidEventError` (or its subclass :class:`UnsupportedSchemaError`) with a
    reason fit for a dead-letter envelope; :func:`airline_core.contract.read_event` is the
    same decision returned as a value.
    """
    from airline_core import contract  # it imports this module: bound on first use

    result = contract.read_event(topic, value)
    if isinstance(result, contract.Rejection):
        if result.code is contract.Reason.UNSUPPORTED_SCHEMA:
            raise UnsupportedSchemaError(result.text)
        raise InvalidEventError(result.text)
    return result


def _decode(decoder: msgspec.json.Decoder[Any], value: bytes | None,
            bytes_checked: bool = False) -> Any:
    from airline_core.contract import check_bytes  # contract imports us

    problem = None if bytes_checked else check_bytes(value)
    if problem is not None:
        raise InvalidEventError(problem.text)
    try:
        return decoder.decode(value)  # type: ignore[arg-type]
    except UnsupportedSchemaError:
        raise
    except msgspec.ValidationError as e:
        cause = e.__cause__ or e.__context__
        if isinstance(cause, UnsupportedSchemaError):
            raise cause from e
        raise InvalidEventError(f"invalid event: {e}") from e
    except Exception as e:
        raise InvalidEventError(f"undecodable: {type(e).__name__}: {e}") from e


def decode_any(value: bytes | None) -> AnyEvent:
    """Decode an event of any type (for tools that read several topics)."""
    result: AnyEvent = _decode(_ANY_DECODER, value)
    return result


def decode_header(value: bytes | None, *, bytes_checked: bool = False) -> EventHeader:
    """Decode only the common fields; cheap, and valid for every event type.

    ``bytes_checked``: the caller has just run the contract's byte checks on ``value``
    (:func:`airline_core.contract.check_bytes`) and found nothing, so they are not repeated."""
    header: EventHeader = _decode(_HEADER_DECODER, value, bytes_checked)
    return header


def decode_headers(values: Sequence[bytes]) -> list[EventHeader] | None:
    """The headers of a batch of values in one decoder call, or ``None`` when any value is not
    a valid header (the caller then decodes each with :func:`decode_header` for its verdict).

    The values must already pass the contract's byte checks
    (:func:`airline_core.contract.all_pass_byte_checks`): no line breaks, so joined as JSON
    Lines each value is exactly one line. Each must also be one object (``{`` to ``}``), so no
    value can hold two documents or none."""
    for value in values:
        if value[:1] != b"{" or value[-1:] != b"}":
            return None
    try:
        headers: list[EventHeader] = _HEADER_DECODER.decode_lines(b"\n".join(values))
    except Exception:  # any failure, including __post_init__ checks: decide one by one
        return None
    return headers if len(headers) == len(values) else None


def b64(data: bytes | None) -> str | None:
    """Base64 text of raw bytes (for dead-letter envelopes), ``None`` kept as ``None``."""
    return None if data is None else base64.b64encode(data).decode("ascii")


def event_types_of(topic: Topic) -> Sequence[str]:
    """The ``event_type`` tags a topic may carry."""
    types = TOPIC_EVENT_TYPES[topic]
    members = getattr(types, "__args__", (types,))
    return [m.__struct_config__.tag for m in members]
