-- name: InsertTask :one
-- Inserts one task row with every column set by the caller (tests and tools; the store uses InsertTasks).
INSERT INTO tasks (
    task_id, parent_task_id, status, action, design_ref, node_filter,
    request_context, retry, created_by, terminate, result_status,
    result_message, result_reason, result_error_count, result_successes,
    result_failures, result_links
) VALUES (
    @task_id, sqlc.narg('parent_task_id'), @status, @action, @design_ref, sqlc.narg('node_filter'),
    sqlc.narg('request_context'), @retry, @created_by, @terminate, @result_status,
    @result_message, @result_reason, @result_error_count,
    coalesce(@result_successes::text[], '{}'), coalesce(@result_failures::text[], '{}'),
    coalesce(sqlc.narg('result_links')::jsonb, '[]')
)
RETURNING *;

-- name: InsertTasks :many
-- Inserts a batch of tasks in one statement and records each subtask in its parent's subtask list
-- (parents in the batch get their list at insert; existing parents are updated in the same statement).
WITH input AS (
    SELECT x.task_id,
           nullif((@parent_task_ids::uuid[])[x.ord], '00000000-0000-0000-0000-000000000000') AS parent_task_id, -- nil uuid: no parent
           (@statuses::text[])[x.ord] AS status,
           (@actions::text[])[x.ord] AS action,
           (@design_refs::text[])[x.ord] AS design_ref,
           (@node_filters::jsonb[])[x.ord] AS node_filter,
           (@request_contexts::jsonb[])[x.ord] AS request_context,
           (@created_bys::text[])[x.ord] AS created_by,
           x.ord
    FROM unnest(@task_ids::uuid[]) WITH ORDINALITY AS x(task_id, ord)
),
inserted AS (
    INSERT INTO tasks (task_id, parent_task_id, subtask_id_list, status, action, design_ref,
                       node_filter, request_context, created_by)
    SELECT i.task_id, i.parent_task_id,
           coalesce((SELECT array_agg(c.task_id ORDER BY c.ord) FROM input c WHERE c.parent_task_id = i.task_id), '{}'),
           i.status, i.action, i.design_ref, i.node_filter, i.request_context, i.created_by
    FROM input i
    ORDER BY i.ord
    RETURNING *
),
existing_parents AS (
    UPDATE tasks p
    SET subtask_id_list = p.subtask_id_list || c.ids,
        updated_at = now()
    FROM (SELECT parent_task_id, array_agg(task_id ORDER BY ord) AS ids
          FROM input WHERE parent_task_id IS NOT NULL
          GROUP BY parent_task_id) c
    WHERE p.task_id = c.parent_task_id
    RETURNING p.task_id
)
SELECT * FROM inserted;

-- name: GetTask :one
-- Reads one task by id.
SELECT * FROM tasks WHERE task_id = @task_id;

-- name: ListTasks :many
-- Lists tasks newest first with optional filters and keyset pagination on (created_at, task_id).
SELECT * FROM tasks
WHERE (cardinality(@statuses::text[]) = 0 OR status = ANY(@statuses::text[]))
  AND (cardinality(@actions::text[]) = 0 OR action = ANY(@actions::text[]))
  AND (sqlc.narg('parent_task_id')::uuid IS NULL OR parent_task_id = sqlc.narg('parent_task_id')::uuid)
  AND (sqlc.narg('created_after')::timestamptz IS NULL OR created_at > sqlc.narg('created_after')::timestamptz)
  AND (sqlc.narg('created_before')::timestamptz IS NULL OR created_at < sqlc.narg('created_before')::timestamptz)
  -- Always a keyset condition (the first page passes the far future), so even a generic plan
  -- starts the index scan at the cursor instead of filtering from the newest row.
  AND (created_at, task_id) < (@cursor_created_at::timestamptz, @cursor_task_id::uuid)
ORDER BY created_at DESC, task_id DESC
LIMIT @max_rows;

-- name: ListSubtasks :many
-- Lists the direct subtasks of a parent, oldest first, optionally only those in the given statuses.
SELECT * FROM tasks
WHERE parent_task_id = @parent_task_id::uuid
  AND (cardinality(@statuses::text[]) = 0 OR status = ANY(@statuses::text[]))
ORDER BY created_at, task_id;

-- name: UpdateTask :one
-- Compare-and-swap update: changes only the given fields, only if the version matches and the current
-- status is one the new status may follow; bumps the version. No row: not found, stale, or invalid change.
UPDATE tasks
SET status          = coalesce(sqlc.narg('status')::text, status),
    design_ref      = coalesce(sqlc.narg('design_ref')::text, design_ref),
    node_filter     = coalesce(sqlc.narg('node_filter')::jsonb, node_filter),
    request_context = coalesce(sqlc.narg('request_context')::jsonb, request_context),
    retry           = coalesce(sqlc.narg('retry')::integer, retry),
    terminate       = coalesce(sqlc.narg('terminate')::boolean, terminate),
    result_status   = coalesce(sqlc.narg('result_status')::text, result_status),
    result_message  = coalesce(sqlc.narg('result_message')::text, result_message),
    result_reason   = coalesce(sqlc.narg('result_reason')::text, result_reason),
    result_successes = coalesce(sqlc.narg('result_successes')::text[], result_successes),
    result_failures = coalesce(sqlc.narg('result_failures')::text[], result_failures),
    result_links    = coalesce(sqlc.narg('result_links')::jsonb, result_links),
    terminated_at   = CASE WHEN sqlc.narg('status')::text = 'terminated' THEN coalesce(terminated_at, now())
                           ELSE terminated_at END,
    terminated_by   = coalesce(sqlc.narg('terminated_by')::text, terminated_by),
    claimed_by      = CASE WHEN sqlc.narg('status')::text IN ('requested', 'queued') THEN NULL ELSE claimed_by END,
    claimed_at      = CASE WHEN sqlc.narg('status')::text IN ('requested', 'queued') THEN NULL ELSE claimed_at END,
    version         = version + 1,
    updated_at      = now()
