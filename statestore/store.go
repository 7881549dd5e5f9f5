package statestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/drydock-go/statemgmt/gen/db"
)

// DefaultPollInterval is how often a waiting claimer or tailer re-checks the
// table when no notification arrives (LISTEN unavailable, e.g. behind a
// transaction pooler, or a notification lost with a dropped connection).
const DefaultPollInterval = 2 * time.Second

// Options configure a Store. The zero value is usable.
type Options struct {
	// Logger receives the store's events; slog.Default() when nil.
	Logger *slog.Logger
	// PollInterval bounds how long ClaimTasksWait and TailMessages sleep
	// without a notification; DefaultPollInterval when zero.
	PollInterval time.Duration
	// DisableListen stops the store listening for wake-ups, so its waiting
	// claimers and tailers only poll: for connections through a
	// transaction-pooling proxy, where LISTEN cannot work. The store still
	// sends wake-ups for others (see DisableNotify).
	DisableListen bool
	// DisableNotify stops the store sending message wake-ups after its
	// appends (and opening the connection it sends them on): tailers
	// elsewhere then learn of new messages by polling.
	DisableNotify bool
	// FailoverAware resets the pool (pgxpool's Reset) after an error that
	// says the server behind it is no longer the writable primary — a
	// read-only server (SQLSTATE 25006), a shutdown (57P01-57P03), a
	// broken connection — so the next call reconnects, without restarting
	// the application. A statement timeout or a deadline mid-statement (a
	// commit waiting for a standby that left, or just a slow statement)
	// resets it only if a role check of the server then fails; the caller's
	// cancellation and a deadline spent waiting for a pool connection never
	// do. Resets come at most once a second. Pair it with ConfigureForFailover on the
	// pool's configuration, which makes those new connections reach the
	// current primary only. See docs/ha.md.
	FailoverAware bool
	// MeterProvider receives the store's metrics (see docs/observability.md);
	// otel.GetMeterProvider() when nil. The store uses the OpenTelemetry
	// API only: the application chooses the SDK and exporter.
	MeterProvider metric.MeterProvider
	// TracerProvider receives a span per store call; otel.GetTracerProvider()
	// when nil.
	TracerProvider trace.TracerProvider
}

// ConfigureForPooler adjusts a pool configuration for a transaction-pooling
// proxy such as PgBouncer: statements are described and run unnamed
// (pgx's QueryExecModeCacheDescribe) instead of as named prepared
// statements, which a transaction pooler cannot keep on one server session.
// Pair it with Options.DisableListen (LISTEN needs a session too). The
// elector must never use such a pool or its connection string.
func ConfigureForPooler(cfg *pgxpool.Config) {
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
}

// Store is the orchestrator's state store. It is safe for concurrent use.
// A Store made by WithTx runs every call inside that transaction.
type Store struct {
	pool   *pgxpool.Pool
	conn   db.DBTX // the pool, or the caller's transaction
	tx     pgx.Tx  // non-nil when bound to a transaction
	q      *db.Queries
	logger *slog.Logger
	poll   time.Duration
	wake   *listener
	notify *notifier
	groups *appendGroups // concurrent appends to one task, grouped
	// pending, when set, collects the tasks that got messages inside the
	// store's own InTx transaction: their wake-ups go out after it commits.
	pending *pendingWakeups
	// fenceTerm, when not 0, fences leader-only calls (see AsLeader).
	fenceTerm int64
	// derived marks a Store made by WithTx or AsLeader: it shares its
	// parent's listener, which only the parent's Close may stop.
	derived bool
	// reset, when set (Options.FailoverAware), sees every database error.
	reset *poolResetter
	// tel records the store's metrics and spans; shared with derived
	// stores. nil only when a test turns telemetry off.
	tel *telemetry
}

// telemetryOff, set only by tests and benchmarks before New, makes stores
// without any instrumentation: the baseline the instrumentation's cost is
// measured against.
var telemetryOff bool

