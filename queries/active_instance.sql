-- name: GetActiveInstance :one
-- Reads the current (or last) leader row.
SELECT * FROM active_instance WHERE dummy_key = 1;

-- name: RecordLeader :one
-- Records a new leadership: the caller becomes leader with the next term.
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
RETURNING *;
