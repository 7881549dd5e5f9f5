package statestore

// Leadership among orchestrator instances: see Elector, whose doc comment
// describes the design (election, the bound on failover, fencing, the term
// as the single truth, database failover).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/metric"

	"github.com/drydock-go/statemgmt/gen/db"
)

// DefaultLeaderLockKey is the advisory lock key instances compete for: the
// first 8 bytes of SHA-256("github.com/drydock-go/statemgmt leadership") as a
// big-endian integer with the sign bit cleared. A constant, so no caller can
// change the key other instances use (TestDefaultLeaderLockKeyDerivation).
const DefaultLeaderLockKey int64 = 1403102092443291806

// Errors of leadership.
var (
	// ErrLeadershipLost is the cause of a leader context cancelled because
	// the elector could no longer confirm it holds the lock.
	ErrLeadershipLost = errors.New("statestore: leadership lost")
	// ErrResigned is the cause of a leader context cancelled by Resign or
	// by the end of Run's context.
	ErrResigned = errors.New("statestore: leadership resigned")
	// ErrPooledConnection means the elector's connection goes through a
	// connection pooler (the backend the server reports is not the one the
	// connection was opened with). Session advisory locks cannot work there:
	// give the elector a direct connection string.
	ErrPooledConnection = errors.New("statestore: the elector's connection goes through a connection pooler (e.g. PgBouncer); session advisory locks need a direct connection to PostgreSQL")
)

// ElectorConfig configures an Elector.
type ElectorConfig struct {
	// ConnString is a DIRECT connection to PostgreSQL for the elector's own
	// session. Required. Never a transaction pooler: see the package docs.
	ConnString string
	// FailoverAware makes the elector's connection reach only a durable
	// primary of a multi-host ConnString (host=a,b port=p,q
	// target_session_attrs=read-write): never a standby, nor a zombie old
	// primary that lost its synchronous standby (see ConfigureForFailover,
	// whose check it runs, and docs/ha.md).
	FailoverAware bool
	// Identity names this instance; a random UUID when zero.
	Identity uuid.UUID
	// Hostname and PID describe this instance for operators; os.Hostname()
	// and os.Getpid() by default.
	Hostname string
	// PID is this instance's process id as shown to operators; see Hostname.
	PID int
	// CheckInterval is how often the leader confirms it still holds the lock,
	// and how long each confirmation may take. Default 500 ms; at most 10 s.
	CheckInterval time.Duration
	// SessionTimeout is how long the server lets the elector's session stay
	// silent (idle_session_timeout) before ending it, which releases the
	// lock: the bound on how long a leader that stops answering keeps
	// leadership, whatever the network does. Default max(2 s, 4 ×
	// CheckInterval); at least 3 × CheckInterval (Run confirms leadership
	// every CheckInterval, so a live leader's session is never silent that
	// long).
	SessionTimeout time.Duration
	// Keepalive settings for the elector's connection, both ends. Defaults:
	// idle 5 s, interval 1 s, count 3, user timeout 5 s.
	KeepaliveIdle time.Duration
	// KeepaliveInterval is the time between unanswered TCP keepalive probes
	// (default 1 s).
	KeepaliveInterval time.Duration
	// KeepaliveCount is how many unanswered probes end the connection
	// (default 3).
	KeepaliveCount int
	// UserTimeout is how long sent data may stay unacknowledged before the
	// connection is dropped (TCP_USER_TIMEOUT on Linux; default 5 s).
	UserTimeout time.Duration
	// LockKey is the advisory lock key; DefaultLeaderLockKey when zero.
	// Instances that should compete must use the same key.
	LockKey int64
	// Logger receives elected / lost / resigned events; slog.Default() when nil.
	Logger *slog.Logger
	// MeterProvider receives the elector's leadership metrics (see
	// docs/observability.md); otel.GetMeterProvider() when nil.
	MeterProvider metric.MeterProvider
}

// String describes the configuration without the connection string, which
// may hold a password.
func (c ElectorConfig) String() string {
	return fmt.Sprintf("ElectorConfig{Identity: %s, Hostname: %q, PID: %d, CheckInterval: %v, SessionTimeout: %v, LockKey: %d, ConnString: [REDACTED]}",
		c.Identity, c.Hostname, c.PID, c.CheckInterval, c.SessionTimeout, c.LockKey)
}

// GoString is String, for %#v.
func (c ElectorConfig) GoString() string { return c.String() }

