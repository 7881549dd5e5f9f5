-- name: ListTaskTree :many
-- The console's tree view: a task and its descendants with their depth, breadth-first, at most
-- max_rows of them (the walk stops there), read through tasks_parent_idx; no subtask arrays, no messages.
WITH RECURSIVE tree AS (
    SELECT t.task_id, 0 AS depth FROM tasks t WHERE t.task_id = @task_id
    UNION ALL
    SELECT c.task_id, tree.depth + 1
    FROM tree
    CROSS JOIN LATERAL (SELECT x.task_id FROM tasks x WHERE x.parent_task_id = tree.task_id OFFSET 0) AS c
    WHERE tree.depth < 1000
),
walked AS (
    SELECT tree.task_id, tree.depth FROM tree LIMIT @max_rows
)
SELECT t.task_id, t.parent_task_id, walked.depth::integer AS depth, t.status, t.action, t.result_status,
       t.created_at, t.updated_at, t.claimed_by, t.attempt, t.last_message_seq
FROM walked
JOIN tasks t ON t.task_id = walked.task_id
ORDER BY walked.depth, t.created_at, t.task_id;

-- name: ListBootActionContexts :many
-- The console's node list: boot action contexts by node name after a keyset cursor, WITHOUT the key
-- digest (the primary key's index serves it).
SELECT node_name, task_id, created_at, updated_at
FROM boot_action
WHERE node_name > @cursor_node_name::text
ORDER BY node_name
LIMIT @max_rows;

-- name: LatestBuildDataPreviewsOfNode :many
-- The console's node page: the newest record of each generator of one node (at most max_rows
-- generators) with only the first preview_chars characters of its element and its full size
-- (build_data_node_generator_idx); a page never reads whole elements.
SELECT DISTINCT ON (generator)
       build_data_id, node_name, task_id, collected_at, generator, data_format,
       left(data_element, @preview_chars::integer) AS preview,
       octet_length(data_element)::bigint AS data_size
FROM build_data
WHERE node_name = @node_name
ORDER BY generator, collected_at DESC, build_data_id DESC
LIMIT @max_rows;

-- name: ListTaskAncestors :many
-- The console's path to a task: its ancestors from the top-level task down to its parent (one primary
-- key lookup per level, at most 1000 levels); no rows for a top-level or unknown task.
WITH RECURSIVE up AS (
    SELECT t.parent_task_id AS task_id, 1 AS height FROM tasks t
    WHERE t.task_id = @task_id AND t.parent_task_id IS NOT NULL
    UNION ALL
    SELECT p.parent_task_id, up.height + 1
    FROM up JOIN tasks p ON p.task_id = up.task_id
    WHERE p.parent_task_id IS NOT NULL AND up.height < 1000
)
SELECT t.task_id, t.parent_task_id, t.status, t.action, t.result_status, t.created_at, t.updated_at
FROM up JOIN tasks t ON t.task_id = up.task_id
ORDER BY up.height DESC;
