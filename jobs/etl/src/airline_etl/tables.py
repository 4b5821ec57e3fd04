"""Validated events of a topic → the staging rows of each warehouse table (pure Polars).

Column order here is the ``COPY`` column order of the staging tables in
:mod:`airline_etl.warehouse`; one dict keeps them in step.
"""

from __future__ import annotations

from typing import Final

import polars as pl
from airline_core.topics import Topic

from airline_etl.transform import EXPLANATION_FIELDS, INPUT_TOPICS, TopicEvents

#: staging table → its columns, in COPY order.
STAGING_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "ledger": ("event_id", "topic", "event_type", "event_time", "flight_id", "source_file"),
    "flight_event": (
        "event_id", "event_type", "event_time", "flight_id", "flight_number", "airline_code",
        "origin_airport", "destination_airport", "aircraft_type", "total_seats",
        "scheduled_departure_time", "scheduled_arrival_time", "currency", "new_departure_time",
        "delay_minutes", "actual_departure_time", "reason"),
    "flight_cabin": ("flight_id", "cabin_code", "seat_count", "schedule_event_time",
                     "schedule_event_id"),
    "booking": (
        "booking_id", "passenger_id", "passenger_index", "passenger_count", "passenger_price",
        "booking_time", "flight_id", "fare_bucket", "seat_id", "cabin_code", "total_price",
        "channel",
        "segment", "currency", "promo_id", "discount_percentage", "event_id"),
    "booking_cancellation": ("booking_id", "passenger_id", "cancellation_time", "flight_id",
                             "reason", "event_id"),
    "inventory_metrics": (
        "event_id", "metric_time", "flight_id", "booked_seats", "total_seats", "load_factor",
        "minutes_to_departure", "seats_remaining", "bookings_last_hour", "bookings_last_day",
        "expected_booked_to_date", "forecast_load_factor", "active_discount_percentage",
        "active_promo_id", "state_version"),
    "promotion": (
        "event_id", "promo_time", "flight_id", "promo_id", "decision_source",
        "discount_percentage", "current_load_factor", "minutes_to_departure",
        "target_fare_bucket", "tier", "reason", "policy_version", *EXPLANATION_FIELDS),
    # The explanation of the decision (null without one): the earliest end's, like the rest.
    "promotion_end": ("promo_id", "end_time", "flight_id", "end_reason", "decision_source",
                      "event_id", *EXPLANATION_FIELDS),
    "dead_letter": (
        "event_id", "event_time", "flight_id", "source_topic", "source_partition",
        "source_offset", "reason", "component", "original_value_b64", "original_key_b64",
        "envelope", "reason_code", "original_size", "original_sha256"),
    "input_position": ("generation", "topic", "kafka_partition", "kafka_offset", "event_id"),
}


def _of(events: pl.DataFrame, *types: str) -> pl.DataFrame:
    return events.filter(pl.col("event_type").is_in(list(types)))


def _blank_to_null(column: str) -> pl.Expr:
    return pl.when(pl.col(column) == "").then(None).otherwise(pl.col(column)).alias(column)


def ledger(result: TopicEvents) -> pl.DataFrame:
    """One row per distinct event (every topic): the reconciliation ledger."""
    return result.events.select(
        "event_id", pl.lit(result.topic).alias("topic"), "event_type", "event_time",
        "flight_id", "source_file")


def _lifecycle(events: pl.DataFrame) -> dict[str, pl.DataFrame]:
    flight_event = events.select(STAGING_COLUMNS["flight_event"])
    scheduled = _of(events, "FlightScheduled")
    cabins = (
        scheduled.select("flight_id", "cabins", "event_time", "event_id")
        .explode("cabins").filter(pl.col("cabins").is_not_null()).unnest("cabins")
        .select("flight_id", "cabin_code", pl.col("seat_count").cast(pl.Int64),
                pl.col("event_time").alias("schedule_event_time"),
                pl.col("event_id").alias("schedule_event_id"))
        .sort("schedule_event_time", "schedule_event_id", descending=True)
        .unique(subset=["flight_id", "cabin_code"], keep="first", maintain_order=True)
    )
    return {"flight_event": flight_event, "flight_cabin": cabins}


