-- Fixtures for sqlc vet's rules (TestVetRulesCatchTheirFixtures): each query
-- either breaks exactly the rule the test expects of it or breaks none.

-- name: ClaimWithoutSkipLocked :many
-- Breaks claim-skips-locked: a claim that waits for rows other claimers hold.
WITH picked AS (
    SELECT task_id FROM tasks WHERE status = 'queued' ORDER BY created_at LIMIT 1 FOR UPDATE
)
UPDATE tasks t SET status = 'running' FROM picked WHERE t.task_id = picked.task_id
RETURNING t.task_id;

-- name: ClaimSkippingLocked :many
-- Breaks nothing: a claim that skips rows other claimers hold.
WITH picked AS (
    SELECT task_id FROM tasks WHERE status = 'queued' ORDER BY created_at LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE tasks t SET status = 'running' FROM picked WHERE t.task_id = picked.task_id
RETURNING t.task_id;

-- name: UpdateEveryTask :execrows
-- Breaks write-has-where: an UPDATE of the whole table.
UPDATE tasks SET retry = 0;

-- name: UpdateEveryTaskAliased :execrows
-- Breaks write-has-where: an aliased UPDATE of the whole table, inside a CTE.
WITH done AS (UPDATE tasks AS t SET retry = t.retry + 1 RETURNING t.task_id)
SELECT count(*) FROM done;

-- name: DeleteEveryMessage :execrows
-- Breaks write-has-where: a DELETE of the whole table.
DELETE FROM result_message;

-- name: DeleteOneMessage :execrows
-- Breaks nothing: a DELETE bounded by WHERE.
DELETE FROM result_message WHERE task_id = @task_id AND sequence = @sequence;

-- name: LockTaskForUpdate :one
-- Breaks nothing: FOR UPDATE in a SELECT is not an UPDATE statement.
SELECT task_id FROM tasks WHERE task_id = @task_id FOR UPDATE;

-- name: AddTextToNumber :one
-- Breaks sqlc/db-prepare: sqlc's parser accepts it, PostgreSQL does not.
SELECT retry + @label::text AS nonsense FROM tasks WHERE task_id = @task_id;
