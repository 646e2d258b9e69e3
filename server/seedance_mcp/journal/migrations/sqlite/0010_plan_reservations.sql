-- A plan reserves its cost when it is recorded: each shot without a job holds its estimate (`reserve`, counted by
-- every budget check from `reserved_at` while its plan is `running`), and gives it up in the transaction that
-- inserts (or reuses) the shot's job. A plan's state (running | stopped | done | cancelled) says whether its
-- reservations count and whether a worker runs it; the lease says which process runs it (as for jobs).
-- SQLite drops a NOT NULL only by building the table again: the new one takes every row, the old one goes.
CREATE TABLE plan_shots_new (
    plan_id     TEXT NOT NULL REFERENCES plans (plan_id),
    shot        INTEGER NOT NULL,
    job_id      TEXT,
    reserve     REAL NOT NULL DEFAULT 0,
    reserved_at REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (plan_id, shot)
);
INSERT INTO plan_shots_new (plan_id, shot, job_id) SELECT plan_id, shot, job_id FROM plan_shots;
DROP TABLE plan_shots;
ALTER TABLE plan_shots_new RENAME TO plan_shots;
-- Plans recorded before this version are `stopped`: a storyboard call continues them, no worker starts them alone.
ALTER TABLE plans ADD COLUMN state TEXT NOT NULL DEFAULT 'stopped'
    CONSTRAINT plans_state_known CHECK (state IN ('running', 'stopped', 'done', 'cancelled'));
ALTER TABLE plans ADD COLUMN currency TEXT NOT NULL DEFAULT '';
ALTER TABLE plans ADD COLUMN lease_owner TEXT;
ALTER TABLE plans ADD COLUMN lease_expires REAL NOT NULL DEFAULT 0;
ALTER TABLE plans ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;
UPDATE plans SET state = 'cancelled' WHERE cancelled_at IS NOT NULL;
CREATE INDEX plans_running ON plans (state, lease_expires);
