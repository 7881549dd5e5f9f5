package statestore_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// A subtask created with a caller-chosen id whose answer was lost, then
// its parent terminated (which terminates the subtask too): the retry must
// return the subtask that exists, not ErrParentClosed — that error says
// "nothing was written", and the caller would believe the subtask never
// existed. Other content under the id stays a conflict.
func TestBreakCreateSubtaskRetryAfterParentClosed(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	s, pool := newStore(t, statestore.Options{})
	parent, err := s.CreateTask(ctx, statestore.NewTask{ID: uuid.New(), Action: "deploy_nodes"})
	if err != nil {
		t.Fatal(err)
	}
	kid := statestore.NewTask{ID: uuid.New(), Action: "deploy_node", CreatedBy: "api"}
	if _, err := s.CreateSubtask(ctx, parent.ID, kid); err != nil {
		t.Fatal(err)
	}
	// The answer was lost; meanwhile the parent is terminated.
	if _, err := s.TerminateTask(ctx, parent.ID, "operator"); err != nil {
		t.Fatal(err)
	}
	again, err := s.CreateSubtask(ctx, parent.ID, kid)
	if err != nil {
		t.Fatalf("retry of a committed subtask after its parent closed: %v (the subtask exists)", err)
	}
	if again.ID != kid.ID || again.Status != statestore.StatusTerminated {
		t.Fatalf("retry returned %s (%s), want the existing terminated subtask %s", again.ID, again.Status, kid.ID)
	}
	other := kid
	other.Action = "prepare_node"
	if _, err := s.CreateSubtask(ctx, parent.ID, other); !errors.Is(err, statestore.ErrConflict) {
		t.Fatalf("other content under the id: %v, want ErrConflict", err)
	}
	// A subtask that was never created is still refused by the closed parent.
	if _, err := s.CreateSubtask(ctx, parent.ID, statestore.NewTask{ID: uuid.New(), Action: "deploy_node"}); !errors.Is(err, statestore.ErrParentClosed) {
		t.Fatalf("new subtask under a terminated parent: %v, want ErrParentClosed", err)
	}
	if n := count(t, pool, "SELECT count(*) FROM tasks"); n != 2 {
		t.Fatalf("%d tasks, want 2", n)
	}
}

// resetCounter is a slog handler counting the failover-aware store's pool
// resets (each is logged once).
type resetCounter struct {
	mu sync.Mutex
	n  int
}

