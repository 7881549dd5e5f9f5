-- Queries the importer runs on a Drydock database (the source), always inside
-- one REPEATABLE READ READ ONLY transaction: every page comes from the same
-- snapshot. Timestamps are read as they are stored (naive); the importer
-- places them in the source time zone. Every timestamp column is cast to
-- timestamp so that sqlc types it pgtype.Timestamp, which holds ±infinity
-- (a value no time.Time holds: scanning one into *time.Time fails the whole
-- page); the importer rejects the row instead (TestImportBreakInfiniteTimestamps).

-- name: SourceFingerprint :one
-- What the source holds: its Alembic revision, row counts, highest message sequence and newest times (resume refuses a changed source).
SELECT coalesce((SELECT string_agg(version_num, ',') FROM alembic_version), '')::text AS alembic_version,
       (SELECT count(*) FROM tasks)::bigint AS tasks,
       (SELECT count(*) FROM result_message)::bigint AS result_messages,
       (SELECT coalesce(max(sequence), 0) FROM result_message)::bigint AS max_sequence,
       (SELECT count(*) FROM build_data)::bigint AS build_data,
       (SELECT count(*) FROM boot_action)::bigint AS boot_actions,
       (SELECT count(*) FROM boot_action_status)::bigint AS boot_action_statuses,
       (SELECT count(*) FROM active_instance)::bigint AS active_instances,
       (SELECT coalesce(max(updated)::text, '') FROM tasks)::text AS tasks_updated,
       (SELECT coalesce(max(collected_date)::text, '') FROM build_data)::text AS build_data_collected;

-- name: SourceTaskGraph :many
-- Every task id with its parent and subtask list (the importer orders tasks parents first).
SELECT task_id, parent_task_id, subtask_id_list FROM tasks;

-- name: SourceTasks :many
-- The tasks with the given ids; a list holding NULL or of more than one dimension comes as NULL, named in odd_arrays.
SELECT task_id, parent_task_id, result_status, result_message, result_reason, result_error_count,
       (CASE WHEN CASE WHEN array_ndims(result_successes) > 1 THEN true ELSE array_position(result_successes, NULL) IS NOT NULL END THEN NULL ELSE result_successes END)::text[] AS result_successes,
       (CASE WHEN CASE WHEN array_ndims(result_failures) > 1 THEN true ELSE array_position(result_failures, NULL) IS NOT NULL END THEN NULL ELSE result_failures END)::text[] AS result_failures,
       concat_ws(', ', CASE WHEN CASE WHEN array_ndims(result_successes) > 1 THEN true ELSE array_position(result_successes, NULL) IS NOT NULL END THEN 'result_successes' END,
                 CASE WHEN CASE WHEN array_ndims(result_failures) > 1 THEN true ELSE array_position(result_failures, NULL) IS NOT NULL END THEN 'result_failures' END)::text AS odd_arrays,
       retry, status, created::timestamp AS created, created_by,
       updated::timestamp AS updated, design_ref,
       request_context, node_filter, action,
       terminated::timestamp AS terminated, terminated_by, terminate,
       result_links
FROM tasks
WHERE task_id = ANY(@task_ids::bytea[]);

-- name: SourceMessages :many
-- A page of result messages in global sequence order after a sequence number (primary key index),
-- with the creation time of their task (for messages without a time).
SELECT m.sequence, m.task_id, m.message, m.error, m.context, m.context_type,
       m.ts::timestamp AS ts, m.extra,
       t.created::timestamp AS task_created, (t.task_id IS NOT NULL)::boolean AS task_found
FROM result_message m
LEFT JOIN tasks t ON t.task_id = m.task_id
WHERE m.sequence > @after_sequence::integer
ORDER BY m.sequence
LIMIT @max_rows::integer;

-- name: SourceBuildDataNodes :many
-- The next node names with build data after a node name, in order (ix_build_data_node_name).
SELECT DISTINCT node_name::text AS node_name FROM build_data
WHERE node_name > @after_node::text
ORDER BY node_name
LIMIT @max_nodes::integer;

-- name: SourceBuildData :many
-- Every build data record of the given nodes, in a total order (ties are identical rows).
SELECT node_name, task_id, collected_date::timestamp AS collected_date,
       generator, data_format, data_element
FROM build_data
WHERE node_name = ANY(@node_names::text[])
ORDER BY node_name, collected_date, task_id, generator, data_format, md5(data_element);

-- name: SourceBuildDataWithoutNode :many
-- Build data records with no node name, NULL or empty (rejected: the node name is required; the node pages start after '').
SELECT node_name, task_id, collected_date::timestamp AS collected_date, generator
FROM build_data
WHERE node_name IS NULL OR node_name = ''
ORDER BY collected_date, task_id, generator;

-- name: SourceBootActions :many
-- A page of boot action contexts after a node name (primary key order).
SELECT node_name, task_id, identity_key FROM boot_action
WHERE node_name >= @after_node::text AND (node_name > @after_node::text OR @first_page::boolean) -- the first page from '' on
ORDER BY node_name
LIMIT @max_rows::integer;

-- name: SourceBootActionStatuses :many
-- A page of boot action runs after an action id (primary key order: a ULID's order is its time's).
SELECT action_id, node_name, action_name, task_id, identity_key, action_status FROM boot_action_status
WHERE action_id >= @after_action_id::bytea AND (action_id > @after_action_id::bytea OR @first_page::boolean)
ORDER BY action_id
LIMIT @max_rows::integer;

-- name: SourceActiveInstances :many
-- The leader row(s) of the source (Drydock keeps one).
SELECT dummy_key, identity, last_ping::timestamp AS last_ping
FROM active_instance
ORDER BY dummy_key;
