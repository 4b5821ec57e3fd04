-- 006: the engine's explanation of each promotion decision (schema 1.2,
-- airline_core.events.DecisionExplanation) on fact_promotions (PromotionTriggered) and
-- fact_promotion_end (PromotionEnded), one column per field, named as the field.
--
-- Types: seats and the response model (forecast_demand, forecast_low, forecast_high,
-- expected_spoilage, response_elasticity, response_evidence) numeric(12,3); money
-- (expected_revenue_with, expected_revenue_without) numeric(12,2), in the flight's currency.
-- The contract bounds every field to [-1e8, 1e8], which both types hold (9 and 10 integer
-- digits). All nullable: null when the event has no explanation (events before 1.2, and
-- decisions the policy did not explain).
--
-- Rows loaded before this migration keep nulls: run the ETL once with --full after upgrading to
-- fill the explanations of 1.2 events already loaded.

ALTER TABLE fact_promotions
    ADD COLUMN forecast_demand           numeric(12,3),
    ADD COLUMN forecast_low              numeric(12,3),
    ADD COLUMN forecast_high             numeric(12,3),
    ADD COLUMN expected_spoilage         numeric(12,3),
    ADD COLUMN response_elasticity       numeric(12,3),
    ADD COLUMN response_evidence         numeric(12,3),
    ADD COLUMN expected_revenue_with     numeric(12,2),
    ADD COLUMN expected_revenue_without  numeric(12,2);

ALTER TABLE fact_promotion_end
    ADD COLUMN forecast_demand           numeric(12,3),
    ADD COLUMN forecast_low              numeric(12,3),
    ADD COLUMN forecast_high             numeric(12,3),
    ADD COLUMN expected_spoilage         numeric(12,3),
    ADD COLUMN response_elasticity       numeric(12,3),
    ADD COLUMN response_evidence         numeric(12,3),
    ADD COLUMN expected_revenue_with     numeric(12,2),
    ADD COLUMN expected_revenue_without  numeric(12,2);

-- The trigger's explanation on the annotations, appended: the columns of 002 keep their names
-- and order (Tableau dashboards depend on them; CREATE OR REPLACE VIEW can only append).
CREATE OR REPLACE VIEW v_promotion_annotations AS
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
           || CASE WHEN p.reason <> '' THEN ' (' || p.reason || ')' ELSE '' END AS label,
       p.forecast_demand,
       p.forecast_low,
       p.forecast_high,
       p.expected_spoilage,
       p.response_elasticity,
       p.response_evidence,
       p.expected_revenue_with,
       p.expected_revenue_without
FROM fact_promotions p;
