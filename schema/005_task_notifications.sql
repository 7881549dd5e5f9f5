-- Wake-ups: NOTIFY listeners when tasks become queued and when messages are
-- appended, from triggers, so every write path (the store's
-- queries, an operator's SQL) wakes idle claimers and tailers. NOTIFY inside a
-- transaction is delivered only when it commits, so nobody is woken for work
-- that was rolled back; identical notifications in one transaction are sent once.

CREATE FUNCTION statemgmt_notify_queued() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('statemgmt_task_queued', '');
    RETURN NULL;
END;
$$;

-- Row-level with WHEN: the condition is checked without calling anything,
-- so the many updates that do not queue a task (claims, completions,
-- message appends bumping last_message_seq) cost nothing here.
CREATE TRIGGER tasks_notify_queued_insert
    AFTER INSERT ON tasks
    FOR EACH ROW WHEN (NEW.status = 'queued')
    EXECUTE FUNCTION statemgmt_notify_queued();
CREATE TRIGGER tasks_notify_queued_update
    AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (NEW.status = 'queued' AND OLD.status <> 'queued')
    EXECUTE FUNCTION statemgmt_notify_queued();

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

---- create above / drop below ----

DROP TRIGGER result_message_notify ON result_message;
DROP FUNCTION statemgmt_notify_message();
DROP TRIGGER tasks_notify_queued_update ON tasks;
DROP TRIGGER tasks_notify_queued_insert ON tasks;
DROP FUNCTION statemgmt_notify_queued();
