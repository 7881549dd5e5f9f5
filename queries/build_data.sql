-- name: InsertBuildData :one
-- Inserts one build-data record; collected_at defaults to the database clock.
INSERT INTO build_data (node_name, task_id, collected_at, generator, data_format, data_element)
VALUES (@node_name, @task_id, coalesce(sqlc.narg('collected_at')::timestamptz, now()),
        @generator, @data_format, @data_element)
RETURNING *;

-- name: CopyBuildData :copyfrom
-- Bulk-loads build-data records with COPY (collected_at must be given).
INSERT INTO build_data (node_name, task_id, collected_at, generator, data_format, data_element)
VALUES (@node_name, @task_id, @collected_at, @generator, @data_format, @data_element);

-- name: GetBuildData :one
-- Reads one build-data record by id.
SELECT * FROM build_data WHERE build_data_id = @build_data_id;

-- name: ListBuildDataByNode :many
-- A node's records newest first, a page at a time after a keyset cursor; data_element only when include_data.
SELECT build_data_id, node_name, task_id, collected_at, generator, data_format,
       (CASE WHEN @include_data::boolean THEN data_element ELSE ''::text END) AS data_element,
       octet_length(data_element)::bigint AS data_size
FROM build_data
WHERE node_name = @node_name
  AND (collected_at, build_data_id) < (@cursor_collected_at::timestamptz, @cursor_id::bigint)
ORDER BY collected_at DESC, build_data_id DESC
LIMIT @max_rows;

-- name: ListBuildDataByTask :many
-- A task's records newest first, a page at a time after a keyset cursor; data_element only when include_data.
SELECT build_data_id, node_name, task_id, collected_at, generator, data_format,
       (CASE WHEN @include_data::boolean THEN data_element ELSE ''::text END) AS data_element,
       octet_length(data_element)::bigint AS data_size
FROM build_data
WHERE task_id = @task_id
  AND (collected_at, build_data_id) < (@cursor_collected_at::timestamptz, @cursor_id::bigint)
ORDER BY collected_at DESC, build_data_id DESC
LIMIT @max_rows;

-- name: ListBuildDataByNodeAndTask :many
-- Records of one node AND one task (both filters), newest first, paged; data_element only when include_data.
SELECT build_data_id, node_name, task_id, collected_at, generator, data_format,
       (CASE WHEN @include_data::boolean THEN data_element ELSE ''::text END) AS data_element,
       octet_length(data_element)::bigint AS data_size
FROM build_data
WHERE node_name = @node_name AND task_id = @task_id
  AND (collected_at, build_data_id) < (@cursor_collected_at::timestamptz, @cursor_id::bigint)
ORDER BY collected_at DESC, build_data_id DESC
LIMIT @max_rows;

-- name: LatestBuildDataOfNode :many
-- The newest record of each generator for one node, a page at a time after a generator (keyset); data_element only when include_data.
SELECT DISTINCT ON (generator)
       build_data_id, node_name, task_id, collected_at, generator, data_format,
       (CASE WHEN @include_data::boolean THEN data_element ELSE ''::text END) AS data_element,
       octet_length(data_element)::bigint AS data_size
FROM build_data
WHERE node_name = @node_name AND generator > @cursor_generator::text
ORDER BY generator, collected_at DESC, build_data_id DESC
LIMIT @max_rows;

-- name: LatestBuildDataOfAllNodes :many
-- The newest record of each generator for every node, a page at a time after a (node, generator) keyset cursor
-- (the original's was a syntax error); data_element only when include_data.
SELECT DISTINCT ON (node_name, generator)
       build_data_id, node_name, task_id, collected_at, generator, data_format,
       (CASE WHEN @include_data::boolean THEN data_element ELSE ''::text END) AS data_element,
       octet_length(data_element)::bigint AS data_size
FROM build_data
WHERE (node_name, generator) > (@cursor_node_name::text, @cursor_generator::text)
ORDER BY node_name, generator, collected_at DESC, build_data_id DESC
LIMIT @max_rows;
