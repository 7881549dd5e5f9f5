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
-- Inserts a batch of tasks in one statement: one unnest of all the columns (linear in the batch). The
-- existing parents it names must be locked and checked first, in the same transaction (LockParents).
INSERT INTO tasks (task_id, parent_task_id, status, action, design_ref,
                   node_filter, request_context, created_by)
SELECT x.task_id, nullif(x.parent_task_id, '00000000-0000-0000-0000-000000000000'), -- nil uuid: no parent
       x.status, x.action, x.design_ref, x.node_filter, x.request_context, x.created_by
-- Several set-returning functions in one select list run in lockstep: one row per task.
FROM (SELECT unnest(@task_ids::uuid[]) AS task_id, unnest(@parent_task_ids::uuid[]) AS parent_task_id,
             unnest(@statuses::text[]) AS status, unnest(@actions::text[]) AS action,
             unnest(@design_refs::text[]) AS design_ref, unnest(@node_filters::jsonb[]) AS node_filter,
             unnest(@request_contexts::jsonb[]) AS request_context,
             unnest(@created_bys::text[]) AS created_by) AS x
RETURNING *;

-- name: LockParents :many
-- Subtask creation, step 1: share-locks the existing parents a batch names, in id order, and reads
-- their status under that lock (a concurrent TerminateTask, which row-locks the tree, waits for the
-- insert or is waited for).
SELECT task_id, status FROM tasks WHERE task_id = ANY(@task_ids::uuid[]) ORDER BY task_id FOR SHARE;

-- name: GetTask :one
-- Reads one task by id, with its subtask ids.
SELECT t.*, statemgmt_subtask_ids(t.task_id)::uuid[] AS subtask_ids FROM tasks t WHERE t.task_id = @task_id;

-- name: GetClaimStates :many
-- Reads the claim state of the given tasks: why a write naming attempts found no row (or that it
-- was already applied: complete under that attempt with that result).
SELECT task_id, status, attempt, claimed_by, result_status FROM tasks WHERE task_id = ANY(@task_ids::uuid[]);

-- name: GetTasks :many
-- Reads the given tasks, with their subtask ids, in no order (idempotent retries return them).
SELECT t.*, statemgmt_subtask_ids(t.task_id)::uuid[] AS subtask_ids FROM tasks t WHERE t.task_id = ANY(@task_ids::uuid[]);

-- name: ListTasks :many
-- Lists tasks newest first with optional filters and keyset pagination on (created_at, task_id).
SELECT t.*, statemgmt_subtask_ids(t.task_id)::uuid[] AS subtask_ids FROM tasks t
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
SELECT t.*, statemgmt_subtask_ids(t.task_id)::uuid[] AS subtask_ids FROM tasks t
WHERE t.parent_task_id = @parent_task_id::uuid
  AND (cardinality(@statuses::text[]) = 0 OR t.status = ANY(@statuses::text[]))
ORDER BY t.created_at, t.task_id;

-- name: UpdateTask :one
-- Compare-and-swap update: changes only the given fields, only if the version matches, the current
-- status is one the new status may follow, and the attempt rule holds (a task under a live claim only
-- for that claim's attempt; attempt 0: only a task under no live claim; a claim is live while the task
-- is running or terminating under it); bumps the version.
-- No row: not found, stale version, stale attempt, or invalid change.
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
  AND CASE WHEN @attempt::bigint = 0
           THEN NOT (claimed_by IS NOT NULL AND status IN ('running', 'terminating'))
           ELSE attempt = @attempt::bigint AND claimed_by IS NOT NULL AND status IN ('running', 'terminating') END
RETURNING *, statemgmt_subtask_ids(task_id)::uuid[] AS subtask_ids;