// Format prints String for every verb (%d, %x, %+v, …), so no verb prints
// the connection string.
func (c ElectorConfig) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// LogValue logs String, for slog (whose JSON handler would otherwise marshal
// every field).
func (c ElectorConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalJSON encodes String, so a configuration dump never holds the
// connection string.
func (c ElectorConfig) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// LeaderFunc is what an elected instance runs. ctx is cancelled the moment
// leadership is lost or given up (context.Cause says which); term is the
// fencing token to pass to Store.AsLeader. Returning resigns leadership.
type LeaderFunc func(ctx context.Context, term int64) error

// Elector campaigns for leadership on its own connection. Use one per
// instance and call Run: it claims leadership, keeps it (the original's
// claim and maintain) and gives it up when the leader function returns or
// Resign is called (the original's abdicate). Resign, Leading and
// BackendPID are safe from any goroutine.
//
// — How it works —
//
// Every instance runs an Elector on its own, dedicated, direct connection to
// PostgreSQL (never through PgBouncer or another transaction pooler: a session
// advisory lock lives and dies with the server session, which a pooler shares
// out between clients). The elector is always in one of three states:
//
//	campaigning ──lock granted──▶ leading ──lost / resigned──▶ stepping down ──▶ campaigning
//
// Campaigning: the elector waits in pg_advisory_lock(key), never without a
// bound: the session's lock_timeout is CheckInterval, and each wait has a
// client-side deadline of CheckInterval + max(CheckInterval, 1 s); when the
// server's lock_timeout ends a wait the elector waits again at once. PostgreSQL
// grants the lock the moment the holder's session ends — its process died, its
// backend was terminated, it resigned, or the server ended a silent session
// (below) — so failover takes milliseconds, not a grace period. Having the
// lock, it records the new leadership in one statement: term = one above every
// term ever granted (terms only ever grow), identity, host, process, backend
// and lock key in active_instance, a row in leader_term, and the term and key
// in leadership_fence. Every statement of the campaign (connection set-up
// included) has a client-side deadline; a reply that does not come in time
// (lost in a partition) drops the session, and Run campaigns afresh.
//
// Leading: the elector calls the caller's function with a context and the term.
// Every CheckInterval (default 500 ms) it runs a heartbeat on the held
// connection that asks the server whether this session still holds the lock
// and the term is still current (its leader_term row open and recorded by this
// backend, no higher term in leadership_fence) and only then refreshes
// leader_term.last_seen; it never touches active_instance. Each
// heartbeat must answer within one CheckInterval measured from when it
// started. A failed or late heartbeat, a closed connection, or the caller's
// context ending means: step down at once — the function's context is
// cancelled (and Leading turns false) before anything else happens.
//
// Stepping down: the elector waits for the function to return. If it lost the
// lock it closes the connection (so a half-dead session cannot keep the lock);
// if it resigned (the function returned, Resign was called, or ctx ended) it
// marks the term resigned and unlocks, which wakes the next waiting candidate
// at once. Then, unless ctx has ended, it campaigns again.
//
// — The bound: a silent leader is replaced within SessionTimeout —
//
// Keepalives alone cannot tell a dead leader from a live one when something
// sits in the path — a TCP proxy, a cloud load balancer, a sidecar, a VPN —
// and the network between the leader and it is cut: the FIN never arrives,
// the middlebox keeps the server's socket open and answers its keepalives,
// and the dead leader's session would keep the lock for ever. So the elector
// asks the server itself to end its session when it falls silent:
// idle_session_timeout (and idle_in_transaction_session_timeout) =
// SessionTimeout, default max(2 s, 4 × CheckInterval). A healthy leader
// speaks every CheckInterval (its heartbeat), so only a leader that stopped
// answering is cut off; the server ends the session, the lock is released, and
// the first waiting candidate is elected: a new leader runs within
// SessionTimeout plus a few milliseconds (about 2 s with the defaults, ≤ 3 s
// documented) whatever the network does, with or without a proxy, FIN lost
// or not. The deposed leader notices on its own side within about two check
// intervals: its heartbeat gets no answer in time, its context is cancelled
// with ErrLeadershipLost. TCP keepalives and TCP_USER_TIMEOUT are still set on
// both ends, and client_connection_check_interval drops a waiting candidate
// whose client is gone before the lock can be granted to it. (Needs
// PostgreSQL 14 or later.)
//
// Two things can stretch the bound, each by a bounded amount. A waiting
// candidate that itself went silent behind a middlebox may be granted the
// lock first; the server ends its session the same way, SessionTimeout
// later, and the next candidate is elected. Silent candidates do not pile
// up: because the wait goes in lock_timeout slices, a candidate whose client
// stopped answering is idle between slices and is ended by
// idle_session_timeout within CheckInterval + SessionTimeout, leaving the
// queue. And the election waits for the old term's fenced transactions
// (below), but at most CheckInterval per attempt: recording the term runs
// under lock_timeout, and on timeout the new leader — which holds the lock,
// so every fenced transaction still open belongs to a deposed term — ends
// the sessions that share-lock active_instance (pg_terminate_backend: the
// elector's role must be allowed to signal the store's sessions, e.g. the
// same role or pg_signal_backend) and tries again. A fenced transaction that
// waits on a worker's row lock therefore cannot hold up the election either.
//
// — Fencing —
//
// A deposed leader may not notice at once. Writes only the leader may make
// therefore carry the term: Store.AsLeader(term) runs claim, requeue,
// terminate and retention inside a transaction that first share-locks the
// active_instance row for that term (Store.CheckLeader does the same for the
// caller's own writes). A stale term finds no row and the call fails with
// ErrNotLeader having written nothing; a new leader's election must wait for
// the share lock, so a fenced write either commits before the new term begins
// or is rejected after it (a fenced transaction still open when a new
// leader has the lock is ended, so rolled back). "Might have two leaders"
// becomes "the stale one can write nothing". The heartbeat never reads or
// writes that row (it uses leader_term and leadership_fence), so fenced work,
// however slow — or a DDL queued behind it — never delays the heartbeat and
// never costs a healthy leader its leadership.
//
// — The term is the single truth —
//
// Only the term decides who may write; the lock only decides who may become
// leader next. An election grants a new term only to a session that was
// granted the lock, never a second one while that session holds it. Only the
// holder of the current term, the session that recorded it and still holds
// the lock, can end it by resigning; no other instance's elector can, short
// of that session losing the lock. Terms never go back: the highest term
// ever granted is kept in leadership_fence, a table no down migration drops,
// so migrating down and up again does not reuse a term a deposed leader may
// still carry.
//
// — Database failover —
//
// Session advisory locks are not replicated. When a standby is promoted, the
// lock is free on the new primary, a candidate connected there takes it and
// records the next term, while the old leader may still hold "the lock" on an
// old primary that is still alive. Fencing keeps that safe ONLY WITH
// SYNCHRONOUS REPLICATION (synchronous_commit = on with
// synchronous_standby_names, as the HA design runs it), because the term
// rows are ordinary replicated data: every term committed on the old primary
// is then on the promoted standby, so the new term is strictly higher than
// any term the old leader carries. With asynchronous replication the promoted
// standby may lack the old leader's election and grant the same term number
// again; the old leader's fenced writes, reaching the new primary, would then
// pass: that setup is not supported. With synchronous replication, on the new
// primary the old leader's fenced writes find their term superseded and fail
// with ErrNotLeader, and its heartbeat fails and cancels its context
// (TestPromotedPrimaryWithSyncHistoryFencesOldTerm). The term also records the
// WAL timeline it was elected on and is current only on that timeline, so
// on the promoted standby (a new timeline) the old term's fenced writes
// fail even before any candidate has campaigned there
// (TestHAPromotedStandbyRefusesOldTermBeforeAnyElection). On the old primary,
// nothing it writes can commit (synchronous commit waits for a standby that
// has left). Two
// sessions holding the lock at once is therefore harmless; only the newest
// term writes (TestTwoLockHoldersOnlyNewestTermWrites models it with two lock
// keys on one server).
type Elector struct {
	cfg    ElectorConfig
	logger *slog.Logger
	q      *db.Queries
	tel    *electorTelemetry

	// callMu serialises Claim, Maintain, Abdicate and Close with each other
	// and with Run's start: one goroutine at a time uses the connection.
	callMu sync.Mutex

	mu        sync.Mutex
	conn      *pgx.Conn
	pid       uint32 // backend of conn, read without touching conn
	term      int64  // the term this elector leads; 0 when it does not
	leaderCtx context.Context
	resignFn  context.CancelCauseFunc
	running   bool // Run owns the connection
}

// NewElector checks cfg and returns an elector; it connects on first use.
func NewElector(cfg ElectorConfig) (*Elector, error) {
	if cfg.ConnString == "" {
		return nil, invalid("ConnString", "must name a direct connection to PostgreSQL")
	}
	if _, err := pgx.ParseConfig(cfg.ConnString); err != nil {
		return nil, invalid("ConnString", "cannot be parsed") // the string may hold a password: not repeated
	}
	if cfg.Identity == uuid.Nil {
		cfg.Identity = uuid.New()
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname() // informational only
	}
	if len(cfg.Hostname) > 255 {
		return nil, invalid("Hostname", "must be at most 255 bytes, got %d", len(cfg.Hostname))
	}
	if cfg.PID == 0 {
		cfg.PID = os.Getpid()
	}
	if cfg.PID < 0 {
		return nil, invalid("PID", "must not be negative, got %d", cfg.PID)
	}
	switch {
	case cfg.CheckInterval == 0:
		cfg.CheckInterval = 500 * time.Millisecond
	case cfg.CheckInterval < 10*time.Millisecond || cfg.CheckInterval > 10*time.Second:
		return nil, invalid("CheckInterval", "must be between 10ms and 10s, got %v", cfg.CheckInterval)
	}
	switch {
	case cfg.SessionTimeout == 0:
		cfg.SessionTimeout = max(2*time.Second, 4*cfg.CheckInterval)
	case cfg.SessionTimeout < 3*cfg.CheckInterval || cfg.SessionTimeout > time.Hour:
		return nil, invalid("SessionTimeout", "must be between 3 × CheckInterval (%v) and 1h, got %v",
			3*cfg.CheckInterval, cfg.SessionTimeout)
	}
	if cfg.KeepaliveIdle <= 0 {
		cfg.KeepaliveIdle = 5 * time.Second
	}
	if cfg.KeepaliveInterval <= 0 {
		cfg.KeepaliveInterval = time.Second
	}
	if cfg.KeepaliveCount <= 0 {
		cfg.KeepaliveCount = 3
	}
	if cfg.UserTimeout <= 0 {
		cfg.UserTimeout = 5 * time.Second
	}
	if cfg.LockKey == 0 {
		cfg.LockKey = DefaultLeaderLockKey
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("identity", cfg.Identity.String())
	e := &Elector{cfg: cfg, logger: logger, q: db.New()}
	tel, err := newElectorTelemetry(cfg.MeterProvider, cfg.Identity.String(), cfg.Hostname, e.Leading)
	if err != nil {
		logger.Warn("statestore: some leadership metrics will not be recorded", "error", err)
	}
	e.tel = tel
	return e, nil
}

// String describes the elector without its connection string.
func (e *Elector) String() string { return "Elector(" + e.cfg.Identity.String() + ")" }

// GoString is String, for %#v.
func (e *Elector) GoString() string { return e.String() }

// Format prints String for every verb, so no verb prints the configuration.
func (e *Elector) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, e.String()) }

