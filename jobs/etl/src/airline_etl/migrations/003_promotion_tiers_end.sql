-- 003: superseded promotion tiers end at the next trigger; etl_runs ordered by real commit time.
--
-- Each escalation of a flight's promotion is a new PromotionTriggered (new promo_id), and the
-- engine's PromotionEnded names only the last one, so 001's rule (end = the promotion's own
-- PromotionEnded) left earlier tiers "still active" (end_time NULL). From now on a trigger ends
-- at whichever comes first: its own PromotionEnded, or the flight's next trigger
-- (end_reason 'escalated'); derived.APPLY_PROMOTION_ENDS keeps that up to date run by run.
-- This migration applies the same rule to the rows already loaded and recomputes what depends
-- on it (fact_flight_outcome's promotion columns; the views read the table). The statements
-- are the same as derived.PROMOTION_END_ROWS and derived.FLIGHT_OUTCOME, over every flight.

WITH touched AS (SELECT DISTINCT flight_id FROM fact_promotions),
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
  AND (p.end_time, p.end_reason) IS DISTINCT FROM (n.end_time, n.end_reason);

WITH f AS (SELECT d.flight_id, d.actual_departure_time AS dep
           FROM dim_flight d JOIN fact_flight_outcome o USING (flight_id)
           WHERE d.actual_departure_time IS NOT NULL),
fb AS (SELECT b.flight_id, b.booking_id, b.passenger_price,
              (b.cancellation_time IS NULL OR b.cancellation_time > f.dep) AS live,
              (b.promo_id IS NOT NULL OR EXISTS (
                  SELECT 1 FROM fact_promotions p
                  WHERE p.flight_id = b.flight_id AND p.promo_time <= b.booking_time
                    AND (p.end_time IS NULL OR b.booking_time < p.end_time))) AS in_promo
       FROM fact_booking b JOIN f USING (flight_id) WHERE b.booking_time <= f.dep),
b AS (SELECT f.flight_id,
             count(DISTINCT fb.booking_id) FILTER (WHERE fb.live AND fb.in_promo)
                 AS promo_bookings,
             COALESCE(sum(fb.passenger_price) FILTER (WHERE fb.live AND fb.in_promo), 0)
                 AS promo_revenue
      FROM f LEFT JOIN fb USING (flight_id) GROUP BY f.flight_id)
UPDATE fact_flight_outcome o
SET bookings_during_promotions = b.promo_bookings, revenue_during_promotions = b.promo_revenue
FROM b
WHERE o.flight_id = b.flight_id
  AND (o.bookings_during_promotions, o.revenue_during_promotions)
      IS DISTINCT FROM (b.promo_bookings::integer, b.promo_revenue::numeric(12,2));

-- "The latest run" is the last one committed: now() is the transaction's start, and a run
-- that waited for the load lock started before the run it waited for committed.
-- warehouse.record_run sets clock_timestamp() explicitly; this default says the same.
ALTER TABLE etl_runs ALTER COLUMN committed_at SET DEFAULT clock_timestamp();
