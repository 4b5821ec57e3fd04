-- 002: views for the user's two Tableau dashboards (and promotion annotations).

-- Inventory trend with promotion annotations: one row per inventory metric event.
-- x = metric_time, dual y = seats_remaining and active_discount_percentage, colour = flight_id.
-- Old-layout metrics carry no active discount: it is then the newest promotion of the flight
-- triggered at or before metric_time and not ended by then.
CREATE VIEW v_inventory_trend AS
SELECT m.flight_id,
       m.metric_time,
       m.minutes_to_departure,
       m.seats_remaining,
       m.booked_seats,
       m.total_seats,
       m.load_factor,
       COALESCE(m.active_discount_percentage, p.discount_percentage, 0) AS active_discount_percentage,
       COALESCE(m.active_promo_id, p.promo_id)                          AS active_promo_id,
       f.route,
       f.scheduled_departure_time
FROM fact_inventory_metrics m
LEFT JOIN dim_flight f ON f.flight_id = m.flight_id
LEFT JOIN LATERAL (
    SELECT fp.discount_percentage, fp.promo_id
    FROM fact_promotions fp
    WHERE m.active_discount_percentage IS NULL
      AND fp.flight_id = m.flight_id
      AND fp.promo_time <= m.metric_time
      AND (fp.end_time IS NULL OR fp.end_time > m.metric_time)
    ORDER BY fp.promo_time DESC, fp.event_id DESC
    LIMIT 1
) p ON true;

-- Promotion annotations for the trend: one row per promotion triggered (start and end).
CREATE VIEW v_promotion_annotations AS
SELECT p.flight_id,
       p.promo_time,
       p.end_time,
       p.promo_id,
       p.tier,
       p.discount_percentage,
       p.target_fare_bucket,
       p.decision_source,
       p.reason,
       p.end_reason,
       p.discount_percentage || '% on ' || p.target_fare_bucket
           || CASE WHEN p.reason <> '' THEN ' (' || p.reason || ')' ELSE '' END AS label
FROM fact_promotions p;

-- Booking pressure as departure approaches: one row per inventory metric event.
-- x = minutes_to_departure (reversed), y = load_factor, colour = flight_id.
CREATE VIEW v_booking_pressure AS
SELECT m.flight_id,
       m.metric_time,
       m.minutes_to_departure,
       m.load_factor,
       m.booked_seats,
       m.total_seats,
       m.seats_remaining,
       m.bookings_last_hour,
       m.bookings_last_day,
       m.expected_booked_to_date,
       m.forecast_load_factor,
       f.route,
       f.status,
       f.scheduled_departure_time
FROM fact_inventory_metrics m
LEFT JOIN dim_flight f ON f.flight_id = m.flight_id;
