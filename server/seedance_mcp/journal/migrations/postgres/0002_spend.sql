-- What each job counts against a budget (Job.spend: billed, or estimated while it may still be billed).
ALTER TABLE jobs ADD COLUMN spend double precision NOT NULL DEFAULT 0;
