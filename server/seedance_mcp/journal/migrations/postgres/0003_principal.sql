-- Whose job this is: the authenticated caller over HTTP, '' for the one local user on stdio.
ALTER TABLE jobs ADD COLUMN principal text NOT NULL DEFAULT '';
CREATE INDEX jobs_principal ON jobs (principal, created_at);
