-- The status column holds a job's states only (seedance_mcp/journal/job.py STATUSES): the database itself refuses
-- any other. SQLite adds a constraint to a table only by building it again: the new table takes every row, the old
-- one goes, and the indexes are made anew (which also replaces the first release's `jobs_status` on status alone).
CREATE TABLE jobs_new (
    job_id        TEXT PRIMARY KEY,
    task_id       TEXT,
    status        TEXT NOT NULL CONSTRAINT jobs_status_known CHECK (status IN (
        'submitting', 'unknown', 'not_submitted', 'queued', 'running', 'succeeded', 'failed', 'cancelled', 'expired'
    )),
    fingerprint   TEXT NOT NULL,
    created_at    REAL NOT NULL,
    data          TEXT NOT NULL,
    version       INTEGER NOT NULL DEFAULT 0,
    has_work      INTEGER NOT NULL DEFAULT 1,
    lease_owner   TEXT,
    lease_expires REAL NOT NULL DEFAULT 0,
    spend         REAL NOT NULL DEFAULT 0,
    principal     TEXT NOT NULL DEFAULT '',
    model         TEXT NOT NULL DEFAULT '',
    currency      TEXT,
    billed_tokens INTEGER NOT NULL DEFAULT 0,
    lease_token   INTEGER NOT NULL DEFAULT 0
);
INSERT INTO jobs_new (job_id, task_id, status, fingerprint, created_at, data, version, has_work, lease_owner,
                      lease_expires, spend, principal, model, currency, billed_tokens, lease_token)
SELECT job_id, task_id, status, fingerprint, created_at, data, version, has_work, lease_owner,
       lease_expires, spend, principal, model, currency, billed_tokens, lease_token
FROM jobs ORDER BY rowid;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE INDEX jobs_status ON jobs (status, created_at);
CREATE INDEX jobs_fingerprint ON jobs (fingerprint, created_at);
CREATE INDEX jobs_created ON jobs (created_at);
CREATE UNIQUE INDEX jobs_task_id_unique ON jobs (task_id) WHERE task_id IS NOT NULL;
CREATE INDEX jobs_with_work ON jobs (lease_expires) WHERE has_work = 1;
CREATE INDEX jobs_principal_status ON jobs (principal, status, created_at);
CREATE INDEX jobs_principal_spend ON jobs (principal, created_at, status, spend, model, currency, billed_tokens);
