-- name: LockRetentionRoots :many
-- Retention, step 1: the next max_roots top-level tasks created before the cutoff, after the cursor,
-- each locked FOR UPDATE unless another transaction holds it (locked is then false: a busy tree).
WITH candidates AS (
    SELECT tasks.task_id, tasks.created_at FROM tasks
    WHERE tasks.parent_task_id IS NULL AND tasks.created_at < @created_before
      AND (tasks.created_at, tasks.task_id) > (@after_created_at::timestamptz, @after_task_id::uuid)
    ORDER BY tasks.created_at, tasks.task_id
    LIMIT @max_roots
),
locked AS (
    SELECT t.task_id FROM tasks t
    WHERE t.task_id = ANY (ARRAY(SELECT candidates.task_id FROM candidates)) AND t.parent_task_id IS NULL
    ORDER BY t.task_id
    FOR UPDATE SKIP LOCKED
)
SELECT candidates.task_id, candidates.created_at,
       (candidates.task_id IN (SELECT locked.task_id FROM locked))::boolean AS locked
FROM candidates
ORDER BY candidates.created_at, candidates.task_id;

-- name: LockRetentionTrees :many
-- Retention, step 2 (repeated until a walk finds nothing that was not locked before it began): walks
-- the trees of the locked roots and locks every task FOR UPDATE in task_id order. Subtask creation
-- share-locks the parent, so once every task of a tree is locked no subtask can appear under it and a
-- fresh walk sees all of them, with their current statuses.
WITH RECURSIVE tree AS (
    SELECT r.task_id FROM unnest(@root_ids::uuid[]) AS r(task_id)
    UNION ALL
    SELECT child.task_id
    FROM tree
    CROSS JOIN LATERAL (SELECT c.task_id FROM tasks c WHERE c.parent_task_id = tree.task_id OFFSET 0) AS child
)
SELECT t.task_id, t.parent_task_id, t.status FROM tasks t
WHERE t.task_id = ANY (ARRAY(SELECT tree.task_id FROM tree))
ORDER BY t.task_id
FOR UPDATE;

-- name: DeleteTasksByID :one
-- Retention, step 3: deletes the given (locked) tasks, their messages by ON DELETE CASCADE, and counts
-- what went (a task's messages are exactly 1..last_message_seq).
WITH deleted AS (
    DELETE FROM tasks t WHERE t.task_id = ANY (@task_ids::uuid[])
    RETURNING t.last_message_seq
)
SELECT count(*)::bigint AS tasks, coalesce(sum(deleted.last_message_seq), 0)::bigint AS messages FROM deleted;
