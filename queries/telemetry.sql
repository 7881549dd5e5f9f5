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
