-- name: QueueStats :many
-- Metrics: queued tasks by action, with how long the oldest has waited since it was (re)queued, by the
-- database's clock; one index-only scan of tasks_queued_action_idx.
SELECT action, count(*)::bigint AS queued,
       extract(epoch FROM now() - min(updated_at))::float8 AS oldest_age_seconds
FROM tasks
WHERE status = 'queued'
GROUP BY action
ORDER BY action;
