-- 008: a run of a catch-up (ETL_CATCH_UP) that leaves new lake entries to the run after it
-- commits without a gold folder: exporting every changed table after each piece of a backlog
-- would repeat the export of ever larger tables. The last run of the catch-up exports them
-- all; a run that finds the latest one deferred does so even with nothing new to load.
ALTER TABLE etl_runs ALTER COLUMN gold_dir DROP NOT NULL;
COMMENT ON COLUMN etl_runs.gold_dir IS
    'the run''s gold folder; NULL: a catch-up run that left gold to a later run';