// LogValue logs String, for slog.
func (e *Elector) LogValue() slog.Value { return slog.StringValue(e.String()) }

// MarshalJSON encodes String.
func (e *Elector) MarshalJSON() ([]byte, error) { return json.Marshal(e.String()) }

// Identity returns the identity this elector campaigns under.
func (e *Elector) Identity() uuid.UUID { return e.cfg.Identity }

// Leading returns the current term and true while this elector leads: from
// Run's election until the moment the leader function's context is
// cancelled (leadership lost, Resign, or Run's ctx ending), not when the
// function returns.
func (e *Elector) Leading() (int64, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leadingLocked()
}

func (e *Elector) leadingLocked() (int64, bool) {
	if e.term == 0 || (e.leaderCtx != nil && e.leaderCtx.Err() != nil) {
		return 0, false
	}
	return e.term, true
}

// Resign gives up leadership now if this elector leads: the leader function's
// context is cancelled with ErrResigned and, once it returns, the lock is
// released for the next candidate. Run then campaigns again.
func (e *Elector) Resign() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.resignFn != nil {
		e.resignFn(ErrResigned)
	}
}

// Run campaigns until ctx ends. Each time it wins, it runs lead and waits for
// it to return before campaigning again. It returns ctx's error when ctx
// ends; connection problems are logged and retried, never returned. It
// refuses at once (an error) when it is already running.
func (e *Elector) Run(ctx context.Context, lead LeaderFunc) error {
	e.callMu.Lock() // waits for a Claim / Maintain / Abdicate in flight
	e.mu.Lock()
	if e.running {
		e.mu.Unlock()
		e.callMu.Unlock()
		return errors.New("statestore: Elector.Run is already running")
	}
	if e.term != 0 {
		e.mu.Unlock()
		e.callMu.Unlock()
		return errors.New("statestore: Elector.Run called while leading through Claim; Abdicate first")
	}
	e.running = true
	e.mu.Unlock()
	e.callMu.Unlock()
	defer func() {
		e.closeConn()
		e.mu.Lock()
		e.running = false
		e.mu.Unlock()
	}()
	backoff := 50 * time.Millisecond
	failBackoff := leaderFailBackoffMin
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		term, err := e.campaign(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, ErrPooledConnection) {
				e.logger.ErrorContext(ctx, "refusing to campaign through a connection pooler", "error", err)
				return err
			}
			e.logger.WarnContext(ctx, "leadership campaign failed; retrying", "error", err, "retry_in", backoff)
			e.closeConn()
			if err := sleep(ctx, backoff); err != nil {
				return err
			}
			backoff = min(backoff*2, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		if e.lead(ctx, term, lead) {
			// The leader function failed (a store error, say): campaign
			// again only after a pause that doubles while it keeps failing,
			// so a persistent failure neither takes a new term every few
			// milliseconds nor floods the log; other candidates may lead
			// meanwhile (TestElectorBacksOffAfterLeaderFunctionFails).
			if err := sleep(ctx, failBackoff); err != nil {
				return err
			}
			failBackoff = min(failBackoff*2, leaderFailBackoffMax)
		} else {
			failBackoff = leaderFailBackoffMin
		}
	}
}

