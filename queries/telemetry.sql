-- name: QueueStats :many
-- Metrics: queued and running tasks by action, with how long the longest-waiting has waited (queued:
-- since it was (re)queued; running: since its claim), by the database's clock; one index-only scan.
SELECT status, action, count(*)::bigint AS tasks,
       extract(epoch FROM now() - min(CASE WHEN status = 'queued' THEN updated_at ELSE claimed_at END))::float8
           AS oldest_age_seconds
FROM tasks
WHERE status IN ('queued', 'running')
GROUP BY status, action
ORDER BY status, action;

-- name: ReadSchemaVersion :one
-- Readiness probes: the schema version tern recorded (0 when it never ran), read without tern's
-- migration lock or its table creation, so a probe never writes nor waits for a migration.
SELECT (CASE WHEN to_regclass('public.schema_version') IS NULL THEN 0
             ELSE coalesce(((xpath('/row/version/text()',
                     query_to_xml('SELECT max(version) AS version FROM public.schema_version', false, true, '')))[1]::text)::integer, 0)
        END)::integer AS version;
