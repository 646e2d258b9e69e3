-- A storyboard's plan, written before its first shot is sent: its shots are ordinary jobs, and the plan's time is
-- from when an identical shot counts as the plan's own (so a call that continues the plan, however late, never pays
-- for a shot twice).
CREATE TABLE IF NOT EXISTS plans (
    plan_id TEXT PRIMARY KEY,
    principal TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    data TEXT NOT NULL
);
