-- name: Now :one
-- Reads the database's clock (the original's get_now).
SELECT now()::timestamptz AS now;

-- name: ListenTaskQueued :exec
-- Subscribes this session to wake-ups for newly queued tasks.
LISTEN statemgmt_task_queued;

-- name: ListenMessage :exec
-- Subscribes this session to wake-ups for appended result messages (payload: task id).
LISTEN statemgmt_message;

-- name: CountTableRows :many
-- Counts the rows of each named table of the current schema, exactly (for the migrate-down prompt); identifiers come from the catalog and are quoted by format's %I.
SELECT t.table_name::text AS table_name,
       ((xpath('/row/n/text()',
               query_to_xml(format('SELECT count(*) AS n FROM %I.%I', t.table_schema, t.table_name), false, true, '')))[1]::text)::bigint AS row_count
FROM information_schema.tables t
WHERE t.table_schema = current_schema() AND t.table_name = ANY(@tables::text[])
ORDER BY t.table_name;

-- name: ReadSchemaVersion :one
-- Reads the schema version tern recorded in public.schema_version without creating that table (SchemaVersion's migrator would): -1 when the table does not exist; query_to_xml runs only when it does.
SELECT (CASE WHEN to_regclass('public.schema_version') IS NULL THEN -1
             ELSE coalesce(((xpath('/row/version/text()',
                                   query_to_xml('SELECT version FROM public.schema_version', false, true, '')))[1]::text)::int, 0)
        END)::int AS version;

-- name: ServerRole :one
-- Failover awareness, on every new connection: whether this server is a writable primary (not in
-- recovery, not read-only) and, when it requires a synchronous standby, whether one is attached (a
-- zombie old primary brought back after a promotion requires one that never comes); and whether
-- the role may see the standbys at all (pg_read_all_stats, which pg_monitor includes).
SELECT pg_is_in_recovery() AS in_recovery,
       current_setting('transaction_read_only')::boolean AS read_only,
       current_setting('synchronous_standby_names') <> '' AS sync_required,
       statemgmt_sync_standbys()::bigint AS sync_standbys,
       pg_has_role('pg_read_all_stats', 'USAGE') AS sees_standbys;

-- name: TryMigrationLock :one
-- Takes tern's migration lock (its advisory lock number) without waiting inside a statement: a migrator blocked in pg_advisory_lock would deadlock with another's CREATE INDEX CONCURRENTLY, so Migrate polls this instead.
SELECT pg_try_advisory_lock(9628173550095224) AS locked;

-- name: ReleaseMigrationLock :one
-- Releases the migration lock TryMigrationLock took (tern takes and releases its own, nested, in between).
SELECT pg_advisory_unlock(9628173550095224) AS released;

-- name: CountTableRowsUpTo :many
-- Counts up to row_limit rows of each named table of the current schema that exists (the demo's in-use check: "1000+" without scanning a big table); identifiers come from the catalog and are quoted by format's %I.
SELECT t.table_name::text AS table_name,
       ((xpath('/row/n/text()',
               query_to_xml(format('SELECT count(*) AS n FROM (SELECT 1 FROM %I.%I LIMIT %s) s',
                                   t.table_schema, t.table_name, @row_limit::int), false, true, '')))[1]::text)::bigint AS row_count
FROM information_schema.tables t
WHERE t.table_schema = current_schema() AND t.table_name = ANY(@tables::text[])
ORDER BY t.table_name;

-- name: TerminateBackend :one
-- Ends one server session (the demo kills the leader's session to show a failover).
SELECT pg_terminate_backend(@pid::int) AS terminated;
