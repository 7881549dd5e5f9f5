-- name: Now :one
-- Reads the database's clock (the original's get_now).
SELECT now()::timestamptz AS now;

-- name: ListenTaskQueued :exec
-- Subscribes this session to wake-ups for newly queued tasks.
LISTEN statemgmt_task_queued;

-- name: ListenMessage :exec
-- Subscribes this session to wake-ups for appended result messages (payload: task id).
LISTEN statemgmt_message;
