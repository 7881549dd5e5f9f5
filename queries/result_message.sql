-- name: AppendResultMessage :one
-- Appends one message to a task, numbering it with the task's next sequence
-- under the task's row lock (gap-free, ordered); returns no row if the task does not exist.
WITH next AS (
    UPDATE tasks
    SET last_message_seq = last_message_seq + 1
    WHERE tasks.task_id = @task_id
    RETURNING tasks.task_id, tasks.last_message_seq
)
INSERT INTO result_message (task_id, sequence, message, error, context, context_type, ts, extra)
SELECT next.task_id, next.last_message_seq, @message, @error, @context, @context_type,
       coalesce(sqlc.narg('ts')::timestamptz, now()), sqlc.narg('extra')
FROM next
RETURNING *;

-- name: GetResultMessage :one
-- Reads one message by task and sequence.
SELECT * FROM result_message WHERE task_id = @task_id AND sequence = @sequence;
