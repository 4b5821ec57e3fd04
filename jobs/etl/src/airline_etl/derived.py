"""SQL that recomputes what depends on several events, for what a run touched.

Each statement reads the warehouse (not just the run's rows), so the result does not depend on
which run brought which event: incremental loading gives the same tables as a full rebuild.
"Touched" comes from the run's staging tables (``stg_*``), plus the flights and bookings whose
rows the engine's verdicts retracted in this run (``stg_retracted_flights``,
``stg_retracted_bookings``, made by :mod:`airline_etl.verdicts`). Every write carries an
``IS DISTINCT FROM`` guard, so re-running changes nothing.
"""

from __future__ import annotations

from typing import Final

#: ``dim_flight`` from every lifecycle event of the flights the run touched.
DIM_FLIGHT: Final = """
WITH touched AS (SELECT flight_id FROM stg_flight_event
                 UNION SELECT flight_id FROM stg_retracted_flights),
ev AS (SELECT e.* FROM fact_flight_event e JOIN touched USING (flight_id)),
sched AS (SELECT DISTINCT ON (flight_id) * FROM ev WHERE event_type = 'FlightScheduled'
          ORDER BY flight_id, event_time DESC, event_id DESC),
delay AS (SELECT DISTINCT ON (flight_id) flight_id, new_departure_time, delay_minutes FROM ev
          WHERE event_type = 'FlightDelayed' ORDER BY flight_id, event_time DESC, event_id DESC),
cancel AS (SELECT DISTINCT ON (flight_id) flight_id, event_time, reason FROM ev
           WHERE event_type = 'FlightCancelled' ORDER BY flight_id, event_time, event_id),
agg AS (SELECT flight_id,
               min(event_time) FILTER (WHERE event_type = 'CheckInOpened') AS check_in,
               min(event_time) FILTER (WHERE event_type = 'BoardingStarted') AS boarding,
               min(actual_departure_time) FILTER (WHERE event_type = 'FlightDeparted') AS departed,
               max(event_time) AS last_event_time
        FROM ev GROUP BY flight_id)
INSERT INTO dim_flight AS d (
    flight_id, flight_number, airline_code, origin_airport, destination_airport, route,
    aircraft_type, total_seats, cabin_capacity, scheduled_departure_time,
    scheduled_arrival_time, current_departure_time, actual_departure_time, delay_minutes,
    status, check_in_opened_time, boarding_started_time, cancelled_time, cancel_reason,
    currency, last_event_time)
SELECT a.flight_id, NULLIF(s.flight_number, ''), s.airline_code, s.origin_airport,
       s.destination_airport, s.origin_airport || '-' || s.destination_airport,
       s.aircraft_type, s.total_seats,
       (SELECT string_agg(c.cabin_code || ':' || c.seat_count, ' ' ORDER BY c.cabin_code)
          FROM dim_flight_cabin c WHERE c.flight_id = a.flight_id),
       s.scheduled_departure_time, s.scheduled_arrival_time,
       COALESCE(dl.new_departure_time, s.scheduled_departure_time), a.departed,
       COALESCE(dl.delay_minutes, 0),
       CASE WHEN x.flight_id IS NOT NULL THEN 'cancelled'
            WHEN a.departed IS NOT NULL THEN 'departed'
            WHEN a.boarding IS NOT NULL THEN 'boarding'
            WHEN a.check_in IS NOT NULL THEN 'check_in_open'
            WHEN dl.flight_id IS NOT NULL THEN 'delayed'
            ELSE 'scheduled' END,
       a.check_in, a.boarding, x.event_time, x.reason, s.currency, a.last_event_time
FROM agg a LEFT JOIN sched s USING (flight_id) LEFT JOIN delay dl USING (flight_id)
     LEFT JOIN cancel x USING (flight_id)
ON CONFLICT (flight_id) DO UPDATE SET
    flight_number = EXCLUDED.flight_number, airline_code = EXCLUDED.airline_code,
    origin_airport = EXCLUDED.origin_airport, destination_airport = EXCLUDED.destination_airport,
    route = EXCLUDED.route, aircraft_type = EXCLUDED.aircraft_type,
    total_seats = EXCLUDED.total_seats, cabin_capacity = EXCLUDED.cabin_capacity,
    scheduled_departure_time = EXCLUDED.scheduled_departure_time,
    scheduled_arrival_time = EXCLUDED.scheduled_arrival_time,
    current_departure_time = EXCLUDED.current_departure_time,
    actual_departure_time = EXCLUDED.actual_departure_time,
    delay_minutes = EXCLUDED.delay_minutes, status = EXCLUDED.status,
    check_in_opened_time = EXCLUDED.check_in_opened_time,
    boarding_started_time = EXCLUDED.boarding_started_time,
    cancelled_time = EXCLUDED.cancelled_time, cancel_reason = EXCLUDED.cancel_reason,
    currency = EXCLUDED.currency, last_event_time = EXCLUDED.last_event_time
WHERE d IS DISTINCT FROM EXCLUDED
"""

