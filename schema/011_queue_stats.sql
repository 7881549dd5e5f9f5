-- Queue statistics for the metrics: queued tasks by action, and since when
-- each has waited (updated_at: a queued task's last change is the moment it
-- was queued or requeued). One index-only scan of this partial index counts
-- the queue by action and finds each action's oldest entry, however many
-- finished tasks the table holds; the claim's own index (tasks_queued_idx)
-- has no action and would need a heap visit per queued task.

CREATE INDEX tasks_queued_action_idx ON tasks (action, updated_at) WHERE status = 'queued';

---- create above / drop below ----

DROP INDEX tasks_queued_action_idx;
