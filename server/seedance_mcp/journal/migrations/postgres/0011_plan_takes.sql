-- A storyboard shot may have several takes (`shots[i].takes`), each its own job and its own reservation: plan_shots
-- gets a take number (the film uses take 1). Rows from before are take 1.
ALTER TABLE plan_shots ADD COLUMN take integer NOT NULL DEFAULT 1;
ALTER TABLE plan_shots DROP CONSTRAINT plan_shots_pkey;
ALTER TABLE plan_shots ADD PRIMARY KEY (plan_id, shot, take);
