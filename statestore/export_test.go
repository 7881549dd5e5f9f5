package statestore

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// ExecForTest runs a statement on the store's connection or transaction, for
// tests that keep bookkeeping tables of their own next to the store's rows.
func (s *Store) ExecForTest(ctx context.Context, sql string, args ...any) error {
	_, err := s.conn.Exec(ctx, sql, args...)
	return err
}

// DecodePresentedKey exposes the constant-time key decoder to the tests.
func DecodePresentedKey(p []byte) ([32]byte, bool) {
	k, ok := decodePresentedKey(p)
	return k, ok == 1
}

// MapErrorForTest exposes the store's error mapping, for tests that provoke
// real server errors with raw SQL.
func MapErrorForTest(op string, err error) error { return mapError(op, err) }

// ConstraintColumnForTest exposes the constraint-name-to-column rule.
func ConstraintColumnForTest(table, constraint string) string {
	return constraintColumn(table, constraint)
}

// DataFormatPatternForTest is the Go side of build_data_data_format_check.
const DataFormatPatternForTest = dataFormatPattern

// SetListenRetriedForTest makes the store's listener report each reconnect
// delay to f before sleeping it. Call it before the listener starts.
func SetListenRetriedForTest(s *Store, f func(time.Duration)) {
	s.wake.retried = f
}

// WaitForQueued blocks until a task of one of actions may have been queued,
// the poll interval passes, or ctx ends: the wait inside ClaimTasksWait,
// for tests of the wake-up path.
func (s *Store) WaitForQueued(ctx context.Context, actions ...string) error {
	sub := s.wake.subscribe(channelTaskQueued, actions...)
	defer s.wake.unsubscribe(sub)
	return wait(ctx, sub.ch, s.poll)
}

// Claim, Maintain and Abdicate drive the elector step by step (the
// original's claim, maintain and abdicate), for tests of the election's
// edges; callers use Run and Resign.
func (e *Elector) Claim(ctx context.Context) (int64, bool, error) { return e.claimOnce(ctx) }

// Maintain: see Claim.
func (e *Elector) Maintain(ctx context.Context, term int64) error { return e.maintainTerm(ctx, term) }

// Abdicate: see Claim.
func (e *Elector) Abdicate(ctx context.Context, term int64) error { return e.abdicateTerm(ctx, term) }

// FailoverErrorForTest exposes failoverError.
func FailoverErrorForTest(err error) bool { return failoverError(err) }

// QueuedAppendsForTest is how many AppendMessages calls wait for the
// statement under way for task id (appendGroups), -1 when none is.
func QueuedAppendsForTest(s *Store, id uuid.UUID) int {
	s.groups.mu.Lock()
	defer s.groups.mu.Unlock()
	q, busy := s.groups.queued[id]
	if !busy {
		return -1
	}
	return len(q)
}

// SetGroupAppendsForTest turns the grouping of concurrent appends to one
// task on or off (benchmarks compare both), and returns the old setting.
func SetGroupAppendsForTest(on bool) bool {
	old := groupAppends
	groupAppends = on
	return old
}

// SetTelemetryOffForTest makes the stores created afterwards carry no
// instrumentation at all (the baseline of the instrumentation benchmark);
// it returns a function that restores the setting.
func SetTelemetryOffForTest(off bool) (restore func()) {
	old := telemetryOff
	telemetryOff = off
	return func() { telemetryOff = old }
}

// NeedsProbeForTest exposes needsProbe.
func NeedsProbeForTest(err error) bool { return needsProbe(err) }

// ClaimersWaitingForTest is how many ClaimTasksWait claimers are subscribed
// to queued wake-ups (for any action).
func ClaimersWaitingForTest(s *Store) int {
	l := s.wake
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[*subscription]bool{}
	for _, subs := range l.byKey[channelTaskQueued] {
		for sub := range subs {
			if sub.claimer {
				seen[sub] = true
			}
		}
	}
	for sub := range l.anyKey[channelTaskQueued] {
		if sub.claimer {
			seen[sub] = true
		}
	}
	return len(seen)
}
