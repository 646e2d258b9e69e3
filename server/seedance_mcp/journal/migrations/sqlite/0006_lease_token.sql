-- A lease is a fence: every claim raises the job's token, and the holder's renewals and writes carry the token they
-- were given, so the journal refuses them once another process has claimed the job since.
ALTER TABLE jobs ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;
