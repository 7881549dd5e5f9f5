-- Task attempts, derived subtask lists, recovery of terminating tasks.
--
--   * attempt counts the claims of a task: every claim adds one and the
--     claimed task carries it. Completing, failing, requeueing by the owner
--     and updating a claimed task name the attempt, so a worker whose claim
--     was requeued and claimed again can no longer write (a stale attempt).
--   * subtask_id_list is dropped: rewriting the parent's array on every
--     subtask made fan-out quadratic in WAL and table size. The list is read
--     from the children themselves (tasks_parent_idx) by
--     statemgmt_subtask_ids, oldest first (created_at, then id).
--   * running/terminating tasks without a claimer are requeued/terminated.
--   * the recovery index covers terminating tasks as well as running ones:
--     both are held by a claimer, and recovery finds both.

-- Running or terminating tasks without a claimer (the old UpdateTask could
-- make them from queued) are found by no recovery call: recover them here,
-- as recovery would have, running ones back to the queue (retry + 1) and
-- terminating ones terminated. (claimed_at is NULL with claimed_by:
-- tasks_claim_pair.)
UPDATE tasks SET status = 'queued', retry = retry + 1, version = version + 1, updated_at = now()
WHERE status = 'running' AND claimed_by IS NULL;
UPDATE tasks SET status = 'terminated', terminated_at = coalesce(terminated_at, now()),
                 version = version + 1, updated_at = now()
WHERE status = 'terminating' AND claimed_by IS NULL;

ALTER TABLE tasks ADD COLUMN attempt bigint NOT NULL DEFAULT 0;
-- squawk-ignore constraint-missing-not-valid -- applied before squawk ran here; a released migration is not rewritten (new ones: docs/sql.md)
ALTER TABLE tasks ADD CONSTRAINT tasks_attempt_nonnegative CHECK (attempt >= 0);
COMMENT ON COLUMN tasks.attempt IS 'Number of claims so far; a claimed task''s writes must name it.';
-- Tasks claimed before attempts existed count as their first attempt.
UPDATE tasks SET attempt = 1 WHERE claimed_by IS NOT NULL;

-- squawk-ignore ban-drop-column -- subtask lists are read from the children since this migration; applied before squawk ran here; a released migration is not rewritten (new ones: docs/sql.md)
ALTER TABLE tasks DROP COLUMN subtask_id_list;

-- Subtasks of a parent, oldest first: the index also serves the order.
-- squawk-ignore require-concurrent-index-creation -- applied before squawk ran here; a released migration is not rewritten (new ones: docs/sql.md)
CREATE INDEX tasks_parent_created_idx ON tasks (parent_task_id, created_at, task_id)
    WHERE parent_task_id IS NOT NULL;
-- squawk-ignore require-concurrent-index-deletion -- applied before squawk ran here; a released migration is not rewritten (new ones: docs/sql.md)
DROP INDEX tasks_parent_idx;
ALTER INDEX tasks_parent_created_idx RENAME TO tasks_parent_idx;

CREATE FUNCTION statemgmt_subtask_ids(parent uuid) RETURNS uuid[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(c.task_id ORDER BY c.created_at, c.task_id), '{}')
    FROM tasks c WHERE c.parent_task_id = parent
$$;
COMMENT ON FUNCTION statemgmt_subtask_ids(uuid) IS 'Direct subtasks of a task, oldest first.';

-- squawk-ignore require-concurrent-index-creation -- applied before squawk ran here; a released migration is not rewritten (new ones: docs/sql.md)
CREATE INDEX tasks_claimed_idx ON tasks (claimed_at) WHERE status IN ('running', 'terminating');
-- squawk-ignore require-concurrent-index-deletion -- applied before squawk ran here; a released migration is not rewritten (new ones: docs/sql.md)
DROP INDEX tasks_running_claim_idx;

---- create above / drop below ----

-- squawk-ignore require-concurrent-index-creation -- down section: undoes what the up section created
CREATE INDEX tasks_running_claim_idx ON tasks (claimed_at) WHERE status = 'running';
-- squawk-ignore require-concurrent-index-deletion -- down section: undoes what the up section created
DROP INDEX tasks_claimed_idx;
DROP FUNCTION statemgmt_subtask_ids(uuid);
ALTER TABLE tasks ADD COLUMN subtask_id_list uuid[] NOT NULL DEFAULT '{}';
UPDATE tasks p SET subtask_id_list = c.ids
FROM (SELECT parent_task_id, array_agg(task_id ORDER BY created_at, task_id) AS ids
      FROM tasks WHERE parent_task_id IS NOT NULL GROUP BY parent_task_id) c
WHERE p.task_id = c.parent_task_id;
-- squawk-ignore require-concurrent-index-creation -- down section: undoes what the up section created
CREATE INDEX tasks_parent_plain_idx ON tasks (parent_task_id) WHERE parent_task_id IS NOT NULL;
-- squawk-ignore require-concurrent-index-deletion -- down section: undoes what the up section created
DROP INDEX tasks_parent_idx;
ALTER INDEX tasks_parent_plain_idx RENAME TO tasks_parent_idx;
-- squawk-ignore ban-drop-column -- down section: undoes what the up section created
ALTER TABLE tasks DROP COLUMN attempt;
