-- Lists, counts and spend are asked per principal: index them that way (covering the spend columns).
DROP INDEX IF EXISTS jobs_principal;
DROP INDEX IF EXISTS jobs_spend;
CREATE INDEX jobs_principal_status ON jobs (principal, status, created_at);
CREATE INDEX jobs_principal_spend ON jobs (principal, created_at, status, spend, model, currency, billed_tokens);