// Pause before campaigning again after the leader function failed: from
// leaderFailBackoffMin, doubling up to leaderFailBackoffMax.
const (
	leaderFailBackoffMin = 100 * time.Millisecond
	leaderFailBackoffMax = 5 * time.Second
)

// lead runs one term: the function, the heartbeat, and stepping down.
func (e *Elector) lead(ctx context.Context, term int64, fn LeaderFunc) (fnFailed bool) {
	leaderCtx, cancel := context.WithCancelCause(ctx)
	e.mu.Lock()
	e.term, e.resignFn, e.leaderCtx = term, cancel, leaderCtx
	e.mu.Unlock()
	elected := time.Now()
	e.tel.elected(ctx)
	e.logger.InfoContext(ctx, "elected leader", "term", term)

	done := make(chan error, 1)
	go func() { done <- fn(leaderCtx, term) }()

	var fnErr error
	fnDone := false
	lost := e.hold(leaderCtx, term, done, &fnErr, &fnDone)
	if lost != nil {
		cancel(fmt.Errorf("%w: %w", ErrLeadershipLost, lost))
	} else {
		cancel(ErrResigned)
	}
	if !fnDone {
		fnErr = <-done // wait for the function before anything else
	}
	e.mu.Lock()
	e.term, e.resignFn, e.leaderCtx = 0, nil, nil
	e.mu.Unlock()
	if fnErr != nil && !errors.Is(fnErr, context.Canceled) {
		e.logger.ErrorContext(ctx, "leader function failed", "term", term, "error", fnErr)
		fnFailed = true
	}

	if lost != nil {
		e.tel.lost(ctx, lost)
		e.logger.WarnContext(ctx, "lost leadership", "term", term, "reason", lost.Error(),
			"led_for", time.Since(elected).Round(time.Millisecond))
		e.closeConn() // never keep a session whose lock state is unknown
		return fnFailed
	}
	// Resign: mark the term and unlock, on a context that is not cancelled.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.CheckInterval+2*time.Second)
	defer rcancel()
	if err := e.abdicate(rctx, term); err != nil {
		e.logger.WarnContext(ctx, "resign did not complete cleanly; dropping the session", "term", term, "error", err)
		e.closeConn()
		return fnFailed
	}
	e.tel.resigned(ctx)
	e.logger.InfoContext(ctx, "resigned leadership", "term", term, "led_for", time.Since(elected).Round(time.Millisecond))
	return fnFailed
}