-- name: ClaimTasks :many
-- Atomically takes up to max_tasks of the oldest queued tasks (optionally only the given actions),
-- skipping rows other claimers hold, and marks them running for the claimer as a new attempt; returns
-- when each was queued (its updated_at before the claim) for the enqueue-to-claim latency metric.
-- Subtask ids come from one join for the batch: statemgmt_subtask_ids per row cost ~3.5x as much.
WITH picked AS (
    SELECT task_id, updated_at AS queued_since FROM tasks
    WHERE status = 'queued'
      AND (cardinality(@actions::text[]) = 0 OR action = ANY(@actions::text[]))
    ORDER BY created_at, task_id
    LIMIT @max_tasks
    FOR UPDATE SKIP LOCKED
),
claimed AS (
    UPDATE tasks t
    SET status = 'running',
        claimed_by = @claimed_by::text,
        claimed_at = coalesce(sqlc.narg('now')::timestamptz, now()),
        attempt = t.attempt + 1,
        version = t.version + 1,
        updated_at = now()
    FROM picked
    WHERE t.task_id = picked.task_id
    RETURNING t.*, picked.queued_since
)
SELECT claimed.*, coalesce(kids.ids, '{}')::uuid[] AS subtask_ids
FROM claimed
LEFT JOIN LATERAL (
    SELECT array_agg(c.task_id ORDER BY c.created_at, c.task_id) AS ids
    FROM tasks c WHERE c.parent_task_id = claimed.task_id
) kids ON true;

-- name: RequeueTasksOfClaimer :many
-- Recovery of a claimer that is gone: its running tasks go back to the queue (retry + 1), its
-- terminating tasks become terminated (nobody is left to finish them).
UPDATE tasks
SET status = CASE WHEN status = 'running' THEN 'queued' ELSE 'terminated' END,
    claimed_by = CASE WHEN status = 'running' THEN NULL ELSE claimed_by END,
    claimed_at = CASE WHEN status = 'running' THEN NULL ELSE claimed_at END,
    retry = CASE WHEN status = 'running' THEN retry + 1 ELSE retry END,
    terminated_at = CASE WHEN status = 'running' THEN terminated_at ELSE coalesce(terminated_at, now()) END,
    version = version + 1, updated_at = now()
WHERE status IN ('running', 'terminating') AND claimed_by = @claimed_by::text
RETURNING *, statemgmt_subtask_ids(task_id)::uuid[] AS subtask_ids;

-- name: RequeueStaleTasks :many
-- Recovery of claims older than a cutoff, whoever made them: running tasks go back to the queue
-- (retry + 1), terminating tasks become terminated.
UPDATE tasks
SET status = CASE WHEN status = 'running' THEN 'queued' ELSE 'terminated' END,
    claimed_by = CASE WHEN status = 'running' THEN NULL ELSE claimed_by END,
    claimed_at = CASE WHEN status = 'running' THEN NULL ELSE claimed_at END,
    retry = CASE WHEN status = 'running' THEN retry + 1 ELSE retry END,
    terminated_at = CASE WHEN status = 'running' THEN terminated_at ELSE coalesce(terminated_at, now()) END,
    version = version + 1, updated_at = now()
WHERE status IN ('running', 'terminating') AND claimed_at < @claimed_before::timestamptz
RETURNING *, statemgmt_subtask_ids(task_id)::uuid[] AS subtask_ids;

-- name: RequeueClaimedTasks :many
-- The owner gives claimed tasks back to the queue (retry + 1), each only if still running under the
-- named attempt; the others are left alone.
UPDATE tasks t
SET status = 'queued', claimed_by = NULL, claimed_at = NULL, retry = t.retry + 1,
    version = t.version + 1, updated_at = now()
FROM (SELECT unnest(@task_ids::uuid[]) AS task_id, unnest(@attempts::bigint[]) AS attempt) AS w
WHERE t.task_id = ANY(@task_ids::uuid[]) AND t.task_id = w.task_id AND t.attempt = w.attempt AND t.status = 'running'
RETURNING t.*, statemgmt_subtask_ids(t.task_id)::uuid[] AS subtask_ids;

-- name: LockTaskTree :many
-- Termination, step 1 (repeated until a walk finds nothing that was not locked before it began):
-- walks a task's tree and locks all its tasks in task_id order. Subtask creation share-locks the
-- parent, so once every task of the tree is locked, no new subtask can appear under it and a fresh
-- walk sees them all.
WITH RECURSIVE tree AS (
    SELECT tasks.task_id FROM tasks WHERE tasks.task_id = @task_id
    UNION ALL
    SELECT child.task_id
    FROM tree
    CROSS JOIN LATERAL (SELECT c.task_id FROM tasks c WHERE c.parent_task_id = tree.task_id OFFSET 0) AS child
)
SELECT t.task_id, t.status FROM tasks t
WHERE t.task_id = ANY (ARRAY(SELECT tree.task_id FROM tree))
ORDER BY t.task_id
FOR NO KEY UPDATE;

