-- 001: the warehouse airline_dw. The user's table and column names are kept exactly
-- (fact_booking, fact_inventory_metrics, fact_promotions, dim_flight); columns are typed.

-- ---------------------------------------------------------------- bookkeeping of the ETL
CREATE TABLE etl_runs (
    run_id        text PRIMARY KEY,
    mode          text NOT NULL CHECK (mode IN ('incremental', 'full')),
    started_at    timestamptz NOT NULL,
    committed_at  timestamptz NOT NULL DEFAULT now(),
    files         integer NOT NULL,
    lines         bigint NOT NULL,
    events        bigint NOT NULL,
    duplicates    bigint NOT NULL,
    rejects       bigint NOT NULL,
    gold_dir      text NOT NULL,
    table_rows    jsonb NOT NULL
);

CREATE TABLE etl_loaded_files (
    file_key   text NOT NULL,          -- manifest (or old day file) path relative to LAKE_DIR
    sha256     text NOT NULL,          -- of the manifest (or of the old day file)
    kind       text NOT NULL CHECK (kind IN ('manifest', 'legacy')),
    topic      text NOT NULL,
    records    bigint,
    run_id     text NOT NULL,
    PRIMARY KEY (file_key, sha256)
);

CREATE TABLE etl_event_ledger (
    event_id       text PRIMARY KEY,
    topic          text NOT NULL,
    event_type     text NOT NULL,
    event_time     timestamptz NOT NULL,
    flight_id      text NOT NULL,
    source_file    text NOT NULL,
    loaded_run_id  text NOT NULL
);
CREATE INDEX etl_event_ledger_topic ON etl_event_ledger (topic);

CREATE TABLE etl_rejects (
    source_file   text NOT NULL,
    line_number   bigint NOT NULL,
    topic         text NOT NULL,
    reason        text NOT NULL,
    raw_line      text NOT NULL,
    event_id      text,
    run_id        text NOT NULL,
    PRIMARY KEY (source_file, line_number)
);

-- ---------------------------------------------------------------- dimensions
CREATE TABLE dim_flight (
    flight_id                 text PRIMARY KEY,
    flight_number             text,
    airline_code              text,
    origin_airport            text,
    destination_airport       text,
    route                     text,
    aircraft_type             text,
    total_seats               integer,
    cabin_capacity            text,
    scheduled_departure_time  timestamptz,
    scheduled_arrival_time    timestamptz,
    current_departure_time    timestamptz,
    actual_departure_time     timestamptz,
    delay_minutes             integer NOT NULL DEFAULT 0,
    status                    text NOT NULL,
    check_in_opened_time      timestamptz,
    boarding_started_time     timestamptz,
    cancelled_time            timestamptz,
    cancel_reason             text,
    currency                  text,
    last_event_time           timestamptz NOT NULL
);

CREATE TABLE dim_flight_cabin (
    flight_id            text NOT NULL,
    cabin_code           text NOT NULL,
    seat_count           integer NOT NULL,
    schedule_event_time  timestamptz NOT NULL,
    schedule_event_id    text NOT NULL,
    PRIMARY KEY (flight_id, cabin_code)
);

CREATE TABLE dim_date (
    date_key      date PRIMARY KEY,
    year          integer NOT NULL,
    quarter       integer NOT NULL,
    month         integer NOT NULL,
    month_name    text NOT NULL,
    day           integer NOT NULL,
    day_of_week   integer NOT NULL,   -- ISO: 1 = Monday
    day_name      text NOT NULL,
    iso_week      integer NOT NULL,
    is_weekend    boolean NOT NULL
);

-- ---------------------------------------------------------------- facts
CREATE TABLE fact_flight_event (
    event_id                  text PRIMARY KEY,
    event_type                text NOT NULL,
    event_time                timestamptz NOT NULL,
    flight_id                 text NOT NULL,
    flight_number             text,
    airline_code              text,
    origin_airport            text,
    destination_airport       text,
    aircraft_type             text,
    total_seats               integer,
    scheduled_departure_time  timestamptz,
    scheduled_arrival_time    timestamptz,
    currency                  text,
    new_departure_time        timestamptz,
    delay_minutes             integer,
    actual_departure_time     timestamptz,
    reason                    text
);
CREATE INDEX fact_flight_event_flight ON fact_flight_event (flight_id, event_time);

