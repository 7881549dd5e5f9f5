---- tern: disable-tx ----
-- Queue statistics, step 3 (see 016): the old queued tasks' index goes; its
-- covering twin (016) serves the claim meanwhile.
DROP INDEX CONCURRENTLY IF EXISTS tasks_queued_idx;

---- create above / drop below ----
---- tern: disable-tx ----

CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_queued_idx ON tasks (created_at, task_id) WHERE status = 'queued';
