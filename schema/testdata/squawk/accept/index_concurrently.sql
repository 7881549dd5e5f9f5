---- tern: disable-tx ----
-- squawk must accept: an index on a large table, built without blocking
-- writes. Outside a transaction (tern: disable-tx, in each section that needs
-- it), one statement per file, IF NOT EXISTS so a failed build can be rerun
-- (a failed CONCURRENTLY build leaves an invalid index behind: drop it first).
CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_design_ref_idx ON tasks (design_ref);

---- create above / drop below ----
---- tern: disable-tx ----

DROP INDEX CONCURRENTLY IF EXISTS tasks_design_ref_idx;
