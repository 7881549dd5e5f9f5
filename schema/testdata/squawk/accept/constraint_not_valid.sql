-- squawk must accept: a constraint added NOT VALID (new rows are checked at
-- once, the brief lock scans nothing); the next migration validates it.
ALTER TABLE tasks ADD CONSTRAINT tasks_retry_small CHECK (retry < 1000) NOT VALID;

---- create above / drop below ----

ALTER TABLE tasks DROP CONSTRAINT tasks_retry_small;