// New returns a Store over pool. The pool stays the caller's: Close stops
// the store's own listener, not the pool.
func New(pool *pgxpool.Pool, opts Options) *Store {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	poll := opts.PollInterval
	if poll <= 0 {
		poll = DefaultPollInterval
	}
	s := &Store{pool: pool, conn: acquiringPool{pool}, q: db.New(), logger: logger, poll: poll, groups: newAppendGroups()}
	if opts.FailoverAware {
		s.reset = &poolResetter{pool: pool, logger: logger}
		s.conn = observedDBTX{DBTX: s.conn, r: s.reset}
	}
	if !telemetryOff {
		tel, err := newTelemetry(opts.MeterProvider, opts.TracerProvider, func(ctx context.Context) ([]*db.QueueStatsRow, error) {
			return s.q.QueueStats(ctx, pool)
		})
		if err != nil {
			logger.Warn("statestore: some metrics will not be recorded", "error", err)
		}
		s.tel = tel
	}
	cfg := pool.Config()
	s.wake = newListener(cfg, logger, !opts.DisableListen)
	s.notify = newNotifier(cfg, logger, !opts.DisableNotify)
	return s
}

// Close stops the store's LISTEN connection, if one was opened. It does not
// close the pool. On a Store made by WithTx or AsLeader it does nothing:
// close the Store that New returned.
func (s *Store) Close() {
	if !s.derived {
		s.notify.close()
		s.wake.close()
		if err := s.tel.close(); err != nil {
			s.logger.Warn("statestore: unregister the queue gauges", "error", err)
		}
	}
}

// WithTx returns a Store whose calls all run inside tx, the caller's own
// transaction: the caller's writes and the store's commit or roll back
// together. Calls that need several statements use savepoints inside tx.
// tx should be READ COMMITTED (PostgreSQL's default): TerminateTask refuses
// any other isolation level, and under REPEATABLE READ or SERIALIZABLE the
// fresh snapshots other calls rely on between statements (CreateTasks'
// second look for a parent) are not taken.
func (s *Store) WithTx(tx pgx.Tx) *Store {
	c := *s
	c.conn, c.tx, c.derived, c.pending = tx, tx, true, nil
	if s.reset != nil {
		c.conn = observedDBTX{DBTX: tx, r: s.reset}
	}
	return &c
}

// InTx runs fn in a transaction and commits if fn returns nil. It rolls back
// if fn returns an error or panics (the panic continues after the rollback),
// and rolls back even when ctx is already cancelled, so a cancelled request
// never leaks its connection. On a Store bound by WithTx, InTx uses a
// savepoint in that transaction.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context, tx *Store) error) (err error) {
	ctx, span := s.start(ctx, "statestore.InTx")
	defer finish(span, &err)
	var tx pgx.Tx
	if s.tx != nil {
		tx, err = s.tx.Begin(ctx)
	} else {
		tx, err = s.pool.Begin(ctx)
	}
	if err != nil {
		// Nothing of the call has run: not an unknown outcome.
		return mapError("begin transaction", notSent(s.reset.observe(err)))
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx)) // the panic is the error that matters
			panic(p)
		}
		if err != nil {
			if rbErr := tx.Rollback(context.WithoutCancel(ctx)); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) {
				err = errors.Join(err, fmt.Errorf("statestore: roll back: %w", rbErr))
			}
		}
	}()
	inner := s.WithTx(tx)
	inner.pending = s.pending // a savepoint's wake-ups wait for the outer commit
	if s.tx == nil {
		inner.pending = &pendingWakeups{}
	}
	if err = fn(ctx, inner); err != nil {
		if s.tx == nil {
			markNotCommitted(err) // COMMIT was never sent: nothing written
		}
		return err
	}
	if err = tx.Commit(ctx); err != nil {
		return mapError("commit", s.reset.observe(err))
	}
	if s.tx == nil {
		s.notify.messages(inner.pending.tasks...)
	}
	return nil
}

// Now returns the database's clock.
func (s *Store) Now(ctx context.Context) (_ time.Time, err error) {
	ctx, span := s.start(ctx, "statestore.Now")
	defer finish(span, &err)
	now, err := s.q.Now(ctx, s.conn)
	if err != nil {
		return time.Time{}, mapError("read database time", err)
	}
	return now.UTC(), nil
}
