-- The status column holds a job's states only (seedance_mcp/journal/job.py STATUSES): the database itself refuses
-- any other.
ALTER TABLE jobs ADD CONSTRAINT jobs_status_known CHECK (status IN (
    'submitting', 'unknown', 'not_submitted', 'queued', 'running', 'succeeded', 'failed', 'cancelled', 'expired'
));
