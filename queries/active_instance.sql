-- name: GetActiveInstance :one
-- Reads the current (or last) leader row and whether its backend still holds the leadership lock.
SELECT a.dummy_key, a.identity, a.term, a.elected_at, a.last_ping, a.resigned_at, a.hostname, a.pid, a.backend_pid,
       statemgmt_holds_advisory_lock(a.backend_pid, @lock_key::bigint)::boolean AS lock_held
FROM active_instance a
WHERE a.dummy_key = 1;

-- name: RecordLeader :one
-- Records a new leadership (call only while holding the lock): next term, this backend, and a history
-- row; a previous term still open in the history is closed as superseded.
WITH previous AS (
    UPDATE leader_term SET ended_at = now(), end_reason = 'superseded'
    WHERE leader_term.ended_at IS NULL
    RETURNING leader_term.term
),
current AS (
    INSERT INTO active_instance (identity, term, hostname, pid)
    VALUES (@identity, 1, @hostname, @pid)
    ON CONFLICT (dummy_key) DO UPDATE
    SET identity = excluded.identity,
        term = active_instance.term + 1,
        elected_at = now(),
        last_ping = now(),
        resigned_at = NULL,
        hostname = excluded.hostname,
        pid = excluded.pid,
        backend_pid = pg_backend_pid()
    RETURNING *
),
history AS (
    INSERT INTO leader_term (term, identity, hostname, pid, backend_pid, elected_at)
    SELECT current.term, current.identity, current.hostname, current.pid, current.backend_pid, current.elected_at
    FROM current
)
SELECT * FROM current;

-- name: LeaderHeartbeat :one
-- The leader's periodic check (the original's "maintain"): refreshes last_ping for the term and says
-- whether this session still holds the lock. No row: the term is no longer current.
UPDATE active_instance a
SET last_ping = now()
WHERE a.dummy_key = 1 AND a.term = @term AND a.resigned_at IS NULL
RETURNING statemgmt_holds_advisory_lock(pg_backend_pid(), @lock_key::bigint)::boolean AS lock_held;

-- name: ResignLeader :execrows
-- Ends a term voluntarily (the original's "abdicate"): marks it resigned now and closes its history row.
WITH history AS (
    UPDATE leader_term SET ended_at = now(), end_reason = 'resigned'
    WHERE leader_term.term = @term::bigint AND leader_term.ended_at IS NULL
)
UPDATE active_instance SET resigned_at = now()
WHERE active_instance.dummy_key = 1 AND active_instance.term = @term AND active_instance.resigned_at IS NULL;

-- name: LockLeaderTerm :one
-- Fencing: share-locks the leader row if term is still current, so the term cannot change before the
-- caller's transaction ends (a new leader's RecordLeader waits for it). No row: term is stale.
SELECT term FROM active_instance
WHERE dummy_key = 1 AND term = @term AND resigned_at IS NULL
FOR SHARE;

-- name: ListLeaderTerms :many
-- Leadership history, newest term first.
SELECT * FROM leader_term ORDER BY term DESC LIMIT @max_rows;

-- name: TryAdvisoryLock :one
-- Takes the session-level leadership lock if free; never waits.
SELECT pg_try_advisory_lock(@lock_key::bigint) AS acquired;

-- name: WaitAdvisoryLock :exec
-- Waits for the session-level leadership lock (returns the moment the holder's session releases it).
SELECT pg_advisory_lock(@lock_key::bigint);

-- name: ReleaseAdvisoryLock :one
-- Releases the session-level leadership lock; false if this session did not hold it.
SELECT pg_advisory_unlock(@lock_key::bigint) AS released;

-- name: SetSessionKeepalives :exec
-- Makes the server notice a dead elector client in bounded time (and so release its lock): TCP
-- keepalive idle/interval in seconds, probe count, and TCP user timeout in milliseconds.
SELECT set_config('tcp_keepalives_idle', (@idle_seconds::integer)::text, false),
       set_config('tcp_keepalives_interval', (@interval_seconds::integer)::text, false),
       set_config('tcp_keepalives_count', (@probe_count::integer)::text, false),
       set_config('tcp_user_timeout', (@user_timeout_ms::integer)::text, false);

-- name: BackendPID :one
-- This session's server process id (for operators, and for tests that kill it).
SELECT pg_backend_pid() AS pid;
