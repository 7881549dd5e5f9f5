-- name: GetActiveInstance :one
-- Reads the current (or last) leader row, its last heartbeat, and whether its backend still holds the
-- leadership lock under the key it was elected with (default_lock_key for rows recorded before it was kept).
SELECT a.dummy_key, a.identity, a.term, a.elected_at,
       coalesce(lt.last_seen, a.last_ping)::timestamptz AS last_ping,
       a.resigned_at, a.hostname, a.pid, a.backend_pid,
       statemgmt_holds_advisory_lock(a.backend_pid, coalesce(a.lock_key, @default_lock_key::bigint))::boolean AS lock_held
FROM active_instance a
LEFT JOIN leader_term lt ON lt.term = a.term
WHERE a.dummy_key = 1;

-- name: RecordLeader :one
-- Records a new leadership (call only while holding the lock): the next term (above every term ever
-- granted, leadership_fence included), this backend and lock key, and a history row; a previous term
-- still open in the history is closed as superseded. Waits for fenced transactions of the old term.
WITH next AS (
    SELECT greatest(
        coalesce((SELECT f.max_term FROM leadership_fence f WHERE f.singleton), 0),
        coalesce((SELECT a.term FROM active_instance a WHERE a.dummy_key = 1), 0)) + 1 AS term
),
previous AS (
    UPDATE leader_term SET ended_at = now(), end_reason = 'superseded'
    WHERE leader_term.ended_at IS NULL
    RETURNING leader_term.term
),
current AS (
    INSERT INTO active_instance (identity, term, hostname, pid, lock_key, timeline)
    SELECT @identity, next.term, @hostname, @pid, @lock_key::bigint, statemgmt_timeline() FROM next
    ON CONFLICT (dummy_key) DO UPDATE
    SET identity = excluded.identity,
        term = greatest(active_instance.term + 1, excluded.term),
        elected_at = now(),
        last_ping = now(),
        resigned_at = NULL,
        hostname = excluded.hostname,
        pid = excluded.pid,
        backend_pid = pg_backend_pid(),
        lock_key = excluded.lock_key,
        timeline = excluded.timeline
    RETURNING *
),
fence AS (
    INSERT INTO leadership_fence (max_term, lock_key)
    SELECT current.term, current.lock_key FROM current
    ON CONFLICT (singleton) DO UPDATE SET max_term = greatest(leadership_fence.max_term, excluded.max_term),
                                          lock_key = excluded.lock_key
),
history AS (
    INSERT INTO leader_term (term, identity, hostname, pid, backend_pid, elected_at, last_seen)
    SELECT current.term, current.identity, current.hostname, current.pid, current.backend_pid, current.elected_at,
           current.elected_at
    FROM current
)
SELECT * FROM current;

-- name: LeaderHeartbeat :one
-- The leader's periodic check (the original's "maintain"): whether this session holds the lock, and
-- (current) whether term is still open, recorded by this very session and not superseded; only then is
-- the term's last_seen refreshed. It never touches active_instance, whose row fenced transactions
-- share-lock (nor anything a DDL on it could queue ahead of), so slow fenced work never delays it.
WITH me AS (
    SELECT statemgmt_holds_advisory_lock(pg_backend_pid(), @lock_key::bigint)::boolean AS held
),
beat AS (
    UPDATE leader_term t
    SET last_seen = now()
    FROM me
    WHERE me.held AND t.term = @term AND t.ended_at IS NULL AND t.backend_pid = pg_backend_pid()
      AND NOT EXISTS (SELECT 1 FROM leadership_fence f WHERE f.singleton AND f.max_term > @term)
    RETURNING t.term
)
SELECT me.held AS lock_held, (SELECT count(*) FROM beat) > 0 AS current FROM me;

-- name: HeldLeaderTerm :one
-- Claim's idempotency check: whether this session holds the lock, and the current unresigned term this
-- session recorded for identity (0: none).
SELECT statemgmt_holds_advisory_lock(pg_backend_pid(), @lock_key::bigint)::boolean AS lock_held,
       coalesce((SELECT a.term FROM active_instance a
                 WHERE a.dummy_key = 1 AND a.identity = @identity AND a.backend_pid = pg_backend_pid()
                   AND a.resigned_at IS NULL), 0)::bigint AS term;

