-- name: UpsertBootAction :one
-- Creates or replaces a node's boot action context (task and identity key digest).
INSERT INTO boot_action (node_name, task_id, identity_key_hash)
VALUES (@node_name, @task_id, @identity_key_hash)
ON CONFLICT (node_name) DO UPDATE
SET task_id = excluded.task_id,
    identity_key_hash = excluded.identity_key_hash,
    updated_at = now()
RETURNING *;

-- name: GetBootAction :one
-- Reads a node's boot action context.
SELECT * FROM boot_action WHERE node_name = @node_name;

-- name: InsertBootActionStatus :one
-- Records a new boot action run on a node (tests and tools: the caller supplies the key digest).
INSERT INTO boot_action_status (action_id, node_name, action_name, task_id, identity_key_hash, action_status)
VALUES (@action_id, @node_name, @action_name, @task_id, @identity_key_hash, @action_status)
RETURNING *;

-- name: CreateBootActionStatus :one
-- Records a new boot action run on a node with the key digest of the node's current context;
-- no row when the node has no boot action context.
INSERT INTO boot_action_status (action_id, node_name, action_name, task_id, identity_key_hash, action_status)
SELECT @action_id, b.node_name, @action_name, @task_id, b.identity_key_hash, @action_status
FROM boot_action b
WHERE b.node_name = @node_name
RETURNING *;

-- name: UpdateBootActionStatus :one
-- Changes the status of one boot action run while it is incomplete (every other status is final);
-- no row for an unknown action id or a final status (re-checked after waiting for a concurrent update's row lock).
UPDATE boot_action_status SET action_status = @action_status, updated_at = now()
WHERE action_id = @action_id
  AND action_status = 'incomplete'
RETURNING *;

-- name: GetBootActionStatus :one
-- Reads one boot action status by action id.
SELECT * FROM boot_action_status WHERE action_id = @action_id;

-- name: ListBootActionStatusesOfNode :many
-- A node's boot action statuses, the newest run of each action name (highest run_seq: recorded last).
SELECT DISTINCT ON (action_name) *
FROM boot_action_status
WHERE node_name = @node_name
ORDER BY action_name, run_seq DESC;
