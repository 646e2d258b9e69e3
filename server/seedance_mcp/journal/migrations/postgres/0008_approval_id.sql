-- An approval id pays for one video: the job it paid for records it, and the journal keeps at most one live job
-- (one that may cost money) per approval id, whatever the clocks of the processes that check the id say.
ALTER TABLE jobs ADD COLUMN approval_id text;
CREATE UNIQUE INDEX jobs_approval_id_live ON jobs (approval_id)
    WHERE approval_id IS NOT NULL AND status NOT IN ('failed', 'cancelled', 'expired', 'not_submitted');
