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
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

import msgspec

from airline_core.errors import InvalidEventError, UnsupportedSchemaError
from airline_core.topics import Topic

SCHEMA_MAJOR: Final = 1
SCHEMA_MINOR: Final = 0
SCHEMA_VERSION: Final = f"{SCHEMA_MAJOR}.{SCHEMA_MINOR}"

#: A timezone-aware timestamp; naive times are invalid because their zone would be a guess.
UtcDateTime = Annotated[datetime, msgspec.Meta(tz=True)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
#: Exact money. msgspec cannot bound a Decimal, so the structs holding money check it in
#: ``__post_init__`` with :func:`check_money` (finite, not negative, at most 2 decimals).
Money = Decimal
Fraction = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Percentage = Annotated[int, msgspec.Meta(ge=0, le=100)]
Text = Annotated[str, msgspec.Meta(min_length=1)]

Segment = Literal["business", "leisure"]


def check_schema_version(version: str) -> None:
    """Apply the compatibility rule: same major accepted (any minor), anything else rejected."""
    major, _, minor = version.partition(".")
    if not (major.isdigit() and minor.isdigit()):
        raise UnsupportedSchemaError(f"schema_version {version!r} is not MAJOR.MINOR")
    if int(major) != SCHEMA_MAJOR:
        raise UnsupportedSchemaError(
            f"schema_version {version} has major {major}; this reader understands {SCHEMA_MAJOR}.x"
        )


def check_money(name: str, value: Decimal) -> None:
    """Reject NaN, infinities, negative amounts and sub-cent digits: money must be exact."""
    if not value.is_finite() or value < 0 or value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueError(f"{name} {value} is not a non-negative amount with at most 2 decimals")


class Event(msgspec.Struct, tag_field="event_type", kw_only=True, frozen=True):
    """Fields every event carries, in this order, before its own."""

    event_id: Text
    event_time: UtcDateTime
    schema_version: str = SCHEMA_VERSION
    flight_id: Text

    def __post_init__(self) -> None:
        check_schema_version(self.schema_version)

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
    seat_count: NonNegativeInt


class FareBucketSpec(Record, kw_only=True, frozen=True):
    """A bookable fare bucket: its cabin, its price and the seats it may sell (nested: a cheaper
    bucket's seats are also available to dearer buckets of the same cabin)."""

    bucket: Text
    cabin_code: Text
    price: Money
    seats: NonNegativeInt

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
    total_seats: NonNegativeInt
    cabins: list[Cabin]
    flight_number: str = ""
    fare_buckets: list[FareBucketSpec] = []
    currency: str = "GBP"


class CheckInOpened(Event, tag="CheckInOpened", kw_only=True, frozen=True):
    """Online check-in opens (usually 24 hours before departure)."""


class BoardingStarted(Event, tag="BoardingStarted", kw_only=True, frozen=True):
    """Boarding starts at the gate."""


class FlightDelayed(Event, tag="FlightDelayed", kw_only=True, frozen=True):
    """The departure moved later; ``new_departure_time`` replaces the scheduled one."""

    new_departure_time: UtcDateTime
    delay_minutes: NonNegativeInt
    reason: str = ""


class FlightDeparted(Event, tag="FlightDeparted", kw_only=True, frozen=True):
    """The flight left; its inventory is final."""

    actual_departure_time: UtcDateTime


class FlightCancelled(Event, tag="FlightCancelled", kw_only=True, frozen=True):
    """The flight will not operate; no promotion may fire for it any more."""

    reason: str = ""


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
    channel: str
    fare_bucket: Text
    currency: str
    total_price: Money
    passengers: list[Passenger]
    segment: str = ""
    promo_id: str | None = None
    discount_percentage: Percentage = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_money("total_price", self.total_price)


class BookingCancelled(Event, tag="BookingCancelled", kw_only=True, frozen=True):
    """A booking is cancelled; its seats are free again."""

    booking_id: Text
    fare_bucket: Text
    passengers: list[Passenger]
    reason: str = ""


# --------------------------------------------------------------------------- seat_inventory
class BucketAvailability(Record, kw_only=True, frozen=True):
    """Seats still sellable in a bucket, at its current price."""

    bucket: Text
    available_seats: NonNegativeInt
    price: Money

    def __post_init__(self) -> None:
        check_money("price", self.price)


class CabinAvailability(Record, kw_only=True, frozen=True):
    """Availability of one cabin's buckets."""

    cabin_code: Text
    fare_buckets: list[BucketAvailability]


class CabinInventorySnapshot(Event, tag="CabinInventorySnapshot", kw_only=True, frozen=True):
    """The producer's periodic view of what is still for sale (the user's fields)."""

    time_to_departure_minutes: int
    cabins: list[CabinAvailability]
    currency: str = "GBP"


# --------------------------------------------------------------------------- seat_map
class _SeatChange(Event, kw_only=True, frozen=True):
    """Fields shared by a seat being taken and given back."""

    booking_id: Text
    passenger_id: Text
    seat_id: Text
    row: Annotated[int, msgspec.Meta(ge=1)]
    letter: Text
    cabin_code: Text


class SeatAssigned(_SeatChange, tag="SeatAssigned", kw_only=True, frozen=True):
    """A passenger gets a seat."""


class SeatReleased(_SeatChange, tag="SeatReleased", kw_only=True, frozen=True):
    """A seat is free again because its booking was cancelled."""


# --------------------------------------------------------------------------- inventory_metrics
class CabinInventoryMetrics(Event, tag="CabinInventoryMetrics", kw_only=True, frozen=True):
    """The engine's view of a flight (the user's fields first, then pace and forecast)."""

    booked_seats: NonNegativeInt
    total_seats: NonNegativeInt
    load_factor: Fraction
    minutes_to_departure: int
    seats_remaining: NonNegativeInt = 0
    bookings_last_hour: NonNegativeInt = 0
    bookings_last_day: NonNegativeInt = 0
    expected_booked_to_date: float = 0.0
    forecast_load_factor: float = 0.0
    active_discount_percentage: Percentage = 0
    active_promo_id: str | None = None
    state_version: NonNegativeInt = 0


# --------------------------------------------------------------------------- promo_decisions
class PromotionTriggered(Event, tag="PromotionTriggered", kw_only=True, frozen=True):
    """A discount starts (or escalates) on a flight's target bucket. ``inputs`` holds every number
    the policy used, so the decision can be explained and replayed."""

    decision_source: str
    current_load_factor: Fraction
    minutes_to_departure: int
    target_fare_bucket: Text
    discount_percentage: Percentage
    promo_id: str = ""
    tier: NonNegativeInt = 0
    reason: str = ""
    inputs: dict[str, float | int | str | None] = {}
    policy_version: str = ""


class PromotionEnded(Event, tag="PromotionEnded", kw_only=True, frozen=True):
    """A discount stops (recovery, full, departure or cancellation)."""

    promo_id: Text
    decision_source: str
    reason: str
    target_fare_bucket: str = ""
    discount_percentage: Percentage = 0
    current_load_factor: Fraction = 0.0
    minutes_to_departure: int = 0
    policy_version: str = ""


# --------------------------------------------------------------------------- dead_letter
class DeadLetter(Event, tag="DeadLetter", kw_only=True, frozen=True):
    """A record some component could not accept, kept whole with the reason.

    ``flight_id`` is the record's key when it had one (else ``"unknown"``); ``event_time`` is the
    rejected event's own time when it could be read, else the Kafka record timestamp.
    """

    source_topic: Text
    source_partition: NonNegativeInt
    source_offset: NonNegativeInt
    reason: Text
    component: Text
    original_value_b64: str
    original_key_b64: str | None = None
    headers: list[tuple[str, str | None]] = []


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


_ENCODER: Final = msgspec.json.Encoder(decimal_format="string")
_DECODERS: Final = {
    topic: msgspec.json.Decoder(types) for topic, types in TOPIC_EVENT_TYPES.items()
}
_ANY_DECODER: Final = msgspec.json.Decoder(AnyEvent)
_HEADER_DECODER: Final = msgspec.json.Decoder(EventHeader)


def encode(event: Event) -> bytes:
    """Serialise an event to its JSON value."""
    return _ENCODER.encode(event)


def _decode(decoder: msgspec.json.Decoder[Any], value: bytes | None) -> Any:
    if value is None:
        raise InvalidEventError("record has no value (tombstone) on an event topic")
    try:
        return decoder.decode(value)
    except UnsupportedSchemaError:
        raise
    except msgspec.ValidationError as e:
        cause = e.__cause__ or e.__context__
        if isinstance(cause, UnsupportedSchemaError):
            raise cause from e
        raise InvalidEventError(f"invalid event: {e}") from e
    except msgspec.DecodeError as e:
        raise InvalidEventError(f"undecodable JSON: {e}") from e


def decode(topic: Topic | str, value: bytes | None) -> Any:
    """Decode and validate a value read from ``topic`` (its logical name).

    Raises :class:`InvalidEventError` (or its subclass :class:`UnsupportedSchemaError`) with a
    reason fit for a dead-letter envelope.
    """
    decoder = _DECODERS.get(Topic(topic)) if isinstance(topic, str) else _DECODERS.get(topic)
    if decoder is None:
        raise InvalidEventError(f"topic {topic!r} carries no events of the contract")
    return _decode(decoder, value)


def decode_any(value: bytes | None) -> AnyEvent:
    """Decode an event of any type (for tools that read several topics)."""
    result: AnyEvent = _decode(_ANY_DECODER, value)
    return result


def decode_header(value: bytes | None) -> EventHeader:
    """Decode only the common fields; cheap, and valid for every event type."""
    header: EventHeader = _decode(_HEADER_DECODER, value)
    check_schema_version(header.schema_version)
    return header


def b64(data: bytes | None) -> str | None:
    """Base64 text of raw bytes (for dead-letter envelopes), ``None`` kept as ``None``."""
    return None if data is None else base64.b64encode(data).decode("ascii")


def event_types_of(topic: Topic) -> Sequence[str]:
    """The ``event_type`` tags a topic may carry."""
    types = TOPIC_EVENT_TYPES[topic]
    members = getattr(types, "__args__", (types,))
    return [m.__struct_config__.tag for m in members]