WHERE task_id = @task_id
  AND version = @expected_version
  AND (sqlc.narg('status')::text IS NULL OR status = sqlc.narg('status')::text
       OR status = ANY(@allowed_from::text[]))
RETURNING *;

-- name: ClaimTasks :many
-- Atomically takes up to max_tasks of the oldest queued tasks (optionally only the given actions),
-- skipping rows other claimers hold, and marks them running for the claimer.
WITH picked AS (
    SELECT task_id FROM tasks
    WHERE status = 'queued'
      AND (cardinality(@actions::text[]) = 0 OR action = ANY(@actions::text[]))
    ORDER BY created_at, task_id
    LIMIT @max_tasks
    FOR UPDATE SKIP LOCKED
)
UPDATE tasks t
SET status = 'running',
    claimed_by = @claimed_by::text,
    claimed_at = coalesce(sqlc.narg('now')::timestamptz, now()),
    version = t.version + 1,
    updated_at = now()
FROM picked
WHERE t.task_id = picked.task_id
RETURNING t.*;

-- name: RequeueTasksOfClaimer :many
-- Returns the running tasks of a claimer that is gone to the queue (retry + 1), for recovery after a failover.
UPDATE tasks
SET status = 'queued', claimed_by = NULL, claimed_at = NULL, retry = retry + 1,
    version = version + 1, updated_at = now()
WHERE status = 'running' AND claimed_by = @claimed_by::text
RETURNING *;

-- name: RequeueStaleTasks :many
-- Returns running tasks claimed before a cutoff to the queue (retry + 1), whoever claimed them.
UPDATE tasks
SET status = 'queued', claimed_by = NULL, claimed_at = NULL, retry = retry + 1,
    version = version + 1, updated_at = now()
WHERE status = 'running' AND claimed_at < @claimed_before::timestamptz
RETURNING *;

-- name: TerminateTaskTree :many
-- Marks a task and all its descendants: not yet running → terminated, running → terminating;
-- final ones are left alone. Rows are locked in task_id order so concurrent calls cannot deadlock.
WITH RECURSIVE tree AS (
    SELECT tasks.task_id FROM tasks WHERE tasks.task_id = @task_id
    UNION ALL
    SELECT child.task_id
    FROM tree
    CROSS JOIN LATERAL (SELECT c.task_id FROM tasks c WHERE c.parent_task_id = tree.task_id OFFSET 0) AS child
),
locked AS (
    SELECT t.task_id FROM tasks t JOIN tree ON t.task_id = tree.task_id
    WHERE t.status NOT IN ('complete', 'terminated')
    ORDER BY t.task_id
    FOR UPDATE OF t
)
UPDATE tasks t
SET status = CASE WHEN t.status IN ('requested', 'queued') THEN 'terminated'
                  WHEN t.status = 'running' THEN 'terminating'
                  ELSE t.status END,
    terminate = true,
    terminated_at = CASE WHEN t.status IN ('requested', 'queued') THEN now() ELSE t.terminated_at END,
    terminated_by = @terminated_by::text,
    claimed_by = CASE WHEN t.status IN ('requested', 'queued') THEN NULL ELSE t.claimed_by END,
    claimed_at = CASE WHEN t.status IN ('requested', 'queued') THEN NULL ELSE t.claimed_at END,
    version = t.version + 1,
    updated_at = now()
FROM locked
WHERE t.task_id = locked.task_id
RETURNING t.*;

-- name: DeleteTaskTreesCreatedBefore :one
-- Retention, one batch: deletes up to max_roots top-level tasks created before the cutoff together with
-- all their subtasks; their messages go by ON DELETE CASCADE (index lookups on result_message's key).
-- Returns how many tasks and messages went (a task's messages are exactly 1..last_message_seq).
-- The subtask walk is a LATERAL lookup behind OFFSET 0 so it stays an index nested loop whatever
-- the planner guesses about the recursion's size. Call until tasks is 0.
WITH RECURSIVE roots AS (
    SELECT tasks.task_id FROM tasks
    WHERE tasks.parent_task_id IS NULL AND tasks.created_at < @created_before
    ORDER BY tasks.created_at, tasks.task_id
    LIMIT @max_roots
    FOR UPDATE SKIP LOCKED
),
tree AS (
    SELECT roots.task_id FROM roots
    UNION ALL
    SELECT child.task_id
    FROM tree
    CROSS JOIN LATERAL (SELECT c.task_id FROM tasks c WHERE c.parent_task_id = tree.task_id OFFSET 0) AS child
),
deleted AS (
    DELETE FROM tasks t
    WHERE t.task_id = ANY (ARRAY(SELECT tree.task_id FROM tree))
    RETURNING t.last_message_seq
)
SELECT count(*)::bigint AS tasks, coalesce(sum(deleted.last_message_seq), 0)::bigint AS messages
FROM deleted;

-- name: CompleteTasks :many
-- Marks running tasks complete with a result status in one statement, but only those still claimed by
-- the caller (a task requeued and claimed by another instance meanwhile is left alone).
UPDATE tasks
SET status = 'complete', result_status = @result_status::text,
    version = version + 1, updated_at = now()
WHERE task_id = ANY(@task_ids::uuid[]) AND status = 'running' AND claimed_by = @claimed_by::text
RETURNING *;
