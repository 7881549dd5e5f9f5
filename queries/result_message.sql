-- name: AppendResultMessage :one
-- Appends one message to a task, numbering it with the task's next sequence
-- under the task's row lock (gap-free, ordered); returns no row if the task does not exist.
WITH next AS (
    UPDATE tasks
    SET last_message_seq = last_message_seq + 1,
        result_error_count = result_error_count + CASE WHEN @error::boolean THEN 1 ELSE 0 END
    WHERE tasks.task_id = @task_id
    RETURNING tasks.task_id, tasks.last_message_seq
)
INSERT INTO result_message (task_id, sequence, message, error, context, context_type, ts, extra)
SELECT next.task_id, next.last_message_seq, @message, @error, @context, @context_type,
       coalesce(sqlc.narg('ts')::timestamptz, now()), sqlc.narg('extra')
FROM next
RETURNING *;

-- name: AppendResultMessages :many
-- Appends a batch of messages to one task in one statement: the task's counter moves by the batch
-- size under its row lock and the messages take the numbers in input order; returns only the
-- assigned sequence numbers and times (the caller has the rest); no rows if no such task. An empty
-- client message id stores NULL (none).
WITH input AS (
    -- ROWS FROM (unnest, ...) walks the arrays in step: linear in the batch. (Subscripting
    -- (array)[ord] per row is not: a text or jsonb array is walked from its start for every lookup.)
    SELECT x.message, x.error, x.context, x.context_type, x.has_ts, x.ts, x.extra, x.client_message_id, x.ord
    FROM ROWS FROM (unnest(@messages::text[]), unnest(@errors::boolean[]), unnest(@contexts::text[]),
                    unnest(@context_types::text[]), unnest(@has_ts::boolean[]), unnest(@tss::timestamptz[]),
                    unnest(@extras::jsonb[]), unnest(@client_message_ids::text[]))
         WITH ORDINALITY AS x(message, error, context, context_type, has_ts, ts, extra, client_message_id, ord)
),
next AS (
    UPDATE tasks
    SET last_message_seq = last_message_seq + (SELECT count(*) FROM input),
        result_error_count = result_error_count + (SELECT count(*) FROM input WHERE input.error)
    WHERE tasks.task_id = @task_id
    RETURNING tasks.task_id, tasks.last_message_seq
)
INSERT INTO result_message (task_id, sequence, message, error, context, context_type, ts, extra, client_message_id)
SELECT next.task_id, next.last_message_seq - (SELECT count(*) FROM input) + i.ord,
       i.message, i.error, i.context, i.context_type,
       CASE WHEN i.has_ts THEN i.ts ELSE now() END, i.extra, nullif(i.client_message_id, '')
FROM input i, next
RETURNING result_message.sequence, result_message.ts;

-- name: GetResultMessage :one
-- Reads one message by task and sequence.
SELECT * FROM result_message WHERE task_id = @task_id AND sequence = @sequence;

-- name: ListResultMessages :many
-- Reads a task's messages after a sequence number, in order, at most max_rows.
SELECT * FROM result_message
WHERE task_id = @task_id AND sequence > @after_sequence
ORDER BY sequence
LIMIT @max_rows;

-- name: ListResultMessagesOfTasks :many
-- Reads every message of a set of tasks in one query (no query per task), unordered: the caller
-- groups them by task and orders each task's few messages itself, cheaper than sorting them all here.
SELECT * FROM result_message
WHERE task_id = ANY(@task_ids::uuid[]);

-- name: LockTaskForAppend :one
-- Idempotent append, step 1: takes the task's row lock that appends take (so a duplicate append waits
-- for the original and then sees it); no row if no such task.
SELECT task_id FROM tasks WHERE task_id = @task_id FOR NO KEY UPDATE;

-- name: ListMessagesByClientID :many
-- Idempotent append, step 2: the task's messages already stored under the given client message ids.
SELECT * FROM result_message
WHERE task_id = @task_id AND client_message_id IS NOT NULL AND client_message_id = ANY(@client_message_ids::text[]);
