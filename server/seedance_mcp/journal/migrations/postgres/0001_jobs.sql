-- The job journal (see seedance_mcp/journal/__init__.py for the contract, postgres.py for how each rule is kept).
-- The job itself is the JSONB `data`; the other columns are what the journal's rules query and index.
CREATE TABLE jobs (
    job_id        text PRIMARY KEY,
    task_id       text,
    status        text NOT NULL,
    fingerprint   text NOT NULL,
    created_at    double precision NOT NULL,  -- epoch seconds, as Job.created_at
    version       bigint NOT NULL DEFAULT 0,  -- compare-and-set: every write expects the version it read
    has_work      boolean NOT NULL DEFAULT true,
    lease_owner   text,                       -- NULL, or the process that works on the job ...
    lease_expires double precision NOT NULL DEFAULT 0,  -- ... until then (epoch seconds); free once passed
    data          jsonb NOT NULL
);

-- A provider task id belongs to at most one job.
CREATE UNIQUE INDEX jobs_task_id_unique ON jobs (task_id) WHERE task_id IS NOT NULL;
-- What `claim` scans: only jobs with work left, oldest lease first.
CREATE INDEX jobs_with_work ON jobs (lease_expires) WHERE has_work;
-- Dedupe look-up, `recent` by status, `recent` overall.
CREATE INDEX jobs_fingerprint ON jobs (fingerprint, created_at);
CREATE INDEX jobs_status ON jobs (status, created_at);
CREATE INDEX jobs_created ON jobs (created_at);
