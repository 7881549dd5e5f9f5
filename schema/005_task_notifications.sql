-- Wake-ups: NOTIFY listeners when tasks become queued and when messages are
-- appended, from statement-level triggers, so every write path (the store's
-- queries, an operator's SQL) wakes idle claimers and tailers. NOTIFY inside a
-- transaction is delivered only when it commits, so nobody is woken for work
-- that was rolled back; identical notifications in one transaction are sent once.

CREATE FUNCTION statemgmt_notify_queued_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows WHERE status = 'queued') THEN
        PERFORM pg_notify('statemgmt_task_queued', '');
    END IF;
    RETURN NULL;
END;
$$;

-- Only rows that became queued: appending messages to a queued task updates
-- its row too, and must not wake every claimer.
CREATE FUNCTION statemgmt_notify_queued_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows n JOIN old_rows o USING (task_id)
               WHERE n.status = 'queued' AND o.status <> 'queued') THEN
        PERFORM pg_notify('statemgmt_task_queued', '');
    END IF;
    RETURN NULL;
END;
$$;

-- A trigger with transition tables may have only one event: one per event.
CREATE TRIGGER tasks_notify_queued_insert
    AFTER INSERT ON tasks REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION statemgmt_notify_queued_insert();
CREATE TRIGGER tasks_notify_queued_update
    AFTER UPDATE ON tasks REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION statemgmt_notify_queued_update();

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
DROP FUNCTION statemgmt_notify_queued_update();
DROP FUNCTION statemgmt_notify_queued_insert();
