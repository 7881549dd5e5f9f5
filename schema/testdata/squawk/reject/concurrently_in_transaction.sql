-- squawk must reject: ban-concurrent-index-creation-in-transaction
-- CONCURRENTLY cannot run in the transaction tern wraps a migration in: the
-- file needs tern's disable-tx marker.
COMMENT ON COLUMN tasks.design_ref IS 'Where the design came from.';
CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_design_ref_idx ON tasks (design_ref);
