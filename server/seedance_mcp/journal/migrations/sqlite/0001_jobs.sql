-- The job journal (see seedance_mcp/journal/__init__.py for the contract, sqlite.py for how each rule is kept).
-- The job itself is the JSON `data`; the other columns are what the journal's rules query and index.
-- IF NOT EXISTS: a journal written by the first release has the table already, without the columns added below.
CREATE TABLE IF NOT EXISTS jobs (
    job_id      TEXT PRIMARY KEY,
    task_id     TEXT,
    status      TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at  REAL NOT NULL,  -- epoch seconds, as Job.created_at
    data        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at);
CREATE INDEX IF NOT EXISTS jobs_fingerprint ON jobs (fingerprint, created_at);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);

-- Compare-and-set (every write expects the version it read) and leases (who works on a job, until when).
ALTER TABLE jobs ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN has_work INTEGER NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_expires REAL NOT NULL DEFAULT 0;

-- A provider task id belongs to at most one job. The first release's journal may hold one twice: only the first
-- job keeps it as its key.
UPDATE jobs SET task_id = NULL WHERE task_id IS NOT NULL AND rowid NOT IN
    (SELECT MIN(rowid) FROM jobs WHERE task_id IS NOT NULL GROUP BY task_id);
DROP INDEX IF EXISTS jobs_task_id;
CREATE UNIQUE INDEX jobs_task_id_unique ON jobs (task_id) WHERE task_id IS NOT NULL;
-- What `claim` scans: only jobs with work left, oldest lease first.
CREATE INDEX jobs_with_work ON jobs (lease_expires) WHERE has_work = 1;
