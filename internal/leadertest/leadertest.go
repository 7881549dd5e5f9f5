// Package leadertest makes an elector lead for the length of a test, through
// Elector.Run (the one way to lead), for tests outside statestore that need
// a leader: a fenced store, leadership shown by statectl, a fresh election
// after an import.
package leadertest

import (
	"context"
	"testing"
	"time"

	"github.com/drydock-go/statemgmt/statestore"
)

// Lead runs el.Run until the test ends and returns the term once el leads.
// It fails the test when el stops or has not led within timeout (default
// 30 s when zero). The leader function holds leadership until cleanup,
// which cancels Run and waits for it to return.
func Lead(t testing.TB, el *statestore.Elector, timeout time.Duration) int64 {
	t.Helper()
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	terms := make(chan int64, 1)
	go func() {
		ran <- el.Run(ctx, func(ctx context.Context, term int64) error {
			select {
			case terms <- term:
			default:
			}
			<-ctx.Done()
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-ran })
	select {
	case term := <-terms:
		return term
	case err := <-ran:
		t.Fatalf("leadertest: elector stopped before leading: %v", err)
	case <-time.After(timeout):
		t.Fatalf("leadertest: elector did not lead within %s", timeout)
	}
	return 0
}
