package statestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/gen/db"
)

// ErrNotPrimary means a server was refused as a connection's target: it is
// in recovery or read-only (a standby), or it requires a synchronous standby
// and none is attached — a "zombie" old primary brought back after its
// standby was promoted, or a primary whose standby is down, where a commit
// would wait for ever (and, if that wait were cancelled, be committed
// locally without the replica). See ConfigureForFailover.
var ErrNotPrimary = errors.New("statestore: not a writable primary with its synchronous standby")

// ConfigureForFailover makes every connection the pool opens (and the
// store's LISTEN connection, which copies the pool's configuration) check
// the server it reached and move on to the next host of a multi-host
// connection string (host=a,b port=p,q target_session_attrs=read-write)
// unless that server is a durable primary: not in recovery, not read-only,
// and, when synchronous_standby_names is set, with a synchronous standby
// streaming from it. pgx's own target_session_attrs check runs first. A
// zombie old primary therefore never gets a connection, however it comes
// back. When no host qualifies, connecting fails and the error wraps
// ErrNotPrimary. Pair it with Options.FailoverAware, which resets the pool
// on the errors a failover produces.
//
// The check reads pg_stat_replication: when synchronous_standby_names is
// set, the pool's role must see other sessions' rows there (pg_monitor or
// pg_read_all_stats), or every server looks standby-less and is refused
// (the error then names pg_monitor).
// It needs migration 013.
func ConfigureForFailover(cfg *pgxpool.Config) {
	configureConnForFailover(cfg.ConnConfig)
}

func configureConnForFailover(cc *pgx.ConnConfig) {
	prev := cc.ValidateConnect
	cc.ValidateConnect = func(ctx context.Context, pc *pgconn.PgConn) error {
		if prev != nil {
			if err := prev(ctx, pc); err != nil {
				return err
			}
		}
		return validatePrimary(ctx, pc)
	}
}

// validatePrimary refuses a server that is not a durable primary.
func validatePrimary(ctx context.Context, pc *pgconn.PgConn) error {
	r, err := db.New().ServerRole(ctx, pgconnDBTX{pc})
	if err != nil {
		return fmt.Errorf("statestore: check the server's role: %w", err)
	}
	switch {
	case r.InRecovery:
		return fmt.Errorf("%w: the server is a standby (in recovery)", ErrNotPrimary)
	case r.ReadOnly:
		return fmt.Errorf("%w: the server is read-only", ErrNotPrimary)
	case r.SyncRequired && r.SyncStandbys == 0 && !r.SeesStandbys:
		return fmt.Errorf("%w: the server requires a synchronous standby, and this role cannot see its "+
			"standbys (pg_stat_replication): grant it pg_monitor", ErrNotPrimary)
	case r.SyncRequired && r.SyncStandbys == 0:
		return fmt.Errorf("%w: the server requires a synchronous standby and none is attached "+
			"(an old primary after a failover, or its standby is down)", ErrNotPrimary)
	}
	return nil
}

// pgconnDBTX runs the generated single-row queries on a bare *pgconn.PgConn
// (all ValidateConnect has), decoding the text results with pgtype.
type pgconnDBTX struct{ pc *pgconn.PgConn }

func (c pgconnDBTX) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.CommandTag{}, errors.New("statestore: Exec is not supported while validating a connection")
}

func (c pgconnDBTX) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, errors.New("statestore: Query is not supported while validating a connection")
}

func (c pgconnDBTX) CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error) {
	return 0, errors.New("statestore: CopyFrom is not supported while validating a connection")
}

func (c pgconnDBTX) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if len(args) != 0 {
		return errRow{errors.New("statestore: parameters are not supported while validating a connection")}
	}
	res := c.pc.ExecParams(ctx, sql, nil, nil, nil, nil).Read()
	if res.Err != nil {
		return errRow{res.Err}
	}
	if len(res.Rows) != 1 {
		return errRow{pgx.ErrNoRows}
	}
	return textRow{fields: res.FieldDescriptions, values: res.Rows[0]}
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// textRow scans one row of text-format values.
type textRow struct {
	fields []pgconn.FieldDescription
	values [][]byte
}

func (r textRow) Scan(dest ...any) error {
	if len(dest) != len(r.values) {
		return fmt.Errorf("statestore: %d columns scanned into %d destinations", len(r.values), len(dest))
	}
	types := pgtype.NewMap() // a Map caches scan plans: not for concurrent connects
	for i, d := range dest {
		if err := types.Scan(r.fields[i].DataTypeOID, r.fields[i].Format, r.values[i], d); err != nil {
			return fmt.Errorf("statestore: scan column %s: %w", r.fields[i].Name, err)
		}
	}
	return nil
}

