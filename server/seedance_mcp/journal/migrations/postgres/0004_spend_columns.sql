-- What the spend report sums, as columns (reading them out of `data` for every job of a week was the cost).
ALTER TABLE jobs ADD COLUMN model text NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN currency text;
ALTER TABLE jobs ADD COLUMN billed_tokens bigint NOT NULL DEFAULT 0;
UPDATE jobs SET model = COALESCE(data->>'model', ''), currency = data->>'currency',
    billed_tokens = COALESCE((data->>'usage_tokens')::bigint, 0);
CREATE INDEX jobs_spend ON jobs (created_at, principal, status, spend, model, currency, billed_tokens);
