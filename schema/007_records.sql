-- Boot action runs get a monotonic run number, so that "the newest run of an
-- action on a node" is well defined even for runs recorded in one transaction
-- (created_at is the transaction's start time, and action ids need not grow:
-- a ULID is random within a millisecond and callers may supply their own).
--
-- Existing runs are numbered in (created_at, action_id) order, the order the
-- store used before; new runs take the next number at insert time.

ALTER TABLE boot_action_status ADD COLUMN run_seq bigint;

UPDATE boot_action_status s
SET run_seq = o.n
FROM (SELECT action_id, row_number() OVER (ORDER BY created_at, action_id) AS n FROM boot_action_status) o
WHERE s.action_id = o.action_id;

-- squawk-ignore adding-not-nullable-field -- the column was filled just above in this transaction; applied before squawk ran here; a released migration is not rewritten (new ones: docs/sql.md)
ALTER TABLE boot_action_status ALTER COLUMN run_seq SET NOT NULL;
ALTER TABLE boot_action_status ALTER COLUMN run_seq ADD GENERATED ALWAYS AS IDENTITY;
SELECT setval(pg_get_serial_sequence('boot_action_status', 'run_seq'), coalesce(max(run_seq), 0) + 1, false)
FROM boot_action_status;

-- squawk-ignore constraint-missing-not-valid, disallowed-unique-constraint -- applied before squawk ran here; a released migration is not rewritten (new ones: docs/sql.md)
ALTER TABLE boot_action_status ADD CONSTRAINT boot_action_status_run_seq_key UNIQUE (run_seq);

COMMENT ON COLUMN boot_action_status.run_seq IS 'Order in which runs were recorded; the newest run of an action has the highest.';

-- A node's newest run of each action name: (node_name, action_name, run_seq DESC).
-- squawk-ignore require-concurrent-index-deletion -- applied before squawk ran here; a released migration is not rewritten (new ones: docs/sql.md)
DROP INDEX boot_action_status_node_idx;
-- squawk-ignore require-concurrent-index-creation -- applied before squawk ran here; a released migration is not rewritten (new ones: docs/sql.md)
CREATE INDEX boot_action_status_node_idx ON boot_action_status (node_name, action_name, run_seq DESC);

---- create above / drop below ----

-- squawk-ignore require-concurrent-index-deletion -- down section: undoes what the up section created
DROP INDEX boot_action_status_node_idx;
-- squawk-ignore ban-drop-column -- down section: undoes what the up section created
ALTER TABLE boot_action_status DROP COLUMN run_seq;
-- squawk-ignore require-concurrent-index-creation -- down section: undoes what the up section created
CREATE INDEX boot_action_status_node_idx ON boot_action_status (node_name, action_name);
