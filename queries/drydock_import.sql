-- Queries of the Drydock importer on the target (statectl import drydock; internal/drydockimport).

-- name: DrydockImportState :one
-- The import recorded in this database, if any.
SELECT * FROM drydock_import WHERE singleton;

-- name: StartDrydockImport :exec
-- Records that an import of this source began.
INSERT INTO drydock_import (source_fingerprint, source_timezone) VALUES (@source_fingerprint, @source_timezone);

-- name: FinishDrydockImport :exec
-- Records that the import finished.
UPDATE drydock_import SET finished_at = now() WHERE singleton;

-- name: DrydockImportProgress :many
-- Where the import stands, per source table.
SELECT * FROM drydock_import_progress ORDER BY source_table;

-- name: SaveDrydockImportProgress :exec
-- Records a source table's position and counts (in the transaction of the batch they describe).
INSERT INTO drydock_import_progress (source_table, position, rows_read, rows_written, rows_rejected, truncated, recovered, done)
VALUES (@source_table, @position, @rows_read, @rows_written, @rows_rejected, @truncated, @recovered, @done)
ON CONFLICT (source_table) DO UPDATE
SET position = excluded.position, rows_read = excluded.rows_read, rows_written = excluded.rows_written,
    rows_rejected = excluded.rows_rejected, truncated = excluded.truncated, recovered = excluded.recovered,
    done = excluded.done;

-- name: CopyDrydockImportRejected :copyfrom
-- Records rejected source rows (table, key, reason).
INSERT INTO drydock_import_rejected (source_table, source_key, reason) VALUES (@source_table, @source_key, @reason);

-- name: ListDrydockImportRejected :many
-- The rejected rows for the report, by table in the order found, at most max_rows.
SELECT source_table, source_key, reason FROM drydock_import_rejected
ORDER BY source_table, rejected_id
LIMIT @max_rows;

-- name: DrydockImportRejectedTaskKeys :many
-- The ids of rejected tasks (a resumed import rejects their subtasks and messages too).
SELECT source_key FROM drydock_import_rejected WHERE source_table = 'tasks';

-- name: CopyImportTasks :copyfrom
-- Bulk-loads imported tasks with COPY, every column the source has.
INSERT INTO tasks (task_id, parent_task_id, status, action, design_ref, node_filter, request_context, retry,
                   created_at, created_by, updated_at, terminated_at, terminated_by, terminate, result_status,
                   result_message, result_reason, result_error_count, result_successes, result_failures, result_links)
VALUES (@task_id, @parent_task_id, @status, @action, @design_ref, @node_filter, @request_context, @retry,
        @created_at, @created_by, @updated_at, @terminated_at, @terminated_by, @terminate, @result_status,
        @result_message, @result_reason, @result_error_count, @result_successes, @result_failures, @result_links);

-- name: CopyImportMessages :copyfrom
-- Bulk-loads imported result messages with COPY, already numbered per task.
INSERT INTO result_message (task_id, sequence, message, error, context, context_type, ts, extra)
VALUES (@task_id, @sequence, @message, @error, @context, @context_type, @ts, @extra);

-- name: SetImportedMessageSeqs :exec
-- At the end of the message import: moves each task's message counter up to its highest sequence
-- (one pass over result_message, by its primary key; batches do not touch tasks).
UPDATE tasks t SET last_message_seq = m.last_seq
FROM (SELECT task_id, max(sequence) AS last_seq FROM result_message GROUP BY task_id) m
WHERE t.task_id = m.task_id AND t.last_message_seq < m.last_seq;

-- name: ImportedMessageSeqs :many
-- Each task's highest message sequence (a resumed import numbers on from them; read once per resume).
SELECT task_id, max(sequence)::bigint AS last_seq FROM result_message GROUP BY task_id;

-- name: ExistingTaskIDs :many
-- Which of these task ids the target already holds (a dry run reports them as conflicts).
SELECT task_id FROM tasks WHERE task_id = ANY(@task_ids::uuid[]);

-- name: CopyImportBootActions :copyfrom
-- Bulk-loads imported boot action contexts (key digests only) with COPY.
INSERT INTO boot_action (node_name, task_id, identity_key_hash) VALUES (@node_name, @task_id, @identity_key_hash);

-- name: CopyImportBootActionStatuses :copyfrom
-- Bulk-loads imported boot action runs with COPY, in action id order (run_seq follows it).
INSERT INTO boot_action_status (action_id, node_name, action_name, task_id, identity_key_hash, action_status,
                                created_at, updated_at)
VALUES (@action_id, @node_name, @action_name, @task_id, @identity_key_hash, @action_status, @created_at, @updated_at);

-- name: RecordImportedLeader :one
-- Records the source's leader as an ended term of the leadership history (never a live leader) above
-- every term known, and raises the fence to it, so the next election starts above it.
WITH next AS (
    SELECT greatest(coalesce((SELECT f.max_term FROM leadership_fence f WHERE f.singleton), 0),
                    coalesce((SELECT a.term FROM active_instance a WHERE a.dummy_key = 1), 0),
                    coalesce((SELECT max(lt.term) FROM leader_term lt), 0)) + 1 AS term
),
history AS (
    INSERT INTO leader_term (term, identity, hostname, pid, backend_pid, elected_at, ended_at, end_reason, last_seen)
    SELECT next.term, @identity, @hostname, 0, 0, @last_ping, @last_ping, 'superseded', @last_ping FROM next
    RETURNING leader_term.term
),
fence AS (
    INSERT INTO leadership_fence (max_term)
    SELECT history.term FROM history
    ON CONFLICT (singleton) DO UPDATE SET max_term = greatest(leadership_fence.max_term, excluded.max_term)
)
SELECT history.term FROM history;

-- name: TargetRowCounts :one
-- Rows in the target tables an import fills (the report's target column).
SELECT (SELECT count(*) FROM tasks)::bigint AS tasks,
       (SELECT count(*) FROM result_message)::bigint AS result_messages,
       (SELECT count(*) FROM build_data)::bigint AS build_data,
       (SELECT count(*) FROM boot_action)::bigint AS boot_actions,
       (SELECT count(*) FROM boot_action_status)::bigint AS boot_action_statuses,
       (SELECT count(*) FROM leader_term)::bigint AS leader_terms;