-- name: ResignLeader :one
-- Ends a term voluntarily (the original's "abdicate"), only when called by its holder: the term is
-- current and unresigned and was recorded by this very session (backend) for identity — a session
-- records a term only while it holds the lock and keeps it until it resigns. Marks it resigned, closes
-- its history row and releases the lock, in one round trip (the next candidate's election then waits
-- for this commit). resigned false: not the holder, nothing changed, the lock untouched.
WITH mine AS (
    SELECT a.term FROM active_instance a
    WHERE a.dummy_key = 1 AND a.term = @term::bigint AND a.resigned_at IS NULL
      AND a.identity = @identity AND a.backend_pid = pg_backend_pid()
),
history AS (
    UPDATE leader_term SET ended_at = now(), end_reason = 'resigned'
    WHERE leader_term.term IN (SELECT mine.term FROM mine) AND leader_term.ended_at IS NULL
),
resigned AS (
    UPDATE active_instance SET resigned_at = now()
    WHERE active_instance.dummy_key = 1 AND active_instance.term IN (SELECT mine.term FROM mine)
      AND active_instance.resigned_at IS NULL
    RETURNING active_instance.term
)
SELECT (SELECT count(*) FROM resigned) > 0 AS resigned,
       CASE WHEN (SELECT count(*) FROM resigned) > 0 THEN pg_advisory_unlock(@lock_key::bigint) ELSE false END AS released;

-- name: LockLeaderTerm :one
-- Fencing: share-locks the leader row if term is still current, so the term cannot change before the
-- caller's transaction ends (a new leader's RecordLeader waits for it). No row: term is stale. Inside a
-- transaction it also bounds how long the transaction may sit idle (idle_ms), so a leader host that
-- vanishes mid-transaction cannot hold up the next election for ever. A term elected on another WAL
-- timeline is stale too: this server is a promoted standby and nobody has campaigned on it yet.
SELECT term, set_config('idle_in_transaction_session_timeout', (@idle_ms::integer)::text, true) AS idle_limit
FROM active_instance
WHERE dummy_key = 1 AND term = @term AND resigned_at IS NULL
  AND (timeline IS NULL OR timeline = statemgmt_timeline())
FOR SHARE;

-- name: ListLeaderTerms :many
-- Leadership history, newest term first.
SELECT * FROM leader_term ORDER BY term DESC LIMIT @max_rows;

-- name: TryAdvisoryLock :one
-- Takes a session-level advisory lock if free; never waits (the leadership lock; also the Drydock import's and the demo's run locks).
SELECT pg_try_advisory_lock(@lock_key::bigint) AS acquired;

-- name: WaitAdvisoryLock :exec
-- Waits for the session-level leadership lock (returns the moment the holder's session releases it), at
-- most the session's lock_timeout (then fails with lock_not_available and the elector tries again).
SELECT pg_advisory_lock(@lock_key::bigint);

-- name: TerminateFencedTransactions :one
-- Called by a new leader (holding the lock) whose election timed out waiting for fenced transactions:
-- ends the other sessions whose transactions share-lock active_instance. They are fenced work of a
-- deposed term (the lock has changed hands), which can no longer commit anyway; their rollback lets
-- the election proceed. Returns how many sessions were signalled.
SELECT statemgmt_terminate_fenced_sessions()::bigint AS terminated;

-- name: ReleaseAdvisoryLock :one
-- Releases a session-level advisory lock TryAdvisoryLock took; false if this session did not hold it.
SELECT pg_advisory_unlock(@lock_key::bigint) AS released;

-- name: SetSessionKeepalives :exec
-- Makes the server end a dead elector's session (and so release its lock) in bounded time: TCP
-- keepalive idle/interval in seconds, probe count, TCP user timeout in ms; idle_session_timeout (ms)
-- ends a session silent for longer than that even when a proxy keeps its socket open; and
-- client_connection_check_interval (ms) drops a waiting candidate whose client has gone; lock_timeout
-- (ms) bounds every lock wait of the session (the campaign's wait for the lock goes in slices).
SELECT set_config('tcp_keepalives_idle', (@idle_seconds::integer)::text, false),
       set_config('tcp_keepalives_interval', (@interval_seconds::integer)::text, false),
       set_config('tcp_keepalives_count', (@probe_count::integer)::text, false),
       set_config('tcp_user_timeout', (@user_timeout_ms::integer)::text, false),
       set_config('idle_session_timeout', (@session_timeout_ms::integer)::text, false),
       set_config('idle_in_transaction_session_timeout', (@session_timeout_ms::integer)::text, false),
       set_config('client_connection_check_interval', (@check_interval_ms::integer)::text, false),
       set_config('lock_timeout', (@lock_timeout_ms::integer)::text, false);

-- name: BackendPID :one
-- This session's server process id (for operators, and for tests that kill it).
SELECT pg_backend_pid() AS pid;