// hold runs heartbeats until leadership is lost (returns the reason), or the
// function returns / leaderCtx ends (returns nil: a resignation).
func (e *Elector) hold(leaderCtx context.Context, term int64, done <-chan error, fnErr *error, fnDone *bool) error {
	tick := time.NewTicker(e.cfg.CheckInterval)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			*fnErr, *fnDone = err, true
			return nil
		case <-leaderCtx.Done():
			return nil
		case <-tick.C:
		}
		e.mu.Lock()
		conn := e.conn
		e.mu.Unlock()
		if err := e.maintain(leaderCtx, conn, term); err != nil {
			if leaderCtx.Err() != nil {
				return nil // resigning, not lost
			}
			return err
		}
	}
}

// claimOnce tries once, without waiting, to become leader (the original's
// claim). ctx is checked when Claim starts; once it has started, Claim runs
// to completion (bounded: at most the connect timeout plus a few
// CheckIntervals) on a context that is not cancelled, because interrupting
// a query on the elector's session closes it — and a holder's session
// carries the lock. It returns the new term and true on success, 0 and false when
// another instance holds the lock. Claim by the current leader changes
// nothing: it returns the term it already leads (no second lock, no new
// term). If recording the new term fails, the lock is given back. While
// Run is running, Claim only reports: the current term and true if Run
// leads, 0 and false if it is campaigning.
func (e *Elector) claimOnce(ctx context.Context) (int64, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, fmt.Errorf("claim leadership: %w", err)
	}
	e.callMu.Lock()
	defer e.callMu.Unlock()
	e.mu.Lock()
	if e.running {
		term, ok := e.leadingLocked()
		e.mu.Unlock()
		return term, ok, nil
	}
	e.mu.Unlock()
	ctx, cancel := e.detached(ctx)
	defer cancel()
	conn, err := e.connection(ctx)
	if err != nil {
		return 0, false, err
	}
	params := db.HeldLeaderTermParams{LockKey: e.cfg.LockKey, Identity: e.cfg.Identity}
	held, err := e.q.HeldLeaderTerm(ctx, conn, params)
	if err != nil && conn.IsClosed() && ctx.Err() == nil {
		// The session was gone (e.g. ended by the server after SessionTimeout
		// without Maintain): whatever it held is released. Start afresh once.
		e.closeConn()
		if conn, err = e.connection(ctx); err != nil {
			return 0, false, err
		}
		held, err = e.q.HeldLeaderTerm(ctx, conn, params)
	}
	if err != nil {
		return 0, false, mapError("claim leadership", err)
	}
	if held.LockHeld && held.Term != 0 {
		e.setTerm(held.Term) // already the leader: nothing changes
		return held.Term, true, nil
	}
	if !held.LockHeld {
		got, err := e.q.TryAdvisoryLock(ctx, conn, e.cfg.LockKey)
		if err != nil {
			return 0, false, mapError("claim leadership", err)
		}
		if !got {
			return 0, false, nil
		}
	}
	// The lock is ours (just taken, or held without a current term: a
	// resignation whose unlock failed); record a new term or give it back.
	term, err := e.record(ctx, conn)
	if err != nil {
		e.releaseAfterFailure(ctx, conn)
		return 0, false, err
	}
	e.setTerm(term)
	e.tel.elected(ctx)
	return term, true, nil
}

