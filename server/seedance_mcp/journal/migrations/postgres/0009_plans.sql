-- A storyboard's plan, written before its first shot is sent. Its shots are ordinary jobs (plan_shots says which);
-- the plan's time is from when an identical shot counts as the plan's own, so a call that continues the plan,
-- however late, never pays for a shot twice; a cancelled plan sends no more shots.
CREATE TABLE IF NOT EXISTS plans (
    plan_id text PRIMARY KEY,
    principal text NOT NULL DEFAULT '',
    created_at double precision NOT NULL,
    cancelled_at double precision,
    data text NOT NULL
);
CREATE TABLE IF NOT EXISTS plan_shots (
    plan_id text NOT NULL REFERENCES plans (plan_id),
    shot integer NOT NULL,
    job_id text NOT NULL,
    PRIMARY KEY (plan_id, shot)
);
