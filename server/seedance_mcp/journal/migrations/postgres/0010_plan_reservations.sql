-- A plan reserves its cost when it is recorded: each shot without a job holds its estimate (`reserve`, counted by
-- every budget check from `reserved_at` while its plan is `running`), and gives it up in the transaction that
-- inserts (or reuses) the shot's job. A plan's state (running | stopped | done | cancelled) says whether its
-- reservations count and whether a worker runs it; the lease says which process runs it (as for jobs).
ALTER TABLE plan_shots ALTER COLUMN job_id DROP NOT NULL;
ALTER TABLE plan_shots ADD COLUMN reserve double precision NOT NULL DEFAULT 0;
ALTER TABLE plan_shots ADD COLUMN reserved_at double precision NOT NULL DEFAULT 0;
-- Plans recorded before this version are `stopped`: a storyboard call continues them, no worker starts them alone.
ALTER TABLE plans ADD COLUMN state text NOT NULL DEFAULT 'stopped'
    CONSTRAINT plans_state_known CHECK (state IN ('running', 'stopped', 'done', 'cancelled'));
ALTER TABLE plans ADD COLUMN currency text NOT NULL DEFAULT '';
ALTER TABLE plans ADD COLUMN lease_owner text;
ALTER TABLE plans ADD COLUMN lease_expires double precision NOT NULL DEFAULT 0;
ALTER TABLE plans ADD COLUMN lease_token bigint NOT NULL DEFAULT 0;
UPDATE plans SET state = 'cancelled' WHERE cancelled_at IS NOT NULL;
CREATE INDEX plans_running ON plans (state, lease_expires);