// releaseAfterFailure gives the lock back after a failed election; when even
// that fails the session is closed, which releases it.
func (e *Elector) releaseAfterFailure(ctx context.Context, conn *pgx.Conn) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.CheckInterval+2*time.Second)
	defer cancel()
	if released, err := e.q.ReleaseAdvisoryLock(rctx, conn, e.cfg.LockKey); err != nil || !released {
		e.closeConn()
	}
}

func (e *Elector) setTerm(term int64) {
	e.mu.Lock()
	e.term = term
	e.mu.Unlock()
}

// campaign waits for the lock, then records the new term. It never waits
// without a bound: each wait lasts at most the session's lock_timeout
// (CheckInterval) on the server and stmtBound on the client, then it waits
// again. Between slices the session is idle, so a candidate whose client has
// gone silent is ended by idle_session_timeout and leaves the queue; a reply
// lost in a partition is noticed by the client's deadline (the connection is
// dropped and Run campaigns afresh).
func (e *Elector) campaign(ctx context.Context) (int64, error) {
	conn, err := e.connection(ctx)
	if err != nil {
		return 0, err
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, e.stmtBound())
		err := e.q.WaitAdvisoryLock(wctx, conn, e.cfg.LockKey)
		cancel()
		if err == nil {
			break
		}
		if !isLockTimeout(err) || ctx.Err() != nil {
			return 0, mapError("wait for leadership lock", err)
		}
	}
	return e.record(ctx, conn)
}

// maxRecordAttempts bounds how often a new leader retries recording its term
// after ending the fenced transactions that held it up.
const maxRecordAttempts = 10

// record records a new term (call only while holding the lock). Its wait for
// the deposed term's fenced transactions is bounded by lock_timeout: on
// timeout it ends those transactions' sessions (they belong to a deposed
// term and can no longer commit usefully) and tries again.
func (e *Elector) record(ctx context.Context, conn *pgx.Conn) (int64, error) {
	for attempt := 1; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, e.stmtBound())
		row, err := e.q.RecordLeader(rctx, conn, db.RecordLeaderParams{
			Identity: e.cfg.Identity, Hostname: e.cfg.Hostname, Pid: int32(e.cfg.PID), LockKey: e.cfg.LockKey})
		cancel()
		if err == nil {
			return row.Term, nil
		}
		if !isLockTimeout(err) || attempt >= maxRecordAttempts || ctx.Err() != nil {
			return 0, mapError("record leadership", err)
		}
		tctx, cancel := context.WithTimeout(ctx, e.stmtBound())
		n, terr := e.q.TerminateFencedTransactions(tctx, conn)
		cancel()
		if terr != nil {
			return 0, mapError("record leadership: end the deposed term's fenced transactions", terr)
		}
		e.logger.WarnContext(ctx, "election held up by fenced transactions of the deposed term; ended their sessions",
			"sessions", n, "attempt", attempt)
	}
}

