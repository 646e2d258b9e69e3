-- What the spend report sums, as columns (reading them out of `data` for every job of a week was the cost).
ALTER TABLE jobs ADD COLUMN model TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN currency TEXT;
ALTER TABLE jobs ADD COLUMN billed_tokens INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET model = COALESCE(json_extract(data, '$.model'), ''), currency = json_extract(data, '$.currency'),
    billed_tokens = COALESCE(json_extract(data, '$.usage_tokens'), 0);
CREATE INDEX jobs_spend ON jobs (created_at, principal, status, spend, model, currency, billed_tokens);
