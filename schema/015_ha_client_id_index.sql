---- tern: disable-tx ----
-- Retrying an append whose outcome is unknown looks the message up by the
-- caller's id: unique per task, and the lookup path of ListMessagesByClientID.
-- Built CONCURRENTLY, outside a transaction, so appends go on meanwhile; IF
-- NOT EXISTS so a failed build can be rerun after dropping the invalid index.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS result_message_client_message_id_key
    ON result_message (task_id, client_message_id) WHERE client_message_id IS NOT NULL;

---- create above / drop below ----
---- tern: disable-tx ----

DROP INDEX CONCURRENTLY IF EXISTS result_message_client_message_id_key;