#: ``dim_flight`` rows of retracted flights that have no lifecycle event left.
DIM_FLIGHT_GONE: Final = """
DELETE FROM dim_flight d USING stg_retracted_flights r
WHERE d.flight_id = r.flight_id
  AND NOT EXISTS (SELECT 1 FROM fact_flight_event e WHERE e.flight_id = d.flight_id)
"""

#: ``fact_booking.cancellation_time`` from ``fact_booking_cancellation`` (either first).
APPLY_CANCELLATIONS: Final = """
WITH touched AS (SELECT booking_id FROM stg_booking
                 UNION SELECT booking_id FROM stg_booking_cancellation
                 UNION SELECT booking_id FROM stg_retracted_bookings),
c AS (SELECT b.booking_id, b.passenger_id, min(c.cancellation_time) AS t
      FROM fact_booking b JOIN touched USING (booking_id)
      JOIN fact_booking_cancellation c
        ON c.booking_id = b.booking_id AND c.passenger_id IN (b.passenger_id, '')
      GROUP BY b.booking_id, b.passenger_id)
UPDATE fact_booking b SET cancellation_time = c.t FROM c
WHERE b.booking_id = c.booking_id AND b.passenger_id = c.passenger_id
  AND b.cancellation_time IS DISTINCT FROM c.t
"""

#: ``fact_booking.cancellation_time`` back to null where the cancellation was retracted.
RESET_CANCELLATIONS: Final = """
UPDATE fact_booking b SET cancellation_time = NULL FROM stg_retracted_bookings k
WHERE b.booking_id = k.booking_id AND b.cancellation_time IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM fact_booking_cancellation c WHERE c.booking_id = b.booking_id
                  AND c.passenger_id IN (b.passenger_id, ''))
"""

#: ``fact_promotions.end_time`` / ``end_reason`` of every trigger of the flights a run touched.
#: Each escalation is a new ``PromotionTriggered`` with a new ``promo_id`` and the engine's
#: ``PromotionEnded`` names only the last one, so a trigger ends at whichever comes first: its
#: own ``PromotionEnded`` (its reason), or the flight's next trigger (``'escalated'``). Computed
#: per flight from the warehouse (a later run bringing the next trigger updates the earlier
#: row), so incremental equals full. Migration 003 applies the same rule to rows loaded before.
PROMOTION_END_ROWS: Final = """
t AS (SELECT p.event_id, p.promo_id,
             lead(p.promo_time) OVER (PARTITION BY p.flight_id
                                      ORDER BY p.promo_time, p.event_id) AS next_time
      FROM fact_promotions p JOIN touched USING (flight_id)),
n AS (SELECT t.event_id,
             CASE WHEN e.end_time IS NOT NULL
                       AND (t.next_time IS NULL OR e.end_time <= t.next_time)
                  THEN e.end_time ELSE t.next_time END AS end_time,
             CASE WHEN e.end_time IS NOT NULL
                       AND (t.next_time IS NULL OR e.end_time <= t.next_time)
                  THEN e.end_reason
                  WHEN t.next_time IS NOT NULL THEN 'escalated' END AS end_reason
      FROM t LEFT JOIN fact_promotion_end e ON e.promo_id = t.promo_id)
UPDATE fact_promotions p SET end_time = n.end_time, end_reason = n.end_reason FROM n
WHERE p.event_id = n.event_id
  AND (p.end_time, p.end_reason) IS DISTINCT FROM (n.end_time, n.end_reason)
"""