func (c *resetCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *resetCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "resetting the store's pool") {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
	}
	return nil
}
func (c *resetCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *resetCounter) WithGroup(string) slog.Handler      { return c }
func (c *resetCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// On a healthy primary, a failover-aware store must not reset its pool for
// errors that are the caller's or the workload's, not a failover: a call
// made with a context already cancelled, a call whose deadline runs out
// while it waits for a free pool connection, a call whose deadline runs
// out while it waits for a row lock, and a server-side statement timeout.
// A reset closes every idle connection of the pool, so a workload with
// one such call a second would reconnect the whole pool every second.
func TestBreakFailoverAwareNoResetWithoutFailover(t *testing.T) {
	ctx := ctxTimeout(t, 2*time.Minute)
	d := statetest.New(t)
	cfg, err := pgxpool.ParseConfig(d.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 4
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = "0"
	statestore.ConfigureForFailover(cfg)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	plain := statestore.New(pool, statestore.Options{Logger: quietLogger, DisableListen: true, DisableNotify: true})
	t.Cleanup(plain.Close)
	var task *statestore.Task
	// holdRow keeps task's row locked until the returned func runs.
	holdRow := func() func() {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "SELECT 1 FROM tasks WHERE task_id = $1 FOR UPDATE", task.ID); err != nil {
			t.Fatal(err)
		}
		return func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }
	}
	update := func(s *statestore.Store, ctx context.Context) error {
		r := 1
		_, err := s.UpdateTask(ctx, task.ID, task.Version, statestore.TaskUpdate{Retry: &r})
		return err
	}
	for _, c := range []struct {
		name string
		call func(s *statestore.Store) error
	}{
		{"context cancelled before the call", func(s *statestore.Store) error {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			return update(s, cctx)
		}},
		{"deadline while waiting for a pool connection", func(s *statestore.Store) error {
			var held []*pgxpool.Conn
			for i := int32(0); i < cfg.MaxConns; i++ {
				c, err := pool.Acquire(ctx)
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, c)
			}
			defer func() {
				for _, c := range held {
					c.Release()
				}
			}()
			dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			return update(s, dctx)
		}},
		{"deadline while waiting for a row lock", func(s *statestore.Store) error {
			release := holdRow()
			defer release()
			dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			return update(s, dctx)
		}},
		{"statement timeout while waiting for a row lock", func(s *statestore.Store) error {
			release := holdRow()
			defer release()
			return s.InTx(ctx, func(ctx context.Context, tx *statestore.Store) error {
				if err := tx.ExecForTest(ctx, "SET LOCAL statement_timeout = 300"); err != nil {
					return err
				}
				return update(tx, ctx)
			})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// A task of its own: a timed-out update may still commit later (its
			// backend waits for the lock after the client has gone).
			var err error
			if task, err = plain.CreateTask(ctx, statestore.NewTask{Action: "deploy_node"}); err != nil {
				t.Fatal(err)
			}
			rc := &resetCounter{}
			s := statestore.New(pool, statestore.Options{Logger: slog.New(rc), DisableListen: true,
				DisableNotify: true, FailoverAware: true})
			defer s.Close()
			if err := c.call(s); err == nil {
				t.Fatal("the call succeeded; the test needs it to fail")
			} else {
				t.Logf("the call failed as intended: %v", err)
			}
			if n := rc.count(); n != 0 {
				t.Fatalf("%d pool resets on a healthy primary, want 0", n)
			}
			if _, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_node"}); err != nil {
				t.Fatalf("the store after the failed call: %v", err)
			}
		})
	}
}

// A call that never reached the server — its context was cancelled before
// it started, or its deadline ran out while it waited for a free pool
// connection — must not be reported as ErrOutcomeUnknown: nothing was sent,
// so nothing was written, and the caller need not retry or read back.
func TestBreakOutcomeUnknownNotForCallsNeverSent(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	d := statetest.New(t)
	cfg, err := pgxpool.ParseConfig(d.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := statestore.New(pool, statestore.Options{Logger: quietLogger, DisableListen: true, DisableNotify: true})
	t.Cleanup(s.Close)
	parent, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_nodes"})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for _, c := range []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"create", func(ctx context.Context) error {
			_, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_node"})
			return err
		}},
		{"create subtask (transaction)", func(ctx context.Context) error {
			_, err := s.CreateSubtask(ctx, parent.ID, statestore.NewTask{Action: "deploy_node"})
			return err
		}},
		{"append with a client id (transaction)", func(ctx context.Context) error {
			_, err := s.AppendMessage(ctx, parent.ID, statestore.NewMessage{Message: "m", ClientID: "c1"})
			return err
		}},
		{"append", func(ctx context.Context) error {
			_, err := s.AppendMessage(ctx, parent.ID, statestore.NewMessage{Message: "m"})
			return err
		}},
	} {
		t.Run(c.name+", context cancelled before", func(t *testing.T) {
			err := c.call(cctx)
			if err == nil || errors.Is(err, statestore.ErrOutcomeUnknown) || !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v, want context.Canceled and not ErrOutcomeUnknown", err)
			}
		})
		t.Run(c.name+", deadline waiting for a pool connection", func(t *testing.T) {
			held, err := pool.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer held.Release()
			dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			err = c.call(dctx)
			if err == nil || errors.Is(err, statestore.ErrOutcomeUnknown) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v, want context.DeadlineExceeded and not ErrOutcomeUnknown", err)
			}
		})
	}
	if n := count(t, pool, "SELECT count(*) FROM tasks"); n != 1 {
		t.Fatalf("%d tasks, want 1", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM result_message"); n != 0 {
		t.Fatalf("%d messages, want 0", n)
	}
}

