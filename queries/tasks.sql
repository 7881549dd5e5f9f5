-- name: InsertTask :one
-- Inserts one task with every caller-settable column; returns the stored row.
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

-- name: GetTask :one
-- Reads one task by id.
SELECT * FROM tasks WHERE task_id = @task_id;