CREATE TABLE fact_booking (
    booking_time         timestamptz NOT NULL,
    booking_id           text NOT NULL,
    flight_id            text NOT NULL,
    fare_bucket          text NOT NULL,
    seat_id              text NOT NULL,
    total_price          numeric(10,2) NOT NULL,   -- the whole booking's price (user's column)
    passenger_id         text NOT NULL,
    passenger_index      integer NOT NULL,
    passenger_count      integer NOT NULL,
    passenger_price      numeric(10,2) NOT NULL,   -- this passenger's share; sums to total_price
    cabin_code           text NOT NULL,
    channel              text NOT NULL,
    segment              text NOT NULL,
    currency             text NOT NULL,
    promo_id             text,
    discount_percentage  integer NOT NULL,
    event_id             text NOT NULL,
    cancellation_time    timestamptz,
    PRIMARY KEY (booking_id, passenger_id)
);
CREATE INDEX fact_booking_flight ON fact_booking (flight_id, booking_time);

CREATE TABLE fact_booking_cancellation (
    booking_id         text NOT NULL,
    passenger_id       text NOT NULL,      -- '' when the cancellation named no passenger (all)
    cancellation_time  timestamptz NOT NULL,
    flight_id          text NOT NULL,
    reason             text NOT NULL,
    event_id           text NOT NULL,
    PRIMARY KEY (booking_id, passenger_id)
);

CREATE TABLE fact_inventory_metrics (
    metric_time                 timestamptz NOT NULL,
    flight_id                   text NOT NULL,
    booked_seats                integer NOT NULL,
    total_seats                 integer NOT NULL,
    load_factor                 numeric(5,4) NOT NULL,
    minutes_to_departure        integer NOT NULL,
    seats_remaining             integer NOT NULL,
    bookings_last_hour          integer,
    bookings_last_day           integer,
    expected_booked_to_date     double precision,
    forecast_load_factor        numeric(5,4),
    active_discount_percentage  integer,
    active_promo_id             text,
    state_version               bigint,
    event_id                    text PRIMARY KEY
);
CREATE INDEX fact_inventory_metrics_flight ON fact_inventory_metrics (flight_id, metric_time);

CREATE TABLE fact_promotions (
    promo_time            timestamptz NOT NULL,
    flight_id             text NOT NULL,
    decision_source       text NOT NULL,
    discount_percentage   integer NOT NULL,
    current_load_factor   numeric(5,4) NOT NULL,
    minutes_to_departure  integer NOT NULL,
    promo_id              text,
    tier                  integer NOT NULL,
    reason                text NOT NULL,
    target_fare_bucket    text NOT NULL,
    policy_version        text NOT NULL,
    end_time              timestamptz,
    end_reason            text,
    event_id              text PRIMARY KEY
);
CREATE INDEX fact_promotions_flight ON fact_promotions (flight_id, promo_time);
CREATE INDEX fact_promotions_promo ON fact_promotions (promo_id);

CREATE TABLE fact_promotion_end (
    promo_id         text PRIMARY KEY,
    end_time         timestamptz NOT NULL,
    flight_id        text NOT NULL,
    end_reason       text NOT NULL,
    decision_source  text NOT NULL,
    event_id         text NOT NULL
);

CREATE TABLE fact_flight_outcome (
    flight_id                   text PRIMARY KEY,
    departure_time              timestamptz NOT NULL,
    total_seats                 integer,
    booked_seats                integer NOT NULL,
    final_load_factor           numeric(5,4),
    last_metric_load_factor     numeric(5,4),
    bookings                    integer NOT NULL,
    cancelled_passengers        integer NOT NULL,
    revenue                     numeric(12,2) NOT NULL,
    currency                    text,
    promotions_fired            integer NOT NULL,
    max_discount_percentage     integer NOT NULL,
    bookings_during_promotions  integer NOT NULL,
    revenue_during_promotions   numeric(12,2) NOT NULL
);

CREATE TABLE dead_letters (
    event_id            text PRIMARY KEY,
    event_time          timestamptz NOT NULL,
    flight_id           text NOT NULL,
    source_topic        text NOT NULL,
    source_partition    integer NOT NULL,
    source_offset       bigint NOT NULL,
    reason              text NOT NULL,
    component           text NOT NULL,
    original_value_b64  text NOT NULL,
    original_key_b64    text,
    envelope            text NOT NULL       -- the dead-letter event exactly as in the lake
);