// The other side of TestBreakFailoverAwareNoResetWithoutFailover: a
// statement that times out on a server that is no longer a durable primary
// (here: every session read-only, as on a demoted server) still resets the
// pool; the same timeout on a writable primary does not.
func TestBreakFailoverAwareTimeoutResetsOnlyIfServerNotPrimary(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	d := statetest.New(t)
	for _, c := range []struct {
		name     string
		readOnly string
		resets   int
	}{
		{"writable primary", "off", 0},
		{"read-only server", "on", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := pgxpool.ParseConfig(d.URL)
			if err != nil {
				t.Fatal(err)
			}
			cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = c.readOnly
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			rc := &resetCounter{}
			s := statestore.New(pool, statestore.Options{Logger: slog.New(rc), DisableListen: true,
				DisableNotify: true, FailoverAware: true})
			defer s.Close()
			dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			if err := s.ExecForTest(dctx, "SELECT pg_sleep(30)"); err == nil {
				t.Fatal("the slow statement did not time out")
			}
			if n := rc.count(); n != c.resets {
				t.Fatalf("%d pool resets, want %d", n, c.resets)
			}
		})
	}
}

// CompleteTasks' retry rule ("already complete under that attempt with the
// same result status counts as applied") must never let a stale claim pass:
// one batch with a live claim, a claim completed before (the retry), a
// claim requeued and then re-claimed and completed by another worker with
// the same result status, and a claim whose task recovery terminated.
// Only the first two are returned; the error names the other two as
// ErrStaleAttempt, and nothing of theirs is written.
func TestBreakCompleteRetryMixedBatchNeverPassesStaleClaims(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	s, _ := newStore(t, statestore.Options{})
	claimOne := func(claimer string) *statestore.Task {
		t.Helper()
		got, err := s.ClaimTasks(ctx, claimer, 1)
		if err != nil || len(got) != 1 {
			t.Fatalf("claim by %s: %v, %v", claimer, got, err)
		}
		return got[0]
	}
	for i := 0; i < 4; i++ {
		if _, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_node"}); err != nil {
			t.Fatal(err)
		}
	}
	live := claimOne("w-live")
	done := claimOne("w-done")
	if _, err := s.CompleteTasks(ctx, statestore.ResultSuccess, done.Claim()); err != nil {
		t.Fatal(err)
	}
	stale := claimOne("w-gone")
	if _, err := s.RequeueTasksOfClaimer(ctx, "w-gone"); err != nil {
		t.Fatal(err)
	}
	reclaimed := claimOne("w-new")
	if reclaimed.ID != stale.ID || reclaimed.Attempt != stale.Attempt+1 {
		t.Fatalf("re-claim got %s attempt %d, want %s attempt %d", reclaimed.ID, reclaimed.Attempt, stale.ID, stale.Attempt+1)
	}
	if _, err := s.CompleteTasks(ctx, statestore.ResultSuccess, reclaimed.Claim()); err != nil {
		t.Fatal(err)
	}
	ended := claimOne("w-ended")
	if _, err := s.TerminateTask(ctx, ended.ID, "operator"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RequeueTasksOfClaimer(ctx, "w-ended"); err != nil { // terminating -> terminated
		t.Fatal(err)
	}
	before := map[uuid.UUID]*statestore.Task{}
	for _, id := range []uuid.UUID{done.ID, stale.ID, ended.ID} {
		tk, err := s.GetTask(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		before[id] = tk
	}
	got, err := s.CompleteTasks(ctx, statestore.ResultSuccess, stale.Claim(), live.Claim(), ended.Claim(), done.Claim())
	var notLive *statestore.ClaimsNotLiveError
	if !errors.As(err, &notLive) || !errors.Is(err, statestore.ErrStaleAttempt) {
		t.Fatalf("mixed batch: %v, want a ClaimsNotLiveError wrapping ErrStaleAttempt", err)
	}
	if len(notLive.Claims) != 2 || notLive.Claims[0] != stale.Claim() || notLive.Claims[1] != ended.Claim() {
		t.Fatalf("claims not applied: %+v, want the stale and the ended one", notLive.Claims)
	}
	ids := map[uuid.UUID]bool{}
	for _, tk := range got {
		ids[tk.ID] = true
	}
	if len(got) != 2 || !ids[live.ID] || !ids[done.ID] {
		t.Fatalf("returned %d tasks (%v), want the live and the already completed one", len(got), ids)
	}
	for id, b := range before {
		a, err := s.GetTask(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if a.Version != b.Version || a.Status != b.Status || a.Attempt != b.Attempt {
			t.Fatalf("task %s written by the batch: v%d %s attempt %d, was v%d %s attempt %d",
				id, a.Version, a.Status, a.Attempt, b.Version, b.Status, b.Attempt)
		}
	}
	// The retry with another result status is no retry.
	if _, err := s.CompleteTasks(ctx, statestore.ResultFailure, done.Claim()); !errors.Is(err, statestore.ErrStaleAttempt) {
		t.Fatalf("retry with another result status: %v, want ErrStaleAttempt", err)
	}
}

// CreateTask's retry compares the JSON fields by value: the same value
// spelled differently (key order, spacing, 1e2 for 100, 1.50 for 1.5) is a
// retry; a different number is a conflict even where float64 cannot tell
// the two apart (integers beyond 2^53, as ids in a node filter may be).
func TestBreakCreateRetryComparesJSONNumbersExactly(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	s, pool := newStore(t, statestore.Options{})
	nt := statestore.NewTask{ID: uuid.New(), Action: "deploy_node",
		NodeFilter: json.RawMessage(`{"rack": 9007199254740993, "size": 100, "w": 1.50}`)}
	if _, err := s.CreateTask(ctx, nt); err != nil {
		t.Fatal(err)
	}
	same := nt
	same.NodeFilter = json.RawMessage(`{"w":1.5,"size":1e2,"rack":9007199254740993}`)
	if _, err := s.CreateTask(ctx, same); err != nil {
		t.Fatalf("retry with the same values spelled differently: %v", err)
	}
	other := nt
	other.NodeFilter = json.RawMessage(`{"rack": 9007199254740992, "size": 100, "w": 1.50}`)
	if _, err := s.CreateTask(ctx, other); !errors.Is(err, statestore.ErrConflict) {
		t.Fatalf("retry with another rack number: %v, want ErrConflict", err)
	}
	str := nt
	str.NodeFilter = json.RawMessage(`{"rack": 9007199254740993, "size": "100", "w": 1.50}`)
	if _, err := s.CreateTask(ctx, str); !errors.Is(err, statestore.ErrConflict) {
		t.Fatalf("retry with a string where the number was: %v, want ErrConflict", err)
	}
	if n := count(t, pool, "SELECT count(*) FROM tasks"); n != 1 {
		t.Fatalf("%d tasks, want 1", n)
	}
}

// A call that runs in the store's own transaction and loses its connection
// before COMMIT was sent wrote nothing (the server aborts a transaction
// whose client is gone): that is not ErrOutcomeUnknown. Here an append with
// a client id (lock, look up, append, commit) is cut while its first
// statement waits for the task's row lock.
func TestBreakOutcomeKnownWhenCutBeforeCommit(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	d := statetest.New(t)
	proxy, via := proxyFor(t, d.URL)
	pool, err := pgxpool.New(ctx, via)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := statestore.New(pool, statestore.Options{Logger: quietLogger, DisableListen: true, DisableNotify: true})
	t.Cleanup(s.Close)
	direct, err := pgxpool.New(ctx, d.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	task, err := statestore.New(direct, statestore.Options{DisableListen: true, DisableNotify: true}).
		CreateTask(ctx, statestore.NewTask{Action: "deploy_node"})
	if err != nil {
		t.Fatal(err)
	}
	blocker, err := direct.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback(context.WithoutCancel(ctx))
	if _, err := blocker.Exec(ctx, "SELECT 1 FROM tasks WHERE task_id = $1 FOR UPDATE", task.ID); err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, 1)
	go func() {
		_, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "m", ClientID: "c1"})
		failed <- err
	}()
	waitForLockWaiter(t, direct)
	proxy.CutAll()
	err = <-failed
	if err == nil {
		t.Fatal("the append succeeded through a cut connection")
	}
	if errors.Is(err, statestore.ErrOutcomeUnknown) {
		t.Fatalf("cut before COMMIT: %v, want a known outcome (nothing written), not ErrOutcomeUnknown", err)
	}
	if err := blocker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, direct, "SELECT count(*) FROM result_message"); n != 0 {
		t.Fatalf("%d messages after a call cut before its commit, want 0", n)
	}
}

