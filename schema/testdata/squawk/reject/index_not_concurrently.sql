-- squawk must reject: require-concurrent-index-creation
-- An index on an existing (large) table built without CONCURRENTLY blocks
-- every write to the table while it is built.
CREATE INDEX tasks_design_ref_idx ON tasks (design_ref);