// stmtBound is the client-side deadline of each statement on the elector's
// session other than the heartbeat: the server's lock_timeout (CheckInterval)
// plus a margin for the round trip. A reply that does not come by then is
// taken as lost, and the session is dropped.
func (e *Elector) stmtBound() time.Duration {
	return e.cfg.CheckInterval + max(e.cfg.CheckInterval, time.Second)
}

// detached returns a context that is not cancelled with ctx but ends after
// the bound of one Claim / Abdicate call.
func (e *Elector) detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), e.connectTimeout()+4*e.stmtBound())
}

func (e *Elector) connectTimeout() time.Duration { return max(5*time.Second, e.cfg.SessionTimeout) }

// isLockTimeout reports a lock_timeout (lock_not_available) error.
func isLockTimeout(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55P03"
}

// maintainTerm confirms, on the elector's connection, that this instance still
// leads under term and refreshes the term's last_seen (the original's
// maintain). It must answer within CheckInterval; any failure means
// leadership is not assured, and Leading turns false. Callers of Claim must
// call it more often than SessionTimeout, or the server ends the session.
// While Run is running it only reports whether Run leads term.
func (e *Elector) maintainTerm(ctx context.Context, term int64) error {
	e.callMu.Lock()
	defer e.callMu.Unlock()
	e.mu.Lock()
	conn, running := e.conn, e.running
	e.mu.Unlock()
	if running {
		if cur, ok := e.Leading(); !ok || cur != term {
			return fmt.Errorf("term %d: %w", term, ErrNotLeader)
		}
		return nil
	}
	if err := e.maintain(ctx, conn, term); err != nil {
		e.mu.Lock()
		wasLeading := e.term == term
		if wasLeading {
			e.term = 0
		}
		e.mu.Unlock()
		if wasLeading {
			e.tel.lost(ctx, err)
		}
		return err
	}
	return nil
}

func (e *Elector) maintain(ctx context.Context, conn *pgx.Conn, term int64) error {
	if conn == nil || conn.IsClosed() {
		return errors.New("elector connection is closed")
	}
	// Bounded by one interval, but not cancelled with ctx: interrupting a
	// query mid-flight can break the session, and a resigning leader still
	// needs it to resign cleanly.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.CheckInterval)
	defer cancel()
	r, err := e.q.LeaderHeartbeat(cctx, conn, db.LeaderHeartbeatParams{Term: term, LockKey: e.cfg.LockKey})
	switch {
	case err != nil:
		return fmt.Errorf("heartbeat failed: %w", err)
	case !r.LockHeld:
		return errLockLost
	case !r.Current:
		return fmt.Errorf("term %d %w", term, errSuperseded)
	}
	return nil
}

// abdicateTerm gives up leadership of term (the original's abdicate): the term is
// marked resigned and the lock released, which wakes the next candidate. Run
// does this itself when its leader function returns. Only the holder of the
// current term can end it: for anyone else (another elector, a past or
// future term) Abdicate changes nothing and returns ErrNotLeader. While Run
// is running and leads term, Abdicate is Resign.
func (e *Elector) abdicateTerm(ctx context.Context, term int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("abdicate term %d: %w", term, err)
	}
	e.callMu.Lock()
	defer e.callMu.Unlock()
	e.mu.Lock()
	running := e.running
	e.mu.Unlock()
	if running {
		if cur, ok := e.Leading(); !ok || cur != term {
			return fmt.Errorf("abdicate term %d: %w", term, ErrNotLeader)
		}
		e.Resign()
		return nil
	}
	dctx, cancel := e.detached(ctx) // never interrupt the holder's session mid-query
	defer cancel()
	err := e.abdicate(dctx, term)
	if err == nil {
		e.mu.Lock()
		e.term = 0
		e.mu.Unlock()
		e.tel.resigned(ctx)
	}
	return err
}

// Close drops the elector's connection (releasing any lock it holds) and
// stops its leadership gauges. Run closes the connection on return; call
// Close once done with the elector (after Run returns) so a MeterProvider
// that outlives it stops reporting it.
func (e *Elector) Close() {
	e.callMu.Lock()
	defer e.callMu.Unlock()
	if err := e.tel.close(); err != nil {
		e.logger.Warn("statestore: unregister the leadership gauges", "error", err)
	}
	e.closeConn()
	e.mu.Lock()
	if !e.running {
		e.term = 0
	}
	e.mu.Unlock()
}