// resetMinInterval spaces out the pool resets a burst of failing calls
// would otherwise trigger one after another.
const resetMinInterval = time.Second

// poolResetter resets the pool (pgxpool's Reset: idle connections closed at
// once, busy ones when released) after an error that says the server
// behind it is gone, read-only or no longer durable, so the next call
// connects afresh — and, with ConfigureForFailover, to the new primary.
type poolResetter struct {
	pool   *pgxpool.Pool
	logger *slog.Logger
	mu     sync.Mutex
	last   time.Time
}

// probeTimeout bounds the role check observe runs after an error that may
// or may not be a failover.
const probeTimeout = 2 * time.Second

// observe resets the pool if err calls for it; it returns err unchanged.
// An error that proves nothing by itself (a timeout: a slow statement or a
// lock wait on a healthy server looks the same as a server that is gone
// or waits for a standby that left) resets the pool only if a role check
// of the server, on a connection of the pool, then fails.
func (r *poolResetter) observe(err error) error {
	if r == nil || err == nil || !failoverError(err) {
		return err
	}
	r.mu.Lock()
	now := time.Now()
	due := now.Sub(r.last) >= resetMinInterval
	if due {
		r.last = now
	}
	r.mu.Unlock()
	if due && needsProbe(err) && r.serverIsPrimary() {
		return err
	}
	if due {
		r.logger.Warn("resetting the store's pool after a database error (failover?)", "error", err)
		r.pool.Reset()
	}
	return err
}

// serverIsPrimary checks, on a connection of the pool, that its server is
// still a durable primary (see validatePrimary). Not getting a free
// connection in time is no evidence against the server: it says true then.
func (r *poolResetter) serverIsPrimary() bool {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	c, err := r.pool.Acquire(ctx)
	if err != nil {
		var connectErr *pgconn.ConnectError
		return !errors.As(err, &connectErr) && !errors.Is(err, ErrNotPrimary) &&
			errors.Is(err, context.DeadlineExceeded)
	}
	defer c.Release()
	return validatePrimary(ctx, c.Conn().PgConn()) == nil
}

// SQLSTATEs that say the server is not (or no longer) the writable primary.
const (
	pgReadOnlyTransaction = "25006" // read_only_sql_transaction: a standby, or demoted
	pgQueryCanceled       = "57014" // statement_timeout: e.g. a commit waiting for a standby that left
)

// failoverError reports whether err may come from a failover: a read-only
// server, an administrator or crash shutdown (57P01-57P03), a refused
// target (ErrNotPrimary) or a broken connection — or, to be checked with
// needsProbe, a statement that timed out. The caller's own cancellation
// and a deadline that ran out before anything was sent (waiting for a
// free connection of the pool) are not.
func failoverError(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case pgReadOnlyTransaction, pgQueryCanceled, pgAdminShutdown, pgCrashShutdown, "57P03":
			return true
		}
		return false
	}
	if errors.Is(err, ErrNotPrimary) || pgconn.Timeout(err) {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false // the caller's context: cancelled, or ran out before the statement was sent
	}
	var netErr net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.As(err, &netErr) ||
		pgconn.SafeToRetry(err)
}

// needsProbe reports whether failoverError's err proves nothing by itself
// (a statement timed out: slow, or the server is gone), so that the
// server's role is checked before the pool is reset.
func needsProbe(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == pgQueryCanceled
	}
	return pgconn.Timeout(err)
}

// observedDBTX is a connection (the pool or a transaction) whose errors go
// through a poolResetter.
type observedDBTX struct {
	db.DBTX
	r *poolResetter
}

func (c observedDBTX) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := c.DBTX.Exec(ctx, sql, args...)
	return tag, c.r.observe(err)
}

func (c observedDBTX) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := c.DBTX.Query(ctx, sql, args...)
	if err != nil {
		return rows, c.r.observe(err)
	}
	return observedRows{Rows: rows, r: c.r}, nil
}

func (c observedDBTX) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return observedRow{Row: c.DBTX.QueryRow(ctx, sql, args...), r: c.r}
}

func (c observedDBTX) CopyFrom(ctx context.Context, t pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	n, err := c.DBTX.CopyFrom(ctx, t, cols, src)
	return n, c.r.observe(err)
}

type observedRows struct {
	pgx.Rows
	r *poolResetter
}

func (o observedRows) Err() error { return o.r.observe(o.Rows.Err()) }

type observedRow struct {
	pgx.Row
	r *poolResetter
}

func (o observedRow) Scan(dest ...any) error { return o.r.observe(o.Row.Scan(dest...)) }
