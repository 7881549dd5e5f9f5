package demo

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// TestBreakTwoDemosOnOneDatabase: the demo promises to refuse a database in
// use, but the check (refuseInUse) is a plain read with no lock held until
// the demo's own writes: two `statectl demo --database-url URL` started
// together on one empty database both pass it and then run against each
// other (each claims the other's tasks, deposes the other's leader, kills
// the other's sessions). The promise holds only for data already committed.
// Expected: one demo runs (and passes), the other gets ErrDatabaseInUse.
// Suggested fix: take a session advisory lock (e.g. pg_try_advisory_lock on
// a demo key) on the checking connection before refuseInUse and hold it for
// the whole run; a second demo failing to get it is ErrDatabaseInUse.
func TestBreakTwoDemosOnOneDatabase(t *testing.T) {
	db := statetest.New(t)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	outs := make([]bytes.Buffer, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = Run(context.Background(), Config{DatabaseURL: db.URL, Nodes: 4, Out: &outs[i]})
		}()
	}
	wg.Wait()
	ok, refused := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrDatabaseInUse):
			refused++
		default:
			t.Logf("demo %d failed otherwise: %v\n%s", i, err, outs[i].String())
		}
	}
	if ok != 1 || refused != 1 {
		t.Fatalf("two demos on one database: %d passed, %d refused (ErrDatabaseInUse), %d failed otherwise; want 1 passed and 1 refused",
			ok, refused, 2-ok-refused)
	}
}
