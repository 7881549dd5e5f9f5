-- Boot actions: per-node context (which task deploys the node and the secret the
-- node must present) and the status of every boot action run on a node.
--
-- The original stored the 32-byte identity key itself. This schema stores only
-- its SHA-256 digest: the key is handed to the caller once, when it is created,
-- and a presented key is verified by comparing digests in constant time. A
-- leaked database therefore leaks no usable node key.
--
-- task_id has no foreign key: the context of a deployed node must outlive the
-- retention of the task that deployed it.

CREATE TABLE boot_action (
    node_name         text        PRIMARY KEY,
    task_id           uuid        NOT NULL,
    identity_key_hash bytea       NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT boot_action_node_name_check CHECK (node_name ~ '^[A-Za-z0-9][A-Za-z0-9._-]*$' AND char_length(node_name) <= 280),
    CONSTRAINT boot_action_identity_key_hash_length CHECK (octet_length(identity_key_hash) = 32)
);

COMMENT ON COLUMN boot_action.identity_key_hash IS 'SHA-256 of the node''s 32-byte identity key; the key itself is never stored.';

CREATE TABLE boot_action_status (
    action_id         uuid        PRIMARY KEY,
    node_name         text        NOT NULL,
    action_name       text        NOT NULL,
    task_id           uuid        NOT NULL,
    identity_key_hash bytea       NOT NULL,
    action_status     text        NOT NULL DEFAULT 'incomplete',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT boot_action_status_node_name_check CHECK (node_name ~ '^[A-Za-z0-9][A-Za-z0-9._-]*$' AND char_length(node_name) <= 280),
    CONSTRAINT boot_action_status_action_name_check CHECK (char_length(action_name) BETWEEN 1 AND 64),
    CONSTRAINT boot_action_status_identity_key_hash_length CHECK (octet_length(identity_key_hash) = 32),
    CONSTRAINT boot_action_status_action_status_check CHECK (action_status IN
        ('incomplete', 'success', 'partial_success', 'failure', 'unreported'))
);

COMMENT ON COLUMN boot_action_status.action_id IS 'A ULID stored in its 16-byte binary form; rendered as 26-character text at the API.';

-- A node's statuses keyed by action name.
CREATE INDEX boot_action_status_node_idx ON boot_action_status (node_name, action_name);

---- create above / drop below ----

-- squawk-ignore ban-drop-table -- down section: undoes what the up section created
DROP TABLE boot_action_status;
-- squawk-ignore ban-drop-table -- down section: undoes what the up section created
DROP TABLE boot_action;
