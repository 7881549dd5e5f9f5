-- Leadership history: one row per term, so operators can see who led when
-- and why each term ended. active_instance (004) keeps the current term; the
-- advisory lock decides who may hold it.

CREATE TABLE leader_term (
    term        bigint      PRIMARY KEY,
    identity    uuid        NOT NULL,
    hostname    text        NOT NULL DEFAULT '',
    -- squawk-ignore prefer-bigint-over-int -- an operating-system process id
    pid         integer     NOT NULL DEFAULT 0,
    -- squawk-ignore prefer-bigint-over-int -- pg_backend_pid() returns integer
    backend_pid integer     NOT NULL,
    elected_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    end_reason  text,

    CONSTRAINT leader_term_term_positive CHECK (term > 0),
    CONSTRAINT leader_term_end_reason_check CHECK (end_reason IN ('resigned', 'superseded')),
    CONSTRAINT leader_term_end_pair CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);

COMMENT ON TABLE leader_term IS 'Every leadership term: who, when elected, when and how it ended.';
COMMENT ON COLUMN leader_term.end_reason IS 'resigned: the leader let go; superseded: a new leader found it still open (crash, partition).';

-- Whether backend pid holds the session advisory lock with this bigint key
-- (pg_locks shows such a key split into classid:objid, objsubid 1).
CREATE FUNCTION statemgmt_holds_advisory_lock(backend integer, lock_key bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_catalog.pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted AND l.pid = backend AND l.objsubid = 1
          AND ((l.classid::bigint << 32) | l.objid::bigint) = lock_key)
$$;

---- create above / drop below ----

DROP FUNCTION statemgmt_holds_advisory_lock(integer, bigint);
-- squawk-ignore ban-drop-table -- down section: undoes what the up section created
DROP TABLE leader_term;
