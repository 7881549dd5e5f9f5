-- Wake-ups without the commit-time notify lock on the hot path.
--
-- A transaction that called pg_notify takes a server-wide lock at commit and
-- holds it until its commit record is flushed, so notifying commits cannot be
-- flushed together (group commit): with migration 005's trigger on
-- result_message, every message append serialised behind every other
-- (pgbench, 16 clients: 247 tps with the trigger vs 1 444 without on the shared
-- test machine). Message appends therefore notify no more: the store sends
-- the wake-up itself after its own commit, from one notifier per process, in
-- its own small asynchronously-committed transaction (see statestore's
-- notifier). Queueing keeps its trigger (every write path, operator SQL
-- included, wakes claimers; queueing is rare next to appends), now with the
-- task's action as payload so only claimers of that action (and claimers of
-- every action) wake.

DROP TRIGGER result_message_notify ON result_message;
DROP FUNCTION statemgmt_notify_message();

CREATE OR REPLACE FUNCTION statemgmt_notify_queued() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('statemgmt_task_queued', NEW.action);
    RETURN NULL;
END;
$$;

---- create above / drop below ----

CREATE OR REPLACE FUNCTION statemgmt_notify_queued() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('statemgmt_task_queued', '');
    RETURN NULL;
END;
$$;

CREATE FUNCTION statemgmt_notify_message() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('statemgmt_message', task_id::text)
    FROM (SELECT DISTINCT task_id FROM new_rows) AS appended;
    RETURN NULL;
END;
$$;

CREATE TRIGGER result_message_notify
    AFTER INSERT ON result_message REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION statemgmt_notify_message();
