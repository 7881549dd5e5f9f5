-- name: QueueStats :many
-- Metrics: queued and running tasks by action, with how long the longest-waiting has waited (queued:
-- since it was (re)queued; running: since its claim), by the database's clock; index-only scans of
-- tasks_queued_idx and tasks_claimed_idx (their INCLUDE columns).
SELECT 'queued'::text AS status, q.action, count(*)::bigint AS tasks,
       extract(epoch FROM now() - min(q.updated_at))::float8 AS oldest_age_seconds
FROM tasks q
WHERE q.status = 'queued'
GROUP BY q.action
UNION ALL
SELECT 'running'::text AS status, r.action, count(*)::bigint AS tasks,
       extract(epoch FROM now() - min(r.claimed_at))::float8 AS oldest_age_seconds
FROM tasks r
WHERE r.status = 'running'
GROUP BY r.action
ORDER BY 1, 2;