func (e *Elector) abdicate(ctx context.Context, term int64) error {
	e.mu.Lock()
	conn := e.conn
	e.mu.Unlock()
	if conn == nil || conn.IsClosed() {
		return fmt.Errorf("abdicate term %d: not connected: %w", term, ErrNotLeader)
	}
	r, err := e.q.ResignLeader(ctx, conn, db.ResignLeaderParams{Term: term, Identity: e.cfg.Identity, LockKey: e.cfg.LockKey})
	if err != nil && conn.IsClosed() {
		// The session is gone: this elector holds nothing any more, and the
		// term (if it was ours) ends when the next leader supersedes it.
		e.closeConn()
		e.mu.Lock()
		if !e.running {
			e.term = 0
		}
		e.mu.Unlock()
		return fmt.Errorf("abdicate term %d: session lost: %w (%w)", term, ErrNotLeader, err)
	}
	if err != nil {
		return mapError("resign leadership", err)
	}
	if !r.Resigned {
		return fmt.Errorf("abdicate term %d: this session does not hold it: %w", term, ErrNotLeader)
	}
	if !r.Released {
		return errors.New("the leadership lock was not held at release")
	}
	return nil
}

// connection returns the elector's session, dialling it if needed with TCP
// keepalives and user timeout on both ends.
func (e *Elector) connection(ctx context.Context) (*pgx.Conn, error) {
	e.mu.Lock()
	conn := e.conn
	e.mu.Unlock()
	if conn != nil && !conn.IsClosed() {
		return conn, nil
	}
	cfg, err := pgx.ParseConfig(e.cfg.ConnString)
	if err != nil {
		return nil, invalid("ConnString", "cannot be parsed")
	}
	dialer := &net.Dialer{
		Timeout: 10 * time.Second,
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: e.cfg.KeepaliveIdle,
			Interval: e.cfg.KeepaliveInterval, Count: e.cfg.KeepaliveCount},
		Control: userTimeoutControl(e.cfg.UserTimeout),
	}
	cfg.DialFunc = dialer.DialContext
	if e.cfg.FailoverAware {
		configureConnForFailover(cfg) // the current primary only, never a standby or a zombie
	}
	// Advisory locks and LISTEN need a real session; prepared statements are
	// fine on a direct connection.
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = e.connectTimeout() // a blackholed path must not hang the campaign for ever
	}
	conn, err = pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("statestore: elector connect: %w", err)
	}
	// A pooler answers the connection with its own BackendKeyData; the
	// server's own pid then differs from the one the connection was given.
	// A plain TCP proxy passes the server's through, and is fine. Checked
	// first, with the simple protocol, so nothing is prepared on a pooled
	// server session.
	sctx, cancel := context.WithTimeout(ctx, 2*e.stmtBound()) // the setup queries, bounded
	defer cancel()
	serverPID, err := e.q.BackendPID(sctx, simpleProtocol{conn})
	if err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, mapError("elector backend pid", err)
	}
	if uint32(serverPID) != conn.PgConn().PID() {
		conn.Close(context.WithoutCancel(ctx))
		return nil, ErrPooledConnection
	}
	if err := e.q.SetSessionKeepalives(sctx, conn, db.SetSessionKeepalivesParams{
		IdleSeconds:      int32(max(1, e.cfg.KeepaliveIdle/time.Second)),
		IntervalSeconds:  int32(max(1, e.cfg.KeepaliveInterval/time.Second)),
		ProbeCount:       int32(e.cfg.KeepaliveCount),
		UserTimeoutMs:    int32(e.cfg.UserTimeout / time.Millisecond),
		SessionTimeoutMs: int32(e.cfg.SessionTimeout / time.Millisecond),
		CheckIntervalMs:  int32(max(time.Second, e.cfg.CheckInterval) / time.Millisecond),
		LockTimeoutMs:    int32(e.cfg.CheckInterval / time.Millisecond),
	}); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, mapError("elector session keepalives", err)
	}
	e.mu.Lock()
	e.conn, e.pid = conn, conn.PgConn().PID()
	e.mu.Unlock()
	return conn, nil
}

// BackendPID returns the server process of the elector's session (0 when not
// connected), for operators and tests.
func (e *Elector) BackendPID() uint32 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pid
}

func (e *Elector) closeConn() {
	e.mu.Lock()
	conn := e.conn
	e.conn, e.pid = nil, 0
	if !e.running {
		e.term = 0 // Claim's term ends with the session that held the lock
	}
	e.mu.Unlock()
	if conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(ctx) // closing is all that matters; the server drops the lock with the session
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// simpleProtocol runs QueryRow with the simple query protocol (no prepared
// statement left behind on the server session).
type simpleProtocol struct{ *pgx.Conn }

// QueryRow runs sql with the simple protocol.
func (c simpleProtocol) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return c.Conn.QueryRow(ctx, sql, append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
}
