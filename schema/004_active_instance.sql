-- Leadership: a one-row table naming the orchestrator instance that currently
-- leads. Election itself happens with a session advisory lock; this row is what
-- operators read and what fencing checks. term increases by one at every new
-- leadership and is never reset (the row is kept when a leader resigns), so a
-- write that carries a stale term can be rejected by the database.

CREATE TABLE active_instance (
    -- squawk-ignore prefer-bigint-over-smallint -- a singleton row's key, always 1
    dummy_key    smallint    PRIMARY KEY DEFAULT 1,
    identity     uuid        NOT NULL,
    term         bigint      NOT NULL,
    elected_at   timestamptz NOT NULL DEFAULT now(),
    last_ping    timestamptz NOT NULL DEFAULT now(),
    resigned_at  timestamptz,
    hostname     text        NOT NULL DEFAULT '',
    -- squawk-ignore prefer-bigint-over-int -- an operating-system process id
    pid          integer     NOT NULL DEFAULT 0,
    -- squawk-ignore prefer-bigint-over-int -- pg_backend_pid() returns integer
    backend_pid  integer     NOT NULL DEFAULT pg_backend_pid(),

    CONSTRAINT active_instance_single_row CHECK (dummy_key = 1),
    CONSTRAINT active_instance_term_positive CHECK (term > 0),
    CONSTRAINT active_instance_hostname_length CHECK (char_length(hostname) <= 255),
    CONSTRAINT active_instance_pid_nonnegative CHECK (pid >= 0)
);

COMMENT ON TABLE active_instance IS 'The current (or last) leader; term is the fencing token.';
COMMENT ON COLUMN active_instance.backend_pid IS 'PostgreSQL backend that holds the leadership advisory lock.';

---- create above / drop below ----

-- squawk-ignore ban-drop-table -- down section: undoes what the up section created
DROP TABLE active_instance;
