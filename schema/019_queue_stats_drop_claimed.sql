---- tern: disable-tx ----
-- Queue statistics, step 4 (see 016): the old claimed tasks' index goes; its
-- covering twin (017) serves recovery meanwhile.
DROP INDEX CONCURRENTLY IF EXISTS tasks_claimed_idx;

---- create above / drop below ----
---- tern: disable-tx ----

CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_claimed_idx ON tasks (claimed_at) WHERE status IN ('running', 'terminating');