APPLY_PROMOTION_ENDS: Final = """
WITH touched AS (SELECT flight_id FROM stg_promotion
                 UNION SELECT p.flight_id FROM fact_promotions p
                       JOIN stg_promotion_end s ON s.promo_id = p.promo_id),
""" + PROMOTION_END_ROWS

#: ``fact_flight_outcome`` for the departed flights the run touched.
FLIGHT_OUTCOME: Final = """
WITH f AS (SELECT d.flight_id, d.actual_departure_time AS dep, d.total_seats, d.currency
           FROM dim_flight d WHERE d.actual_departure_time IS NOT NULL
             AND (d.flight_id IN (SELECT flight_id FROM stg_ledger)
                  OR d.flight_id IN (SELECT flight_id FROM stg_retracted_flights))),
fb AS (SELECT b.flight_id, b.booking_id, b.passenger_price,
              (b.cancellation_time IS NULL OR b.cancellation_time > f.dep) AS live,
              (b.promo_id IS NOT NULL OR EXISTS (
                  SELECT 1 FROM fact_promotions p
                  WHERE p.flight_id = b.flight_id AND p.promo_time <= b.booking_time
                    AND (p.end_time IS NULL OR b.booking_time < p.end_time))) AS in_promo
       FROM fact_booking b JOIN f USING (flight_id) WHERE b.booking_time <= f.dep),
b AS (SELECT flight_id,
             count(*) FILTER (WHERE live) AS booked_seats,
             count(DISTINCT booking_id) FILTER (WHERE live) AS bookings,
             count(*) FILTER (WHERE NOT live) AS cancelled_passengers,
             COALESCE(sum(passenger_price) FILTER (WHERE live), 0) AS revenue,
             count(DISTINCT booking_id) FILTER (WHERE live AND in_promo) AS promo_bookings,
             COALESCE(sum(passenger_price) FILTER (WHERE live AND in_promo), 0) AS promo_revenue
      FROM fb GROUP BY flight_id),
p AS (SELECT p.flight_id, count(*) AS fired, max(p.discount_percentage) AS max_discount
      FROM fact_promotions p JOIN f USING (flight_id) WHERE p.promo_time <= f.dep
      GROUP BY p.flight_id),
m AS (SELECT DISTINCT ON (m.flight_id) m.flight_id, m.load_factor
      FROM fact_inventory_metrics m JOIN f USING (flight_id) WHERE m.metric_time <= f.dep
      ORDER BY m.flight_id, m.metric_time DESC, m.event_id DESC)
INSERT INTO fact_flight_outcome AS o (
    flight_id, departure_time, total_seats, booked_seats, final_load_factor,
    last_metric_load_factor, bookings, cancelled_passengers, revenue, currency,
    promotions_fired, max_discount_percentage, bookings_during_promotions,
    revenue_during_promotions)
SELECT f.flight_id, f.dep, f.total_seats, COALESCE(b.booked_seats, 0),
       CASE WHEN f.total_seats > 0
            THEN LEAST(round(COALESCE(b.booked_seats, 0)::numeric / f.total_seats, 4), 9.9999)
       END,
       m.load_factor, COALESCE(b.bookings, 0), COALESCE(b.cancelled_passengers, 0),
       COALESCE(b.revenue, 0), f.currency, COALESCE(p.fired, 0), COALESCE(p.max_discount, 0),
       COALESCE(b.promo_bookings, 0), COALESCE(b.promo_revenue, 0)
FROM f LEFT JOIN b USING (flight_id) LEFT JOIN p USING (flight_id) LEFT JOIN m USING (flight_id)
ON CONFLICT (flight_id) DO UPDATE SET
    departure_time = EXCLUDED.departure_time, total_seats = EXCLUDED.total_seats,
    booked_seats = EXCLUDED.booked_seats, final_load_factor = EXCLUDED.final_load_factor,
    last_metric_load_factor = EXCLUDED.last_metric_load_factor, bookings = EXCLUDED.bookings,
    cancelled_passengers = EXCLUDED.cancelled_passengers, revenue = EXCLUDED.revenue,
    currency = EXCLUDED.currency, promotions_fired = EXCLUDED.promotions_fired,
    max_discount_percentage = EXCLUDED.max_discount_percentage,
    bookings_during_promotions = EXCLUDED.bookings_during_promotions,
    revenue_during_promotions = EXCLUDED.revenue_during_promotions
WHERE o IS DISTINCT FROM EXCLUDED
"""

