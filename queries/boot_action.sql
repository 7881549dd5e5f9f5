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
-- Records a new boot action run on a node.
INSERT INTO boot_action_status (action_id, node_name, action_name, task_id, identity_key_hash, action_status)
VALUES (@action_id, @node_name, @action_name, @task_id, @identity_key_hash, @action_status)
RETURNING *;

-- name: GetBootActionStatus :one
-- Reads one boot action status by action id.
SELECT * FROM boot_action_status WHERE action_id = @action_id;
