"""Per-flight state and its versioned changelog record.

The state is a plain mutable ``msgspec.Struct`` (fast attributes, one-call JSON). Times inside it
are epoch seconds of *event* time. The changelog value is a :class:`StateRecord`: the format
version, the flight's state and the input offsets it reflects (so a re-delivered input below
them is skipped even if a broker's transactions were weak).

State format history (``STATE_FORMAT``):

* 1: first format.

Upgrade rule: a reader restores every format up to its own (converting older ones in
:func:`decode_record`); a record with a newer format stops the engine with
:class:`~airline_engine.errors.StateFormatError` instead of guessing. So roll out a format
change by deploying the reader first, never by running old and new engines side by side.
"""

from __future__ import annotations

from typing import Final

import msgspec

from airline_engine.errors import StateFormatError

STATE_FORMAT: Final = 1

OPEN: Final = "open"
CANCELLED: Final = "cancelled"
DEPARTED: Final = "departed"


class BucketCapacity(msgspec.Struct, array_like=True):
    """A fare bucket as scheduled: name, cabin, price (text, exact), seats."""

    bucket: str
    cabin_code: str
    price: str
    seats: int


class Party(msgspec.Struct, array_like=True):
    """A live booking: its bucket and seats by cabin (what a cancellation gives back), and the
    event that booked it (an exact repeat of that event is a no-op, anything else a conflict)."""

    bucket: str
    seats: dict[str, int]
    event_id: str = ""
    digest: str = ""


class Promo(msgspec.Struct):
    """The promotion currently live on a flight."""

    promo_id: str
    tier: int
    discount_percentage: int
    target_fare_bucket: str
    started_s: float
    reason: str


class Parked(msgspec.Struct, array_like=True):
    """An input that arrived before its flight's ``FlightScheduled``, kept whole to replay it."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    event_s: float
    value: bytes
    key: bytes | None = None


class FlightState(msgspec.Struct):
    """Everything the engine knows about one flight."""

    flight_id: str
    scheduled: bool = False
    status: str = OPEN
    airline_code: str = ""
    departure_s: float = 0.0
    total_seats: int = 0
    cabins: dict[str, int] = {}
    buckets: list[BucketCapacity] = []
    target_fare_bucket: str = "K"
    booked: int = 0
    booked_by_cabin: dict[str, int] = {}
    booked_by_bucket: dict[str, int] = {}
    parties: dict[str, Party] = {}
    #: Booking id -> the event id that cancelled it (so a repeat of that event is a no-op).
    cancelled: dict[str, str] = {}
    #: Event time (epoch s) the flight opened for sale, and closed (departed or cancelled).
    sale_open_s: float = 0.0
    closed_s: float = 0.0
    #: Event times (epoch s) of the bookings of the last 24 hours, oldest first.
    recent_bookings: list[float] = []
    seats_assigned: int = 0
    available_by_bucket: dict[str, int] = {}
    promo: Promo | None = None
    promos_started: int = 0
    last_promo_change_s: float | None = None
    #: Event time of the revenue policy's last review of this flight.
    last_review_s: float | None = None
    #: Seats of the target cabin a discount brought, by the response estimate at the time
    #: (taken out of the demand forecast, which reads undiscounted demand).
    lifted_seats: float = 0.0
    #: The promotion exposure being counted (see :mod:`airline_engine.market`): since when,
    #: seats booked in the target cabin since then, and whether the target bucket was selling.
    exposure_s: float | None = None
    exposure_seats: int = 0
    exposure_open: bool = False
    #: The forecast final demand of the target cabin when the exposure began, before any seat
    #: the discount brought: the counterfactual every stretch of it is measured against.
    exposure_final: float | None = None
    #: A held-out flight's would-be discount (never sold; 0: none): its exposure is the
    #: control group's (see :mod:`airline_engine.response`).
    shadow_discount: int = 0
    last_metrics_s: float | None = None
    metrics_dirty: bool = False
    last_event_s: float = 0.0
    version: int = 0
    parked: list[Parked] = []


class StateRecord(msgspec.Struct):
    """The value of a changelog record (key = flight id)."""

    format: int
    flight: FlightState
    #: Logical input topic -> next offset of this partition that the state already reflects.
    offsets: dict[str, int] = {}
    #: Logical input topic -> its event-time watermark (epoch s) at those offsets.
    watermarks: dict[str, float] = {}


_ENCODER: Final = msgspec.json.Encoder()
_DECODER: Final = msgspec.json.Decoder(StateRecord)


class _FormatOnly(msgspec.Struct):
    format: int


_FORMAT_DECODER: Final = msgspec.json.Decoder(_FormatOnly)


def encode_record(flight: FlightState, offsets: dict[str, int],
                  watermarks: dict[str, float] | None = None) -> bytes:
    """The changelog value of ``flight``."""
    return _ENCODER.encode(StateRecord(STATE_FORMAT, flight, offsets, watermarks or {}))


def decode_record(value: bytes) -> StateRecord:
    """Read a changelog value; older formats would be converted here, newer ones refused."""
    found = _FORMAT_DECODER.decode(value).format
    if found > STATE_FORMAT:
        raise StateFormatError(
            f"changelog record has state format {found}; this engine reads up to {STATE_FORMAT}")
    return _DECODER.decode(value)
