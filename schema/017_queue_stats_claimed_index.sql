---- tern: disable-tx ----
-- Queue statistics, step 2 (see 016): the claimed tasks' index with its
-- INCLUDE columns, beside the old one.
CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_claimed_cover_idx ON tasks (claimed_at) INCLUDE (status, action)
    WHERE status IN ('running', 'terminating');

---- create above / drop below ----
---- tern: disable-tx ----

DROP INDEX CONCURRENTLY IF EXISTS tasks_claimed_cover_idx;
