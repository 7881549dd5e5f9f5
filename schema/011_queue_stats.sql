-- Queue statistics for the metrics: queued and running tasks by action, and
-- since when the longest-waiting one has waited (a queued task since it was
-- queued or requeued, its updated_at; a running one since its claim). One
-- index-only scan of this partial index answers them, however many finished
-- tasks the table holds; the claim's index (tasks_queued_idx) and the
-- recovery index (tasks_claimed_idx) have no action and would need a heap
-- visit per task, and PostgreSQL scans the whole table instead.

CREATE INDEX tasks_active_action_idx ON tasks (status, action) INCLUDE (updated_at, claimed_at)
    WHERE status IN ('queued', 'running');

---- create above / drop below ----

DROP INDEX tasks_active_action_idx;
