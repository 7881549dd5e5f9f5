-- Surviving a database failover (HA PostgreSQL with a synchronous standby).
--
--   * active_instance.timeline: the WAL timeline of the server a term was
--     elected on. A fenced transaction's term counts as current only on that
--     timeline, so the moment a standby is promoted (a new timeline) the old
--     term's fenced writes are refused there, before any candidate has
--     campaigned on it. NULL (terms elected before this migration): not
--     checked.
--   * result_message.client_message_id: an id the caller chooses for a
--     message, unique per task, so that retrying an append whose outcome is
--     unknown stores the message once.

CREATE FUNCTION statemgmt_timeline() RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    -- The first 8 hex digits of the current WAL file name are the timeline
    -- new WAL is written on (a primary only: it fails during recovery).
    SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint
$$;
COMMENT ON FUNCTION statemgmt_timeline() IS 'The WAL timeline this primary writes on; a promotion moves to a new one.';

CREATE FUNCTION statemgmt_sync_standbys() RETURNS bigint
LANGUAGE sql STABLE AS $$
    -- Rows of others' sessions are hidden from roles without pg_read_all_stats
    -- (pg_monitor): such a role sees 0 here.
    SELECT count(*) FROM pg_catalog.pg_stat_replication r WHERE r.sync_state IN ('sync', 'quorum')
$$;
COMMENT ON FUNCTION statemgmt_sync_standbys() IS 'Standbys streaming to this server as synchronous ones now.';

ALTER TABLE active_instance ADD COLUMN timeline bigint;
COMMENT ON COLUMN active_instance.timeline IS 'WAL timeline the term was elected on; its fenced writes pass only on it.';

ALTER TABLE result_message ADD COLUMN client_message_id text;
-- NOT VALID: checked for new rows at once; existing rows (all NULL here) are
-- validated by 014 without blocking writes.
ALTER TABLE result_message ADD CONSTRAINT result_message_client_message_id_length
    CHECK (char_length(client_message_id) BETWEEN 1 AND 200) NOT VALID;
COMMENT ON COLUMN result_message.client_message_id IS 'Caller-chosen id making a retried append idempotent; unique per task.';
-- The unique index retries look a message up by: 015 (built CONCURRENTLY).

---- create above / drop below ----

-- squawk-ignore ban-drop-column -- the down section drops only what this migration added
ALTER TABLE result_message DROP COLUMN client_message_id;
-- squawk-ignore ban-drop-column -- the down section drops only what this migration added
ALTER TABLE active_instance DROP COLUMN timeline;
DROP FUNCTION statemgmt_sync_standbys();
DROP FUNCTION statemgmt_timeline();
