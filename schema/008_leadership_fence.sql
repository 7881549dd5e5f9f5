-- Leadership, second part.
--
--   * leader_term.last_seen: the leader's heartbeat writes here, never to
--     active_instance, whose row every fenced transaction share-locks: slow
--     fenced work can no longer delay the heartbeat and depose a healthy leader.
--   * active_instance.lock_key: the advisory lock key the electors use, so
--     readers can tell whether the leader's backend still holds it.
--   * leadership_fence: the highest term ever granted, in a table that no down
--     migration drops, so terms never go back whatever the migration path
--     (down to any version and up again: the next term is still higher, and a
--     deposed term can still write nothing).

CREATE TABLE IF NOT EXISTS leadership_fence (
    singleton boolean PRIMARY KEY DEFAULT true,
    max_term  bigint  NOT NULL,
    lock_key  bigint,

    CONSTRAINT leadership_fence_singleton CHECK (singleton),
    CONSTRAINT leadership_fence_max_term_nonnegative CHECK (max_term >= 0)
);

COMMENT ON TABLE leadership_fence IS 'Highest leadership term ever granted; deliberately kept by every down migration.';

INSERT INTO leadership_fence (max_term)
SELECT coalesce(max(term), 0)
FROM (SELECT term FROM active_instance UNION ALL SELECT term FROM leader_term) AS known
ON CONFLICT (singleton) DO UPDATE SET max_term = greatest(leadership_fence.max_term, excluded.max_term);

-- lock_key of the newest term lives in leadership_fence too, which the down
-- migration keeps: migrating down and up again restores it (a leader that kept
-- its lock through the migration is still reported as holding it).
ALTER TABLE leadership_fence ADD COLUMN IF NOT EXISTS lock_key bigint;
ALTER TABLE active_instance ADD COLUMN lock_key bigint;
UPDATE active_instance a SET lock_key = f.lock_key
FROM leadership_fence f
WHERE f.singleton AND f.max_term = a.term;
ALTER TABLE leader_term ADD COLUMN last_seen timestamptz;

COMMENT ON COLUMN active_instance.lock_key IS 'Advisory lock key the leader holds (NULL: recorded before version 7, the default key).';
COMMENT ON COLUMN leader_term.last_seen IS 'Last heartbeat of the term''s leader; NULL until the first one.';

-- Ends the other sessions whose transactions share-lock active_instance
-- (fenced transactions; FOR SHARE takes RowShareLock on the table). Only a
-- new leader, holding the lock, calls it: they belong to a deposed term.
CREATE FUNCTION statemgmt_terminate_fenced_sessions() RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    SELECT count(*) FILTER (WHERE pg_catalog.pg_terminate_backend(l.pid))
    FROM pg_catalog.pg_locks l
    WHERE l.locktype = 'relation' AND l.relation = 'active_instance'::regclass AND l.mode = 'RowShareLock'
      AND l.granted AND l.pid <> pg_catalog.pg_backend_pid()
$$;

---- create above / drop below ----

DROP FUNCTION statemgmt_terminate_fenced_sessions();

-- leadership_fence stays: it is what keeps terms from going back when the
-- leadership tables are dropped and created again.
-- squawk-ignore ban-drop-column -- down section: undoes what the up section created
ALTER TABLE leader_term DROP COLUMN last_seen;
-- squawk-ignore ban-drop-column -- down section: undoes what the up section created
ALTER TABLE active_instance DROP COLUMN lock_key;