#: ``fact_flight_outcome`` rows of retracted flights that are no longer departed.
OUTCOME_GONE: Final = """
DELETE FROM fact_flight_outcome o USING stg_retracted_flights r
WHERE o.flight_id = r.flight_id
  AND NOT EXISTS (SELECT 1 FROM dim_flight d WHERE d.flight_id = o.flight_id
                  AND d.actual_departure_time IS NOT NULL)
"""

#: ``dim_date`` over the days of the run's events and departures.
DIM_DATE: Final = """
WITH r AS (
    SELECT min(t) AS lo, max(t) AS hi FROM (
        SELECT event_time AS t FROM stg_ledger
        UNION ALL SELECT scheduled_departure_time FROM stg_flight_event
        UNION ALL SELECT new_departure_time FROM stg_flight_event
        UNION ALL SELECT actual_departure_time FROM stg_flight_event) x)
INSERT INTO dim_date
SELECT d::date, extract(year FROM d)::int,
       extract(quarter FROM d)::int, extract(month FROM d)::int, trim(to_char(d, 'Month')),
       extract(day FROM d)::int, extract(isodow FROM d)::int, trim(to_char(d, 'Day')),
       extract(week FROM d)::int, extract(isodow FROM d) IN (6, 7)
FROM r, generate_series(date_trunc('day', r.lo), date_trunc('day', r.hi), interval '1 day') d
WHERE r.lo IS NOT NULL
ON CONFLICT (date_key) DO NOTHING
"""

#: After a retraction, the days ``--full`` would not have: ``dim_date`` covers the days from
#: the first to the last time loaded (events, departures), and a retracted event may have been
#: the first or the last. Runs only when this run retracted something (one-time filter).
DIM_DATE_TRIM: Final = """
WITH t AS (
    SELECT event_time AS t FROM etl_event_ledger WHERE EXISTS (SELECT 1 FROM stg_retracted)
    UNION ALL SELECT scheduled_departure_time FROM fact_flight_event
              WHERE EXISTS (SELECT 1 FROM stg_retracted)
    UNION ALL SELECT new_departure_time FROM fact_flight_event
              WHERE EXISTS (SELECT 1 FROM stg_retracted)
    UNION ALL SELECT actual_departure_time FROM fact_flight_event
              WHERE EXISTS (SELECT 1 FROM stg_retracted)),
r AS (SELECT min(t)::date AS lo, max(t)::date AS hi FROM t)
DELETE FROM dim_date d USING r
WHERE EXISTS (SELECT 1 FROM stg_retracted)
  AND (r.lo IS NULL OR d.date_key < r.lo OR d.date_key > r.hi)
"""
