package statestore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// A connection that dies inside a transaction: the call fails, nothing of
// the transaction is visible, and the next call works on a fresh connection.
func TestConnectionLostMidTransaction(t *testing.T) {
	ctx := context.Background()
	db := statetest.New(t)
	direct, err := pgxpool.New(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	proxy, via := proxyFor(t, db.URL)
	pool, err := pgxpool.New(ctx, via)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s := statestore.New(pool, statestore.Options{DisableListen: true})
	defer s.Close()

	faults := []struct {
		name string
		cut  func() error
	}{
		{"proxy cut", func() error { proxy.CutAll(); return nil }},
		{"pg_terminate_backend", func() error {
			var pid int32
			// The transaction's own backend, seen from outside.
			if err := direct.QueryRow(ctx, `SELECT pid FROM pg_stat_activity
				WHERE datname = current_database() AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()`).Scan(&pid); err != nil {
				return err
			}
			_, err := direct.Exec(ctx, "SELECT pg_terminate_backend($1)", pid)
			return err
		}},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			before := count(t, direct, "SELECT count(*) FROM tasks")
			err := s.InTx(ctx, func(ctx context.Context, tx *statestore.Store) error {
				task, err := tx.CreateTask(ctx, statestore.NewTask{Action: "noop"})
				if err != nil {
					return err
				}
				if _, err := tx.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "half done"}); err != nil {
					return err
				}
				if err := f.cut(); err != nil {
					t.Fatalf("inject fault: %v", err)
				}
				_, err = tx.CreateTask(ctx, statestore.NewTask{Action: "noop"})
				return err
			})
			if err == nil {
				t.Fatal("a transaction whose connection died committed")
			}
			if n := count(t, direct, "SELECT count(*) FROM tasks"); n != before {
				t.Fatalf("%d tasks of the broken transaction are visible", n-before)
			}
			if n := count(t, direct, "SELECT count(*) FROM result_message"); n != 0 {
				t.Fatal("a message of the broken transaction is visible")
			}
			// The next call succeeds on a fresh connection.
			if _, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"}); err != nil {
				t.Fatalf("call after the fault: %v", err)
			}
			// pgxpool destroys a broken connection in a goroutine of its
			// own, so under load it may still count as acquired for a
			// moment: a leak is one that never comes back.
			for deadline := time.Now().Add(10 * time.Second); pool.Stat().AcquiredConns() != 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("a connection leaked: %d still acquired after 10 s", pool.Stat().AcquiredConns())
				}
			}
		})
	}
}

// Restart the server under a running store and elector (a throwaway cluster
// of the test's own, never the shared server): the pool recovers, the
// elector re-elects, and no task is lost or duplicated.
func TestServerRestartRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own PostgreSQL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := statetest.StartCluster(ctx)
	if err != nil {
		t.Skipf("no throwaway cluster: %v", err)
	}
	defer srv.Close(context.Background()) //nolint:errcheck // teardown
	db, err := srv.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s := statestore.New(pool, statestore.Options{PollInterval: 50 * time.Millisecond})
	defer s.Close()

	el, err := statestore.NewElector(statestore.ElectorConfig{ConnString: db.URL, CheckInterval: 100 * time.Millisecond, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	terms := make(chan int64, 16)
	ectx, ecancel := context.WithCancel(ctx)
	done := make(chan struct{})
	defer func() { ecancel(); <-done }()
	go func() {
		defer close(done)
		_ = el.Run(ectx, func(ctx context.Context, term int64) error {
			terms <- term
			<-ctx.Done()
			return nil
		})
	}()
	first := <-terms

	var batch []statestore.NewTask
	for i := 0; i < 200; i++ {
		batch = append(batch, statestore.NewTask{Action: "noop"})
	}
	if _, err := s.CreateTasks(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	claimed, err := s.ClaimTasks(ctx, "worker", 50)
	if err != nil || len(claimed) != 50 {
		t.Fatalf("claim = %d, %v", len(claimed), err)
	}

	restarted := time.Now()
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	serverBack := time.Since(restarted)
	// The pool recovers: the first calls may fail on dead connections.
	var storeBack time.Duration
	for {
		if _, err := s.ListTasks(ctx, statestore.TaskFilter{Limit: 1}); err == nil {
			storeBack = time.Since(restarted)
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the store never recovered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var second int64
	select {
	case second = <-terms:
	case <-time.After(30 * time.Second):
		t.Fatal("the elector did not re-elect after the restart")
	}
	electedBack := time.Since(restarted)
	if second <= first {
		t.Fatalf("term after restart %d, before %d", second, first)
	}
	t.Logf("restart: server answering after %v, store after %v, leader (term %d -> %d) after %v",
		serverBack.Round(time.Millisecond), storeBack.Round(time.Millisecond), first, second, electedBack.Round(time.Millisecond))

	// Nothing lost, nothing doubled: 50 running (same claimer), 150 queued.
	if n := count(t, pool, "SELECT count(*) FROM tasks"); n != 200 {
		t.Fatalf("%d tasks after restart, want 200", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM tasks WHERE status = 'running' AND claimed_by = 'worker'"); n != 50 {
		t.Fatalf("%d running tasks after restart, want 50", n)
	}
	rest, err := s.ClaimTasks(ctx, "worker2", 1000)
	if err != nil || len(rest) != 150 {
		t.Fatalf("claim the rest = %d, %v", len(rest), err)
	}
	mine := map[[16]byte]bool{}
	for _, c := range claimed {
		mine[c.ID] = true
	}
	for _, r := range rest {
		if mine[r.ID] {
			t.Fatalf("task %s claimed twice across the restart", r.ID)
		}
	}
	if _, err := s.AsLeader(first).RequeueStaleTasks(ctx, time.Now()); !errors.Is(err, statestore.ErrNotLeader) {
		t.Fatalf("the pre-restart term still writes: %v", err)
	}
}
