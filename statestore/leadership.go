package statestore

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/gen/db"
)

// Leader describes the current (or last) leader as recorded in active_instance.
type Leader struct {
	// Identity is the leading elector's ElectorConfig.Identity.
	Identity uuid.UUID `json:"identity"`
	// Term is the fencing term it was elected with (see AsLeader).
	Term int64 `json:"term"`
	// ElectedAt is when it was elected.
	ElectedAt time.Time `json:"elected_at"`
	// LastPing is when it last confirmed its leadership.
	LastPing time.Time `json:"last_seen"`
	// ResignedAt is set when the term was given up; nil while it runs.
	ResignedAt *time.Time `json:"resigned_at,omitempty"`
	// Hostname is the leader's host (ElectorConfig.Hostname).
	Hostname string `json:"hostname"`
	// PID is the leader's process id (ElectorConfig.PID).
	PID int `json:"pid"`
	// BackendPID is the PostgreSQL backend process of the elector's
	// session, the one holding the lock.
	BackendPID int `json:"backend_pid"`
	// LockHeld says whether the recorded backend still holds the leadership
	// lock, under the key the leader was elected with: false after a crash
	// until the next leader is elected.
	LockHeld bool `json:"lock_held"`
}

// Leader reads who leads now. ErrNotFound if nobody ever has.
func (s *Store) Leader(ctx context.Context) (_ *Leader, err error) {
	ctx, span := s.start(ctx, "statestore.Leader")
	defer finish(span, &err)
	r, err := s.q.GetActiveInstance(ctx, s.conn, DefaultLeaderLockKey) // the key of rows recorded before it was kept
	if err != nil {
		return nil, mapError("read leader", err)
	}
	return &Leader{Identity: r.Identity, Term: r.Term, ElectedAt: r.ElectedAt.UTC(), LastPing: r.LastPing.UTC(),
		ResignedAt: utcPtr(r.ResignedAt), Hostname: r.Hostname, PID: int(r.Pid), BackendPID: int(r.BackendPid),
		LockHeld: r.LockHeld}, nil
}

// LeaderTerm is one past or current term from the leadership history.
type LeaderTerm struct {
	// Term is the fencing term.
	Term int64 `json:"term"`
	// Identity is the elector that held it (ElectorConfig.Identity).
	Identity uuid.UUID `json:"identity"`
	// Hostname is that elector's host.
	Hostname string `json:"hostname"`
	// PID is that elector's process id.
	PID int `json:"pid"`
	// BackendPID is the PostgreSQL backend process of its session.
	BackendPID int `json:"backend_pid"`
	// ElectedAt is when the term began.
	ElectedAt time.Time `json:"elected_at"`
	// EndedAt is when it ended; nil while it runs.
	EndedAt *time.Time `json:"ended_at,omitempty"`
	// EndReason is "resigned", "superseded" (found open by the next leader:
	// a crash or partition) or "" while the term runs.
	EndReason string `json:"end_reason,omitempty"`
}

// LeaderHistory returns up to limit terms (default 100), newest first.
func (s *Store) LeaderHistory(ctx context.Context, limit int) (_ []LeaderTerm, err error) {
	ctx, span := s.start(ctx, "statestore.LeaderHistory")
	defer finish(span, &err)
	if limit == 0 {
		limit = 100
	}
	if limit < 0 || limit > 100000 {
		return nil, invalid("limit", "must be between 1 and 100000, got %d", limit)
	}
	rows, err := s.q.ListLeaderTerms(ctx, s.conn, int32(limit))
	if err != nil {
		return nil, mapError("read leadership history", err)
	}
	out := make([]LeaderTerm, len(rows))
	for i, r := range rows {
		out[i] = LeaderTerm{Term: r.Term, Identity: r.Identity, Hostname: r.Hostname, PID: int(r.Pid),
			BackendPID: int(r.BackendPid), ElectedAt: r.ElectedAt.UTC(), EndedAt: utcPtr(r.EndedAt),
			EndReason: deref(r.EndReason)}
	}
	return out, nil
}

// AsLeader returns a Store whose leader-only calls — ClaimTasks (and
// ClaimTasksWait), RequeueTasksOfClaimer, RequeueStaleTasks, TerminateTask,
// DeleteTasksCreatedBefore — are fenced by term: each runs in a transaction
// that first confirms term is current and share-locks it, so the call either
// completes before a new leader's term begins or fails with ErrNotLeader
// having written nothing. Other calls are unchanged.
func (s *Store) AsLeader(term int64) *Store {
	c := *s
	c.fenceTerm, c.derived = term, true
	return &c
}

// FencedIdleTimeout is how long a fenced transaction (after CheckLeader,
// and every AsLeader call) may sit idle between statements before
// PostgreSQL ends its session. The transaction holds the term: a new
// leader's election waits for it, so a leader host that vanishes in the
// middle of one (through a proxy that keeps its socket open) would otherwise
// hold up the next election for ever. Statements may run as long as they
// need; only idleness is bounded.
const FencedIdleTimeout = time.Second

// CheckLeader confirms that term is the current leadership term and holds it
// (share lock) until the transaction ends; ErrNotLeader otherwise. Call it
// first inside InTx (or on a WithTx store) to fence the caller's own
// leader-only writes; the transaction may then not sit idle for longer than
// FencedIdleTimeout. Outside a transaction it only checks.
func (s *Store) CheckLeader(ctx context.Context, term int64) (err error) {
	ctx, span := s.start(ctx, "statestore.CheckLeader")
	defer finish(span, &err)
	if term <= 0 {
		return invalid("term", "must be positive, got %d", term)
	}
	_, err = s.q.LockLeaderTerm(ctx, s.conn, db.LockLeaderTermParams{Term: term,
		IdleMs: int32(FencedIdleTimeout / time.Millisecond)})
	if err != nil {
		mapped := mapError("check leadership", err)
		if isNotFound(mapped) {
			return fmt.Errorf("term %d: %w", term, ErrNotLeader)
		}
		return mapped
	}
	return nil
}

// leaderOnly runs fn directly, or, on a fenced store, inside a transaction
// that first checks and share-locks the term.
func (s *Store) leaderOnly(ctx context.Context, fn func(ctx context.Context, s *Store) error) error {
	if s.fenceTerm == 0 {
		return fn(ctx, s)
	}
	term := s.fenceTerm
	return s.InTx(ctx, func(ctx context.Context, tx *Store) error {
		tx.fenceTerm = 0
		if err := tx.CheckLeader(ctx, term); err != nil {
			return err
		}
		return fn(ctx, tx)
	})
}
