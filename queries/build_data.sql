-- name: InsertBuildData :one
-- Inserts one build-data record; collected_at defaults to the database clock.
INSERT INTO build_data (node_name, task_id, collected_at, generator, data_format, data_element)
VALUES (@node_name, @task_id, coalesce(sqlc.narg('collected_at')::timestamptz, now()),
        @generator, @data_format, @data_element)
RETURNING *;

-- name: GetBuildData :one
-- Reads one build-data record by id.
SELECT * FROM build_data WHERE build_data_id = @build_data_id;
