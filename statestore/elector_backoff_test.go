package statestore_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drydock-go/statemgmt/statestore"
)

// TestElectorBacksOffAfterLeaderFunctionFails: a leader function that fails
// at once (a store error, say) must not make Run take a new term every few
// milliseconds: Run pauses before campaigning again, the pause doubling
// while the failures go on (100 ms, 200 ms, 400 ms, ...). Over 1.5 s that
// allows at most 5 terms; without the pause Run takes one per round trip
// (dozens even on a loaded machine). A slower machine only takes fewer.
func TestElectorBacksOffAfterLeaderFunctionFails(t *testing.T) {
	e := newElection(t)
	var terms atomic.Int64
	start := time.Now()
	e.candidate(statestore.ElectorConfig{}, func(ctx context.Context, term int64) error {
		terms.Add(1)
		return errors.New("the store is failing")
	})
	time.Sleep(1500 * time.Millisecond)
	window := time.Since(start)
	if n := terms.Load(); n > 5 {
		t.Fatalf("%d terms in %s with a leader function that fails at once: Run does not pause before campaigning again", n, window.Round(time.Millisecond))
	}
	history, err := e.store.LeaderHistory(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(history) == 0 {
		t.Fatal("no term was ever taken: the candidate never led")
	}
}
