-- Tasks: every orchestrator task, queued, running or done, and the ordered log
-- of result messages each task produces.
--
-- Differences from the original Drydock schema:
--   * ids are uuid (the original used raw bytea(16));
--   * timestamps are timestamptz, json columns are jsonb;
--   * status vocabularies and lengths are CHECK constraints, not conventions;
--   * version supports optimistic concurrency (compare-and-swap updates);
--   * last_message_seq hands out a gap-free per-task message sequence under the
--     task's row lock, instead of a global serial that commits out of order;
--   * claimed_by / claimed_at record which orchestrator took a queued task;
--   * subtasks and messages are deleted with their task (ON DELETE CASCADE).

CREATE TABLE tasks (
    task_id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    parent_task_id     uuid        REFERENCES tasks (task_id) ON DELETE CASCADE,
    subtask_id_list    uuid[]      NOT NULL DEFAULT '{}',
    status             text        NOT NULL DEFAULT 'requested',
    action             text        NOT NULL,
    design_ref         text        NOT NULL DEFAULT '',
    node_filter        jsonb,
    request_context    jsonb,
    -- squawk-ignore prefer-bigint-over-int -- a retry counter, far below 2^31
    retry              integer     NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),
    created_by         text        NOT NULL DEFAULT '',
    updated_at         timestamptz NOT NULL DEFAULT now(),
    terminated_at      timestamptz,
    terminated_by      text,
    terminate          boolean     NOT NULL DEFAULT false,
    result_status      text        NOT NULL DEFAULT 'incomplete',
    result_message     text        NOT NULL DEFAULT '',
    result_reason      text        NOT NULL DEFAULT '',
    -- squawk-ignore prefer-bigint-over-int -- errors in one result, far below 2^31
    result_error_count integer     NOT NULL DEFAULT 0,
    result_successes   text[]      NOT NULL DEFAULT '{}',
    result_failures    text[]      NOT NULL DEFAULT '{}',
    result_links       jsonb       NOT NULL DEFAULT '[]',
    version            bigint      NOT NULL DEFAULT 1,
    last_message_seq   bigint      NOT NULL DEFAULT 0,
    claimed_by         text,
    claimed_at         timestamptz,

    CONSTRAINT tasks_status_check CHECK (status IN
        ('requested', 'queued', 'running', 'terminating', 'terminated', 'complete')),
    CONSTRAINT tasks_result_status_check CHECK (result_status IN
        ('incomplete', 'success', 'partial_success', 'failure', 'unreported')),
    CONSTRAINT tasks_action_check CHECK (action ~ '^[a-z][a-z0-9_]{0,63}$'),
    CONSTRAINT tasks_parent_not_self CHECK (parent_task_id <> task_id),
    CONSTRAINT tasks_design_ref_length CHECK (char_length(design_ref) <= 2048),
    CONSTRAINT tasks_created_by_length CHECK (char_length(created_by) <= 256),
    CONSTRAINT tasks_terminated_by_length CHECK (char_length(terminated_by) <= 256),
    CONSTRAINT tasks_claimed_by_length CHECK (char_length(claimed_by) <= 256),
    CONSTRAINT tasks_result_message_length CHECK (char_length(result_message) <= 65536),
    CONSTRAINT tasks_result_reason_length CHECK (char_length(result_reason) <= 65536),
    CONSTRAINT tasks_retry_nonnegative CHECK (retry >= 0),
    CONSTRAINT tasks_result_error_count_nonnegative CHECK (result_error_count >= 0),
    CONSTRAINT tasks_version_positive CHECK (version > 0),
    CONSTRAINT tasks_last_message_seq_nonnegative CHECK (last_message_seq >= 0),
    CONSTRAINT tasks_result_links_array CHECK (jsonb_typeof(result_links) = 'array'),
    CONSTRAINT tasks_claim_pair CHECK ((claimed_by IS NULL) = (claimed_at IS NULL))
);

COMMENT ON TABLE tasks IS 'Every orchestrator task; the orchestrator takes its work from here.';
COMMENT ON COLUMN tasks.version IS 'Incremented by every update; updates must name the version they read.';
COMMENT ON COLUMN tasks.last_message_seq IS 'Sequence number of the newest result_message of this task (0: none).';

-- Subtasks of a parent (and the foreign key's cascade).
CREATE INDEX tasks_parent_idx ON tasks (parent_task_id) WHERE parent_task_id IS NOT NULL;
-- Listing newest first with keyset pagination, and retention by age.
CREATE INDEX tasks_created_idx ON tasks (created_at, task_id);
-- Claiming: the oldest queued tasks only; stays small however many tasks are done.
CREATE INDEX tasks_queued_idx ON tasks (created_at, task_id) WHERE status = 'queued';
-- Recovery: running tasks by claimer and claim age.
CREATE INDEX tasks_running_claim_idx ON tasks (claimed_at) WHERE status = 'running';

CREATE TABLE result_message (
    task_id      uuid        NOT NULL REFERENCES tasks (task_id) ON DELETE CASCADE,
    sequence     bigint      NOT NULL,
    message      text        NOT NULL,
    error        boolean     NOT NULL DEFAULT false,
    context      text        NOT NULL DEFAULT '',
    context_type text        NOT NULL DEFAULT '',
    ts           timestamptz NOT NULL DEFAULT now(),
    extra        jsonb,

    PRIMARY KEY (task_id, sequence),
    CONSTRAINT result_message_sequence_positive CHECK (sequence > 0),
    CONSTRAINT result_message_message_length CHECK (char_length(message) <= 65536),
    CONSTRAINT result_message_context_length CHECK (char_length(context) <= 1024),
    CONSTRAINT result_message_context_type_length CHECK (char_length(context_type) <= 64)
);

COMMENT ON TABLE result_message IS 'The ordered log of a task: sequence is 1, 2, 3 ... per task, without gaps.';

---- create above / drop below ----

-- squawk-ignore ban-drop-table -- down section: undoes what the up section created
DROP TABLE result_message;
-- squawk-ignore ban-drop-table -- down section: undoes what the up section created
DROP TABLE tasks;