def _bookings(events: pl.DataFrame) -> dict[str, pl.DataFrame]:
    created = _of(events, "BookingCreated").with_columns(
        pl.col("passengers").list.len().alias("passenger_count"),
        pl.int_ranges(0, pl.col("passengers").list.len()).alias("passenger_index"),
    )
    # Each passenger's share of the price, to the cent, summing exactly to the total: the
    # first (cents mod passengers) passengers carry one cent more.
    cents = (pl.col("total_price") * 100).cast(pl.Int64)
    share = (cents // pl.col("passenger_count")
             + (pl.col("passenger_index") < cents % pl.col("passenger_count")).cast(pl.Int64))
    booking = (
        created.explode(["passengers", "passenger_index"]).unnest("passengers")
        .with_columns(pl.format("{}.{}", share // 100,
                                (share % 100).cast(pl.String).str.zfill(2))
                      .alias("passenger_price"))
        .with_columns(pl.col("event_time").alias("booking_time"),
                      pl.col("segment").fill_null(""), _blank_to_null("promo_id"),
                      pl.col("discount_percentage").fill_null(0))
        .unique(subset=["booking_id", "passenger_id"], keep="first", maintain_order=True)
        .select(STAGING_COLUMNS["booking"])
    )
    cancelled = _of(events, "BookingCancelled")
    whole = cancelled.filter(pl.col("passengers").list.len() == 0).with_columns(
        pl.lit("").alias("passenger_id"))
    per_passenger = (
        cancelled.filter(pl.col("passengers").list.len() > 0).explode("passengers")
        .with_columns(pl.col("passengers").struct.field("passenger_id")))
    cancellation = (
        pl.concat([whole.drop("passengers"), per_passenger.drop("passengers")])
        .with_columns(pl.col("event_time").alias("cancellation_time"),
                      pl.col("reason").fill_null(""))
        .sort("cancellation_time", "event_id")
        .unique(subset=["booking_id", "passenger_id"], keep="first", maintain_order=True)
        .select(STAGING_COLUMNS["booking_cancellation"])
    )
    return {"booking": booking, "booking_cancellation": cancellation}


def _metrics(events: pl.DataFrame) -> dict[str, pl.DataFrame]:
    metrics = events.with_columns(
        pl.col("event_time").alias("metric_time"),
        # Old-layout metrics lack seats_remaining: it is what the seat counts say.
        pl.coalesce(pl.col("seats_remaining"),
                    (pl.col("total_seats") - pl.col("booked_seats")).clip(0))
        .alias("seats_remaining"),
        _blank_to_null("active_promo_id"),
        # A forecast is a float in the contract; the column is a load factor, numeric(5,4).
        pl.col("forecast_load_factor").clip(0.0, 9.9999),
    ).select(STAGING_COLUMNS["inventory_metrics"])
    return {"inventory_metrics": metrics}


def _promotions(events: pl.DataFrame) -> dict[str, pl.DataFrame]:
    triggered = (
        _of(events, "PromotionTriggered")
        .with_columns(pl.col("event_time").alias("promo_time"), _blank_to_null("promo_id"),
                      pl.col("tier").fill_null(0), pl.col("reason").fill_null(""),
                      pl.col("policy_version").fill_null(""),
                      pl.col("decision_source").fill_null(""))
        .select(STAGING_COLUMNS["promotion"])
    )
    ended = (
        _of(events, "PromotionEnded")
        .with_columns(pl.col("event_time").alias("end_time"),
                      pl.col("reason").alias("end_reason"))
        .sort("end_time", "event_id")
        .unique(subset="promo_id", keep="first", maintain_order=True)
        .select(STAGING_COLUMNS["promotion_end"])
    )
    return {"promotion": triggered, "promotion_end": ended}


def _dead_letters(events: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {"dead_letter": events.with_columns(pl.col("line").alias("envelope"),
                                               pl.col("reason_code").fill_null(""))
            .select(STAGING_COLUMNS["dead_letter"])}


_BUILDERS: Final = {
    Topic.FLIGHT_LIFECYCLE: _lifecycle,
    Topic.BOOKINGS: _bookings,
    Topic.INVENTORY_METRICS: _metrics,
    Topic.PROMO_DECISIONS: _promotions,
    Topic.DEAD_LETTER: _dead_letters,
}


def staging_rows(result: TopicEvents) -> dict[str, pl.DataFrame]:
    """Every staging frame one topic feeds (the ledger always; facts for modelled topics; the
    Kafka positions of the accepted lines for the engine's input topics)."""
    frames = {"ledger": ledger(result)}
    builder = _BUILDERS.get(Topic(result.topic))
    if builder is not None:
        frames.update(builder(result.events))
    if result.topic in INPUT_TOPICS:
        frames["input_position"] = result.positions.select(STAGING_COLUMNS["input_position"])
    return frames
