-- Queue statistics for the metrics, without one more index to write: the
-- claim's index of queued tasks and the recovery index of claimed tasks
-- carry, as INCLUDE columns, what the statistics read (each queued task's
-- action and updated_at — the moment it was queued or requeued — and each
-- claimed task's status and action). QueueStats then counts the queued and
-- running tasks by action and finds the longest-waiting of each with
-- index-only scans of these two partial indexes, however many finished tasks
-- the table holds. Without the columns PostgreSQL scans the whole table.
-- Same keys and predicates as before: the claim and recovery plans do not
-- change; each entry is a little wider.

CREATE INDEX tasks_queued_cover_idx ON tasks (created_at, task_id) INCLUDE (action, updated_at)
    WHERE status = 'queued';
DROP INDEX tasks_queued_idx;
ALTER INDEX tasks_queued_cover_idx RENAME TO tasks_queued_idx;

CREATE INDEX tasks_claimed_cover_idx ON tasks (claimed_at) INCLUDE (status, action)
    WHERE status IN ('running', 'terminating');
DROP INDEX tasks_claimed_idx;
ALTER INDEX tasks_claimed_cover_idx RENAME TO tasks_claimed_idx;

---- create above / drop below ----

CREATE INDEX tasks_claimed_plain_idx ON tasks (claimed_at) WHERE status IN ('running', 'terminating');
DROP INDEX tasks_claimed_idx;
ALTER INDEX tasks_claimed_plain_idx RENAME TO tasks_claimed_idx;

CREATE INDEX tasks_queued_plain_idx ON tasks (created_at, task_id) WHERE status = 'queued';
DROP INDEX tasks_queued_idx;
ALTER INDEX tasks_queued_plain_idx RENAME TO tasks_queued_idx;
