---- tern: disable-tx ----
-- Listing tasks by status and by action (ListTasks with Statuses or
-- Actions: the console's filters), newest first with keyset paging, without
-- reading the tasks that do not match.
--
-- Before, a filtered page walked tasks_created_idx from the cursor and
-- dropped every task of another status or action: fine for the common
-- statuses, a walk of the whole table for a rare one (176 ms for the 10
-- terminating tasks among 100 000 with the generic plan prepared statements
-- get). ListTasksFiltered reads one short range of this index per
-- (action, status) pair and merges them.
--
-- Status changes were never HOT updates (partial indexes name status), so
-- this adds one index entry per status change; message appends (which
-- change only last_message_seq) stay HOT.
-- Built CONCURRENTLY, outside a transaction, so writes go on meanwhile;
-- IF NOT EXISTS so a failed build can be rerun after dropping the invalid index.
CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_action_status_created_idx ON tasks (action, status, created_at, task_id);

---- create above / drop below ----
---- tern: disable-tx ----

DROP INDEX CONCURRENTLY IF EXISTS tasks_action_status_created_idx;