// ConfigureForFailover with a role lacking pg_monitor: the role cannot see
// the primary's synchronous standby, so the primary is refused — and the
// error must say why (the role), not send the operator looking for a
// dead standby. Granted pg_monitor, the same role connects.
func TestHABreakRoleWithoutPgMonitorIsToldSo(t *testing.T) {
	ctx := ctxTimeout(t, 3*time.Minute)
	p := startPair(t, ctx)
	admin, err := pgx.Connect(ctx, p.Primary.URL(haDatabase))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if _, err := admin.Exec(ctx, "CREATE ROLE statemgmt_nomonitor LOGIN"); err != nil {
		t.Fatal(err)
	}
	connect := func() error {
		cfg, err := pgxpool.ParseConfig(p.URL(haDatabase))
		if err != nil {
			t.Fatal(err)
		}
		cfg.ConnConfig.User = "statemgmt_nomonitor"
		statestore.ConfigureForFailover(cfg)
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return pool.Ping(cctx)
	}
	err = connect()
	if !errors.Is(err, statestore.ErrNotPrimary) || !strings.Contains(err.Error(), "pg_monitor") {
		t.Fatalf("role without pg_monitor: %v, want ErrNotPrimary naming pg_monitor", err)
	}
	if _, err := admin.Exec(ctx, "GRANT pg_monitor TO statemgmt_nomonitor"); err != nil {
		t.Fatal(err)
	}
	if err := connect(); err != nil {
		t.Fatalf("the same role with pg_monitor: %v", err)
	}
}

