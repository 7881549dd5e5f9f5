package statestore

import (
	"context"
	"time"
)

// ExecForTest runs a statement on the store's connection or transaction, for
// tests that keep bookkeeping tables of their own next to the store's rows.
func (s *Store) ExecForTest(ctx context.Context, sql string, args ...any) error {
	_, err := s.conn.Exec(ctx, sql, args...)
	return err
}

// SetListenRetriedForTest makes the store's listener report each reconnect
// delay to f before sleeping it. Call it before the listener starts.
func SetListenRetriedForTest(s *Store, f func(time.Duration)) {
	s.wake.retried = f
}
