-- 004: the input contract's reason codes (airline_core.contract.Reason) on every reject.
--
-- A line the ETL rejects and the record the engine sends to dead_letter carry the same stable
-- code (reason keeps the human detail, "<code>: <detail>"), so the two can be compared and
-- grouped without parsing text. Rows loaded before this migration have no code ('').

ALTER TABLE etl_rejects ADD COLUMN reason_code text NOT NULL DEFAULT '';
ALTER TABLE dead_letters ADD COLUMN reason_code text NOT NULL DEFAULT '';
ALTER TABLE dead_letters ADD COLUMN original_size bigint;
ALTER TABLE dead_letters ADD COLUMN original_sha256 text;
CREATE INDEX etl_rejects_reason_code ON etl_rejects (reason_code);
CREATE INDEX dead_letters_reason_code ON dead_letters (reason_code);