// The answer to a COMMIT is lost: the server committed, the client saw
// its connection die. Each idempotent call must then say ErrOutcomeUnknown
// (COMMIT was sent), and its retry must return what was committed, writing
// nothing more. A deferred trigger holds the commit on an advisory lock the
// test owns; the test cuts the connection, then lets the commit finish.
func TestBreakRetryAfterCommitWhoseAnswerWasLost(t *testing.T) {
	ctx := ctxTimeout(t, 2*time.Minute)
	d := statetest.New(t)
	proxy, via := proxyFor(t, d.URL)
	pool, err := pgxpool.New(ctx, via)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := statestore.New(pool, statestore.Options{Logger: quietLogger, DisableListen: true, DisableNotify: true})
	t.Cleanup(s.Close)
	direct, err := pgxpool.New(ctx, d.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	ds := statestore.New(direct, statestore.Options{Logger: quietLogger, DisableListen: true, DisableNotify: true})
	t.Cleanup(ds.Close)
	task, err := ds.CreateTask(ctx, statestore.NewTask{Action: "deploy_node"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ds.CreateTask(ctx, statestore.NewTask{Action: "prepare_node"}); err != nil {
		t.Fatal(err)
	}
	claimed, err := ds.ClaimTasks(ctx, "w1", 1, "prepare_node")
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v, %v", claimed, err)
	}
	for _, stmt := range []string{
		`CREATE FUNCTION hold_commit() RETURNS trigger LANGUAGE plpgsql AS
		 $$BEGIN PERFORM pg_advisory_xact_lock(727274); RETURN NULL; END$$`,
		`CREATE CONSTRAINT TRIGGER hold_commit AFTER INSERT OR UPDATE ON tasks
		 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hold_commit()`,
		`CREATE CONSTRAINT TRIGGER hold_commit AFTER INSERT ON result_message
		 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hold_commit()`,
	} {
		if _, err := direct.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	newID := uuid.New()
	for _, c := range []struct {
		name string
		call func(ctx context.Context) (string, error) // a fingerprint of the answer
		rows string                                    // counts what the call writes
	}{
		{"CreateTask with an id", func(ctx context.Context) (string, error) {
			tk, err := s.CreateTask(ctx, statestore.NewTask{ID: newID, Action: "deploy_node"})
			if err != nil {
				return "", err
			}
			return tk.ID.String(), nil
		}, "SELECT count(*) FROM tasks"},
		{"AppendMessage with a client id", func(ctx context.Context) (string, error) {
			m, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "m", ClientID: "c1"})
			if err != nil {
				return "", err
			}
			return m.ClientID + "@" + strconv.FormatInt(m.Sequence, 10), nil
		}, "SELECT count(*) FROM result_message"},
		{"CompleteTasks", func(ctx context.Context) (string, error) {
			done, err := s.CompleteTasks(ctx, statestore.ResultSuccess, claimed[0].Claim())
			if err != nil {
				return "", err
			}
			return done[0].ID.String() + " " + string(done[0].Status), nil
		}, "SELECT count(*) FROM tasks WHERE status = 'complete'"},
	} {
		t.Run(c.name, func(t *testing.T) {
			lock, err := direct.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer lock.Release()
			if _, err := lock.Exec(ctx, "SELECT pg_advisory_lock(727274)"); err != nil {
				t.Fatal(err)
			}
			before := count(t, direct, c.rows)
			first := make(chan error, 1)
			go func() {
				_, err := c.call(ctx)
				first <- err
			}()
			waitForLockWaiter(t, direct) // the commit waits in the trigger
			proxy.CutAll()
			err = <-first
			if _, uerr := lock.Exec(ctx, "SELECT pg_advisory_unlock(727274)"); uerr != nil {
				t.Fatal(uerr)
			}
			if !errors.Is(err, statestore.ErrOutcomeUnknown) {
				t.Fatalf("first call, cut while committing: %v, want ErrOutcomeUnknown", err)
			}
			var got string
			retryUntil(t, ctx, "the retry", func(ctx context.Context) (err error) {
				got, err = c.call(ctx)
				return err
			})
			again, err := c.call(ctx)
			if err != nil || again != got {
				t.Fatalf("second retry: %q, %v; want %q", again, err, got)
			}
			if n := count(t, direct, c.rows); n != before+1 {
				t.Fatalf("%d rows after the cut call and two retries, want %d (exactly one write); answer %q", n, before+1, got)
			}
		})
	}
}

// Client message ids are scoped to their task, a batch naming one twice is
// refused before anything is written, and a retried batch returns the
// stored messages with their first sequence numbers, in the caller's order,
// leaving no gap in the numbering for the next new message.
func TestBreakAppendClientIDScopeAndBatch(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	s, pool := newStore(t, statestore.Options{})
	a, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_node"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_node"})
	if err != nil {
		t.Fatal(err)
	}
	m1 := statestore.NewMessage{Message: "one", ClientID: "c1"}
	m2 := statestore.NewMessage{Message: "two", ClientID: "c2"}
	first, err := s.AppendMessages(ctx, a.ID, m1, m2)
	if err != nil {
		t.Fatal(err)
	}
	onB, err := s.AppendMessage(ctx, b.ID, m1)
	if err != nil || onB.TaskID != b.ID || onB.Sequence != 1 {
		t.Fatalf("same client id on another task: %+v, %v; want its own message 1", onB, err)
	}
	_, err = s.AppendMessages(ctx, a.ID, statestore.NewMessage{Message: "x", ClientID: "c9"},
		statestore.NewMessage{Message: "x", ClientID: "c9"})
	wantInvalid(t, err, "messages[1].ClientID")
	// The retry, reordered, with one new message in between.
	m3 := statestore.NewMessage{Message: "three", ClientID: "c3"}
	again, err := s.AppendMessages(ctx, a.ID, m2, m3, m1)
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Sequence != first[1].Sequence || again[2].Sequence != first[0].Sequence || again[1].Sequence != 3 ||
		again[1].Message != "three" || again[0].Message != "two" {
		t.Fatalf("reordered retry: %+v; want two as %d, three as 3, one as %d", again, first[1].Sequence, first[0].Sequence)
	}
	next, err := s.AppendMessage(ctx, a.ID, statestore.NewMessage{Message: "four"})
	if err != nil || next.Sequence != 4 {
		t.Fatalf("next message: %+v, %v; want sequence 4", next, err)
	}
	if n := count(t, pool, "SELECT count(*) FROM result_message"); n != 5 {
		t.Fatalf("%d messages, want 5 (4 on a, 1 on b)", n)
	}
}
