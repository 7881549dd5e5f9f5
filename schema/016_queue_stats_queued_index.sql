---- tern: disable-tx ----
-- Queue statistics for the metrics (QueueStats), without one more index to
-- write: the claim's index of queued tasks and the recovery index of claimed
-- tasks carry, as INCLUDE columns, what the statistics read (each queued
-- task's action and updated_at, and each claimed task's status and action),
-- so QueueStats counts queued and running tasks by action and finds the
-- longest-waiting of each with index-only scans, however many finished tasks
-- the table holds. Same keys and predicates as before: the claim and
-- recovery plans do not change. Built in five steps (016-020) because each
-- CONCURRENTLY statement needs a migration of its own, outside a transaction.
-- Step 1: the queued tasks' index with its INCLUDE columns, beside the old one.
CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_queued_cover_idx ON tasks (created_at, task_id) INCLUDE (action, updated_at)
    WHERE status = 'queued';

---- create above / drop below ----
---- tern: disable-tx ----

DROP INDEX CONCURRENTLY IF EXISTS tasks_queued_cover_idx;
