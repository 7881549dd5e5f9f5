-- squawk must reject: constraint-missing-not-valid
-- A constraint added and checked at once scans the whole table while holding
-- a lock that blocks writes.
ALTER TABLE tasks ADD CONSTRAINT tasks_retry_small CHECK (retry < 1000);
