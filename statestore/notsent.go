package statestore

import (
	"context"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// notSentError marks an error that came before the call reached the
// server — no free connection of the pool in time, a context already
// ended, a transaction that could not begin — so the call wrote nothing:
// mapError never reports it as ErrOutcomeUnknown (TestBreakOutcomeUnknownNotForCallsNeverSent).
type notSentError struct{ err error }

func (e *notSentError) Error() string { return e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

// notSent marks err (when not nil) as coming before anything was sent.
func notSent(err error) error {
	if err == nil {
		return nil
	}
	return &notSentError{err: err}
}

// acquiringPool runs each statement on a connection it acquires from the
// pool itself (as pgxpool does), so that a failure to acquire one is told
// apart from a failure of the statement: pgxpool returns the bare context
// error for both a deadline spent waiting for a free connection and a
// cancellation mid-statement.
type acquiringPool struct{ p *pgxpool.Pool }

func (a acquiringPool) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	c, err := a.p.Acquire(ctx)
	return c, notSent(err)
}

func (a acquiringPool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	c, err := a.acquire(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	defer c.Release()
	return c.Exec(ctx, sql, args...)
}

func (a acquiringPool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	c, err := a.acquire(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		c.Release()
		return nil, err
	}
	return &releasingRows{Rows: rows, c: c}, nil
}

func (a acquiringPool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	c, err := a.acquire(ctx)
	if err != nil {
		return errRow{err}
	}
	return releasingRow{row: c.QueryRow(ctx, sql, args...), c: c}
}

func (a acquiringPool) CopyFrom(ctx context.Context, t pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	c, err := a.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Release()
	return c.CopyFrom(ctx, t, cols, src)
}

// releasingRows gives the connection back once the rows are read or closed.
type releasingRows struct {
	pgx.Rows
	c    *pgxpool.Conn
	once sync.Once
}

func (r *releasingRows) release() { r.once.Do(r.c.Release) }

func (r *releasingRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.release()
	return false
}

func (r *releasingRows) Close() {
	r.Rows.Close()
	r.release()
}

// releasingRow gives the connection back once the row is scanned.
type releasingRow struct {
	row pgx.Row
	c   *pgxpool.Conn
}

func (r releasingRow) Scan(dest ...any) error {
	defer r.c.Release()
	return r.row.Scan(dest...)
}
