package statestore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// Which errors make a FailoverAware store reset its pool: those a failover
// produces, never a lost race, bad input or the caller's own cancellation.
func TestFailoverErrorClassification(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"read-only transaction", &pgconn.PgError{Code: "25006"}, true},
		{"admin shutdown", fmt.Errorf("op: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"crash shutdown", &pgconn.PgError{Code: "57P02"}, true},
		{"cannot connect now", &pgconn.PgError{Code: "57P03"}, true},
		{"statement timeout", &pgconn.PgError{Code: "57014"}, true},
		{"refused target", fmt.Errorf("connect: %w", statestore.ErrNotPrimary), true},
		// A bare deadline is pgxpool's while waiting for a free connection:
		// nothing was sent (a deadline mid-statement is pgconn's timeout error).
		{"deadline before the call was sent", context.DeadlineExceeded, false},
		{"connection cut", io.ErrUnexpectedEOF, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, false},
		{"no rows", pgx.ErrNoRows, false},
		{"caller cancelled", context.Canceled, false},
	} {
		if got := statestore.FailoverErrorForTest(c.err); got != c.want {
			t.Errorf("%s: resets the pool = %v, want %v", c.name, got, c.want)
		}
		// Only a timeout is checked against the server before the reset
		// (TestBreakFailoverAwareNoResetWithoutFailover).
		if got, want := statestore.NeedsProbeForTest(c.err), c.name == "statement timeout"; got != want {
			t.Errorf("%s: checks the server first = %v, want %v", c.name, got, want)
		}
	}
}

// Which driver errors mean "may have been applied": a connection broken
// or timed out after the call was sent, or the session ended by a
// shutdown mid-call; never a refused connection or a server's refusal.
func TestOutcomeUnknownMapping(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection cut mid-call", io.ErrUnexpectedEOF, true},
		{"deadline mid-call", context.DeadlineExceeded, true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"crash shutdown", &pgconn.PgError{Code: "57P02"}, true},
		{"connection closed while awaiting the answer (pgx: safe to retry, it is not)",
			fmt.Errorf("commit: %w", pgconn.ErrConnClosed), true},
		{"could not connect", &pgconn.ConnectError{}, false},
		{"refused target", fmt.Errorf("connect: %w", statestore.ErrNotPrimary), false},
		{"read-only server", &pgconn.PgError{Code: "25006"}, false},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"no rows", pgx.ErrNoRows, false},
	} {
		got := errors.Is(statestore.MapErrorForTest("op", c.err), statestore.ErrOutcomeUnknown)
		if got != c.want {
			t.Errorf("%s: outcome unknown = %v, want %v", c.name, got, c.want)
		}
	}
}

// A create whose connection dies while the insert waits (here behind
// another transaction inserting the same id) fails with ErrOutcomeUnknown:
// once the other transaction rolls back, the server may still finish the
// orphaned insert and commit it (it has the whole request) or abort it
// (it saw the connection go) — both were observed. Retrying with the same
// id gives exactly one task either way.
func TestOutcomeUnknownCreateThenRetryIsExact(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	db := statetest.New(t)
	proxy, via := proxyFor(t, db.URL)
	pool, err := pgxpool.New(ctx, via)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := statestore.New(pool, statestore.Options{Logger: quietLogger, DisableListen: true, DisableNotify: true})
	t.Cleanup(s.Close)
	direct, err := pgxpool.New(ctx, db.URL) // the blocker and the checks: straight to the server
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	nt := statestore.NewTask{ID: uuid.New(), Action: "deploy_node"}
	blocker, err := direct.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback(context.WithoutCancel(ctx))
	if _, err := statestore.New(direct, statestore.Options{DisableListen: true, DisableNotify: true}).WithTx(blocker).CreateTask(ctx, nt); err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, 1)
	go func() {
		_, err := s.CreateTask(ctx, nt)
		failed <- err
	}()
	waitForLockWaiter(t, direct)
	proxy.CutAll()
	err = <-failed
	if !errors.Is(err, statestore.ErrOutcomeUnknown) {
		t.Fatalf("create cut mid-call: %v, want ErrOutcomeUnknown", err)
	}
	if err := blocker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	task, err := s.CreateTask(ctx, nt)
	if err != nil || task.ID != nt.ID {
		t.Fatalf("retry: %v, %v; want the task the lost call created", task, err)
	}
	if n := count(t, direct, "SELECT count(*) FROM tasks WHERE task_id = $1", nt.ID); n != 1 {
		t.Fatalf("%d tasks with the id, want 1", n)
	}
}
