-- 007: what the read-only reader airline_bi may see: SELECT on the star schema (dim_*, fact_*)
-- and the review views (v_*), USAGE on the warehouse's schema, nothing else (no writes, no
-- ETL bookkeeping: etl_*, schema_migrations). Tableau and Grafana log in as it.
--
-- The role belongs to whoever runs the database (CloudNativePG's managed roles in
-- k8s/postgres.yaml, airline-stack locally), not to the ETL, which cannot create roles; where it
-- does not exist this grants nothing and says so. A later migration that adds a review table
-- or view grants it SELECT the same way (a test checks that every dim_/fact_/v_ object is
-- readable by it).
DO $$
DECLARE
    review record;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'airline_bi') THEN
        RAISE NOTICE 'role airline_bi does not exist: no grants for BI tools';
        RETURN;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO airline_bi', current_schema());
    FOR review IN
        SELECT c.relname FROM pg_class c
         WHERE c.relnamespace = current_schema()::regnamespace
           AND c.relkind IN ('r', 'v', 'm', 'p')
           AND (c.relname LIKE 'dim\_%' OR c.relname LIKE 'fact\_%' OR c.relname LIKE 'v\_%')
    LOOP
        EXECUTE format('GRANT SELECT ON %I TO airline_bi', review.relname);
    END LOOP;
END $$;