-- name: TerminateTasks :many
-- Termination, step 2: marks the locked tasks: not yet running → terminated, running → terminating;
-- final and already terminating ones are left alone (their terminated_by stays).
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
WHERE t.task_id = ANY(@task_ids::uuid[]) AND t.status NOT IN ('complete', 'terminated', 'terminating')
RETURNING t.*, statemgmt_subtask_ids(t.task_id)::uuid[] AS subtask_ids;

-- name: CountTaskTreesCreatedBefore :many
-- Retention preview: the tasks of every tree whose top-level task was created before the cutoff,
-- counted by status, separately for finished trees (every task complete or terminated) and the rest.
WITH RECURSIVE tagged AS (
    SELECT tasks.task_id AS root_id, tasks.task_id, tasks.status FROM tasks
    WHERE tasks.parent_task_id IS NULL AND tasks.created_at < @created_before
    UNION ALL
    SELECT tagged.root_id, child.task_id, child.status
    FROM tagged
    CROSS JOIN LATERAL (SELECT c.task_id, c.status FROM tasks c WHERE c.parent_task_id = tagged.task_id OFFSET 0) AS child
),
active_roots AS (
    SELECT DISTINCT tagged.root_id FROM tagged WHERE tagged.status NOT IN ('complete', 'terminated')
)
SELECT (tagged.root_id IN (SELECT active_roots.root_id FROM active_roots))::boolean AS active_tree,
       tagged.status, count(*)::bigint AS tasks
FROM tagged
GROUP BY 1, 2
ORDER BY 1, 2;

-- name: CompleteTasks :many
-- Marks running tasks complete with a result status, each only if still running under the named
-- attempt; the others are left alone. Subtask ids from one join for the batch (see ClaimTasks).
WITH completed AS (
    UPDATE tasks t
    SET status = 'complete', result_status = @result_status::text,
        version = t.version + 1, updated_at = now()
    FROM (SELECT unnest(@task_ids::uuid[]) AS task_id, unnest(@attempts::bigint[]) AS attempt) AS w
    WHERE t.task_id = ANY(@task_ids::uuid[]) AND t.task_id = w.task_id AND t.attempt = w.attempt AND t.status = 'running'
    RETURNING t.*
)
SELECT completed.*, coalesce(kids.ids, '{}')::uuid[] AS subtask_ids
FROM completed
LEFT JOIN LATERAL (
    SELECT array_agg(c.task_id ORDER BY c.created_at, c.task_id) AS ids
    FROM tasks c WHERE c.parent_task_id = completed.task_id
) kids ON true;

-- name: TransactionIsolation :one
-- Reads the current transaction's isolation level: TerminateTask needs READ COMMITTED.
SELECT current_setting('transaction_isolation')::text AS isolation;

-- name: ListTasksFiltered :many
-- ListTasks with a status or action filter (statuses: those asked, or all six; actions: those asked,
-- or every action in the table, found with a skip scan of the index) and no parent or time filter:
-- for each (action, status) pair, the newest tasks from the cursor through
-- tasks_action_status_created_idx, one short range each, merged.
WITH RECURSIVE known_actions AS (
    (SELECT x.action FROM tasks x ORDER BY x.action LIMIT 1)
    UNION ALL
    SELECT (SELECT x.action FROM tasks x WHERE x.action > k.action ORDER BY x.action LIMIT 1)
    FROM known_actions k
    WHERE k.action IS NOT NULL
),
acts AS (
    SELECT a.action FROM unnest(@actions::text[]) AS a(action) WHERE cardinality(@actions::text[]) > 0
    UNION ALL
    SELECT k.action FROM known_actions k WHERE cardinality(@actions::text[]) = 0 AND k.action IS NOT NULL
)
SELECT t.*, statemgmt_subtask_ids(t.task_id)::uuid[] AS subtask_ids
FROM acts
CROSS JOIN unnest(@statuses::text[]) AS s(status)
CROSS JOIN LATERAL (
    SELECT x.* FROM tasks x
    WHERE x.action = acts.action AND x.status = s.status
      AND (x.created_at, x.task_id) < (@cursor_created_at::timestamptz, @cursor_task_id::uuid)
    ORDER BY x.created_at DESC, x.task_id DESC
    LIMIT @max_rows
) AS t
ORDER BY t.created_at DESC, t.task_id DESC
LIMIT @max_rows;
