-- A storyboard shot may have several takes (`shots[i].takes`), each its own job and its own reservation: plan_shots
-- gets a take number (the film uses take 1). Rows from before are take 1. SQLite changes a primary key only by
-- building the table again: the new one takes every row, the old one goes.
CREATE TABLE plan_shots_new (
    plan_id     TEXT NOT NULL REFERENCES plans (plan_id),
    shot        INTEGER NOT NULL,
    take        INTEGER NOT NULL DEFAULT 1,
    job_id      TEXT,
    reserve     REAL NOT NULL DEFAULT 0,
    reserved_at REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (plan_id, shot, take)
);
INSERT INTO plan_shots_new (plan_id, shot, take, job_id, reserve, reserved_at)
    SELECT plan_id, shot, 1, job_id, reserve, reserved_at FROM plan_shots;
DROP TABLE plan_shots;
ALTER TABLE plan_shots_new RENAME TO plan_shots;
