package statestore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/internal/hapg"
	"github.com/drydock-go/statemgmt/internal/pgbouncertest"
	"github.com/drydock-go/statemgmt/statestore"
)

// The deterministic failover tests: a primary with a synchronous streaming
// standby (internal/hapg), the primary's process group killed with SIGKILL,
// the standby promoted by the test. They run in `make test` and `make
// test-ha`; docs/ha.md says what each proves.

const haDatabase = "statemgmt_ha"

// startPair starts a pair, creates and migrates the store's database on it.
func startPair(t *testing.T, ctx context.Context) *hapg.Pair {
	t.Helper()
	if viaPgBouncer {
		t.Skip("the failover tests start their own servers; the PgBouncer pass adds nothing")
	}
	p, err := hapg.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("servers' log:\n%s", p.LogTail(40))
		}
		p.Close()
	})
	createAndMigrate(t, ctx, p.Primary.URL("postgres"), p.Primary.URL(haDatabase))
	return p
}

// createAndMigrate creates haDatabase through adminURL and migrates it.
func createAndMigrate(t *testing.T, ctx context.Context, adminURL, dbURL string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+haDatabase); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	conn, err = pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := statestore.Migrate(ctx, conn, quietLogger); err != nil {
		t.Fatal(err)
	}
}

// haPool opens a pool on the pair's multi-host URL, failover-aware unless
// plain is set.
func haPool(t *testing.T, ctx context.Context, p *hapg.Pair, plain bool) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(p.URL(haDatabase))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 8
	if !plain {
		statestore.ConfigureForFailover(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// retryUntil calls fn until it succeeds or a minute has passed.
func retryUntil(t *testing.T, ctx context.Context, what string, fn func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := fn(cctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after a minute: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ledger records every call that returned success.
type ledger struct {
	mu        sync.Mutex
	created   map[uuid.UUID]bool
	messages  map[string]int64 // "task/client id" → sequence
	completed map[uuid.UUID]int64
}

func (l *ledger) add(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f()
}

// Kill -9 the primary while a producer creates tasks, 4 workers claim
// (fenced), append and complete, and the leader requeues (fenced): after
// the standby is promoted, every task, message and completion whose call
// returned success before (or after) the kill is on the new primary; the
// same store and elector resume without a restart; a new leader runs with
// a higher term; the old term's fenced writes are refused there.
func TestHAKillPrimaryKeepsAcknowledgedWrites(t *testing.T) {
	ctx := ctxTimeout(t, 4*time.Minute)
	p := startPair(t, ctx)
	failoverUnderLoad(t, ctx, p.URL(haDatabase), func() error {
		if err := p.Primary.Kill(); err != nil {
			return err
		}
		return p.Promote(ctx)
	}, p.Standby.URL(haDatabase))
}

// TestHAAutoFailoverKillPrimaryKeepsAcknowledgedWrites is the same on a
// pg_auto_failover formation (tuned timing): the monitor, not the test,
// decides to promote node2 after node1's host dies (make test-ha).
func TestHAAutoFailoverKillPrimaryKeepsAcknowledgedWrites(t *testing.T) {
	if os.Getenv("STATEMGMT_TEST_HA") == "" {
		t.Skip("pg_auto_failover formation: make test-ha (STATEMGMT_TEST_HA=1)")
	}
	if viaPgBouncer {
		t.Skip("starts its own servers")
	}
	ctx := ctxTimeout(t, 5*time.Minute)
	f, err := hapg.StartFormation(ctx, hapg.TunedTiming)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("formation log:\n%s", f.LogTail(60))
		}
		f.Close()
	})
	createAndMigrate(t, ctx, f.Nodes[0].NodeURL("postgres"), f.Nodes[0].NodeURL(haDatabase))
	failoverUnderLoad(t, ctx, f.URL(haDatabase), f.Nodes[0].Kill, f.Nodes[1].NodeURL(haDatabase))
}

// failoverUnderLoad runs the workload on url, calls failover once 100
// tasks are complete, and checks every acknowledged write on newPrimary.
func failoverUnderLoad(t *testing.T, ctx context.Context, url string, failover func() error, newPrimary string) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 8
	statestore.ConfigureForFailover(cfg)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := statestore.New(pool, statestore.Options{Logger: quietLogger, FailoverAware: true,
		PollInterval: 100 * time.Millisecond})
	t.Cleanup(store.Close)
	elector, err := statestore.NewElector(statestore.ElectorConfig{ConnString: url,
		FailoverAware: true, CheckInterval: 200 * time.Millisecond, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(elector.Close)

	l := &ledger{created: map[uuid.UUID]bool{}, messages: map[string]int64{}, completed: map[uuid.UUID]int64{}}
	var term atomic.Int64
	var requeues atomic.Int64
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = elector.Run(runCtx, func(ctx context.Context, tm int64) error {
			term.Store(tm)
			leader := store.AsLeader(tm)
			for ctx.Err() == nil {
				if _, err := leader.RequeueStaleTasks(ctx, time.Now().Add(-time.Hour)); err == nil {
					requeues.Add(1)
				} else if errors.Is(err, statestore.ErrNotLeader) {
					return err
				}
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
			return nil
		})
	}()
	wg.Add(1)
	go func() { // the producer
		defer wg.Done()
		for runCtx.Err() == nil {
			id := uuid.New()
			cctx, cancel := context.WithTimeout(runCtx, 2*time.Second)
			_, err := store.CreateTask(cctx, statestore.NewTask{ID: id, Action: "deploy_node", CreatedBy: "producer"})
			cancel()
			if err == nil {
				l.add(func() { l.created[id] = true })
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	for w := 0; w < 4; w++ {
		w := w
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker := fmt.Sprintf("worker-%d", w)
			for runCtx.Err() == nil {
				tm := term.Load()
				if tm == 0 {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				cctx, cancel := context.WithTimeout(runCtx, 2*time.Second)
				tasks, err := store.AsLeader(tm).ClaimTasks(cctx, worker, 2, "deploy_node")
				if err != nil || len(tasks) == 0 {
					cancel()
					time.Sleep(10 * time.Millisecond)
					continue
				}
				for _, task := range tasks {
					msg := statestore.NewMessage{Message: "deployed by " + worker, ClientID: fmt.Sprintf("%s-%d", worker, task.Attempt)}
					if m, err := store.AppendMessage(cctx, task.ID, msg); err == nil {
						l.add(func() { l.messages[task.ID.String()+"/"+msg.ClientID] = m.Sequence })
					}
					if _, err := store.CompleteTasks(cctx, statestore.ResultSuccess, task.Claim()); err == nil {
						l.add(func() { l.completed[task.ID] = task.Attempt })
					}
				}
				cancel()
			}
		}()
	}
	progress := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.completed)
	}
	waitFor(t, "100 completions before the kill", func() bool { return progress() >= 100 && requeues.Load() > 0 })
	oldTerm := term.Load()

	killed := time.Now()
	if err := failover(); err != nil {
		t.Fatal(err)
	}
	atPromotion := progress()
	// The same store and elector, no restart: work resumes on the new primary.
	waitFor(t, "a new leader with a higher term", func() bool { tm, ok := elector.Leading(); return ok && tm > oldTerm })
	waitFor(t, "100 completions on the new primary", func() bool { return progress() >= atPromotion+100 })
	resumed := time.Now()
	stop()
	wg.Wait()

	// The old term's fenced writes are refused on the new primary.
	if _, err := store.AsLeader(oldTerm).RequeueStaleTasks(ctx, time.Now()); !errors.Is(err, statestore.ErrNotLeader) {
		t.Fatalf("old term %d's fenced write on the new primary: %v, want ErrNotLeader", oldTerm, err)
	}
	// Every acknowledged write is on the new primary.
	check, err := pgx.Connect(ctx, newPrimary)
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	for id := range l.created {
		var n int
		if err := check.QueryRow(ctx, "SELECT count(*) FROM tasks WHERE task_id = $1", id).Scan(&n); err != nil || n != 1 {
			t.Fatalf("acknowledged task %s: %d rows on the new primary (%v)", id, n, err)
		}
	}
	for key, seq := range l.messages {
		id, clientID := uuid.MustParse(key[:36]), key[37:]
		var got int64
		if err := check.QueryRow(ctx, "SELECT sequence FROM result_message WHERE task_id = $1 AND client_message_id = $2",
			id, clientID).Scan(&got); err != nil || got != seq {
			t.Fatalf("acknowledged message %s: sequence %d on the new primary (%v), want %d", key, got, err, seq)
		}
	}
	for id, attempt := range l.completed {
		var status string
		var got int64
		if err := check.QueryRow(ctx, "SELECT status, attempt FROM tasks WHERE task_id = $1", id).Scan(&status, &got); err != nil ||
			status != "complete" || got != attempt {
			t.Fatalf("acknowledged completion of %s attempt %d: %s attempt %d on the new primary (%v)", id, attempt, status, got, err)
		}
	}
	t.Logf("acknowledged before and after the kill, all present: %d tasks, %d messages, %d completions; terms %d → %d; "+
		"kill → new leader and 100 more completions: %v", len(l.created), len(l.messages), len(l.completed), oldTerm,
		term.Load(), resumed.Sub(killed).Round(10*time.Millisecond))
}

// waitFor polls cond until it holds, failing the test after two minutes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// On a promoted standby, the old term's fenced writes are refused at once,
// before any candidate has campaigned there: the term was elected on the
// old primary's WAL timeline and the promotion started a new one.
func TestHAPromotedStandbyRefusesOldTermBeforeAnyElection(t *testing.T) {
	ctx := ctxTimeout(t, 3*time.Minute)
	p := startPair(t, ctx)
	elector, err := statestore.NewElector(statestore.ElectorConfig{ConnString: p.Primary.URL(haDatabase), Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer elector.Close()
	term, ok, err := elector.Claim(ctx)
	if err != nil || !ok {
		t.Fatalf("claim: %d %v %v", term, ok, err)
	}
	pool := haPool(t, ctx, p, false)
	store := statestore.New(pool, statestore.Options{Logger: quietLogger, FailoverAware: true})
	defer store.Close()
	if _, err := store.AsLeader(term).RequeueStaleTasks(ctx, time.Now()); err != nil {
		t.Fatalf("fenced write of the current term before the kill: %v", err)
	}
	if err := p.Primary.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := p.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	var fenced error
	retryUntil(t, ctx, "a fenced call reaching the new primary", func(ctx context.Context) error {
		_, fenced = store.AsLeader(term).RequeueStaleTasks(ctx, time.Now())
		if fenced != nil && !errors.Is(fenced, statestore.ErrNotLeader) {
			return fenced // not there yet
		}
		return nil
	})
	if !errors.Is(fenced, statestore.ErrNotLeader) {
		t.Fatalf("old term %d's fenced write on the promoted standby, nobody elected there: %v, want ErrNotLeader", term, fenced)
	}
	leader, err := store.Leader(ctx)
	if err != nil || leader.Term != term {
		t.Fatalf("leader row on the new primary: %+v %v, want term %d still recorded (nobody campaigned)", leader, err, term)
	}
}

// A zombie old primary — killed, its standby promoted, then started again
// read-write, first in the connection string — never receives an
// acknowledged write: a failover-aware pool (and elector) opened after it
// came back sends every write to the new primary.
func TestHAZombieOldPrimaryGetsNoAcknowledgedWrite(t *testing.T) {
	ctx := ctxTimeout(t, 3*time.Minute)
	p := startPair(t, ctx)
	if err := p.Primary.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := p.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.RestartAsZombie(ctx); err != nil {
		t.Fatal(err)
	}
	pool := haPool(t, ctx, p, false)
	store := statestore.New(pool, statestore.Options{Logger: quietLogger, FailoverAware: true})
	defer store.Close()
	var ids []uuid.UUID
	for i := 0; i < 50; i++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		task, err := store.CreateTask(cctx, statestore.NewTask{Action: "deploy_node"})
		cancel()
		if err != nil {
			t.Fatalf("write %d with the zombie first in the URL: %v", i, err)
		}
		ids = append(ids, task.ID)
	}
	elector, err := statestore.NewElector(statestore.ElectorConfig{ConnString: p.URL(haDatabase),
		FailoverAware: true, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer elector.Close()
	term, ok, err := elector.Claim(ctx)
	if err != nil || !ok {
		t.Fatalf("claim with the zombie first in the URL: %d %v %v", term, ok, err)
	}
	if _, err := store.AsLeader(term).ClaimTasks(ctx, "w", 1); err != nil {
		t.Fatalf("fenced claim of the new term: %v", err)
	}
	for _, n := range []struct {
		node *hapg.Node
		want int
	}{{p.Standby, len(ids)}, {p.Primary, 0}} {
		conn, err := pgx.Connect(ctx, n.node.URL(haDatabase))
		if err != nil {
			t.Fatal(err)
		}
		var got, leaders int
		err = conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM tasks WHERE task_id = ANY($1)), (SELECT count(*) FROM active_instance)",
			ids).Scan(&got, &leaders)
		conn.Close(ctx)
		if err != nil || got != n.want || leaders != n.want/len(ids) {
			t.Fatalf("%s: %d of the acknowledged tasks and %d leaders (%v), want %d and %d",
				n.node.Name, got, leaders, err, n.want, n.want/len(ids))
		}
	}
}

// A server turned read-only under the pool (demoted in place while the
// standby is promoted: a switchover) is left at once: the first write that
// fails with SQLSTATE 25006 resets the pool and the next write reaches the
// new primary. Without FailoverAware the pool's connections stay on the
// read-only server.
func TestHAPoolLeavesServerTurnedReadOnly(t *testing.T) {
	ctx := ctxTimeout(t, 3*time.Minute)
	p := startPair(t, ctx)
	pool := haPool(t, ctx, p, false)
	store := statestore.New(pool, statestore.Options{Logger: quietLogger, FailoverAware: true})
	defer store.Close()
	if _, err := store.CreateTask(ctx, statestore.NewTask{Action: "deploy_node"}); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, p.Primary.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "ALTER SYSTEM SET default_transaction_read_only = on"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	if err := p.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	failures := 0
	for i := 0; i < 10; i++ {
		_, err := store.CreateTask(ctx, statestore.NewTask{Action: "deploy_node"})
		if err == nil {
			break
		}
		failures++
	}
	if failures > 1 {
		t.Fatalf("%d writes failed after the switchover, want at most the first", failures)
	}
	for i := 0; i < 10; i++ {
		if _, err := store.CreateTask(ctx, statestore.NewTask{Action: "deploy_node"}); err != nil {
			t.Fatalf("write %d after the pool moved: %v", i, err)
		}
	}
}

// The standby dies. Policy (docs/ha.md): a durable write needs the
// synchronous standby, so writes wait and fail — never succeed without the
// replica. A write already sent waits until its context ends and fails
// (its outcome unknown: PostgreSQL keeps a commit whose wait was cancelled);
// new connections are refused (ErrNotPrimary). When the standby is back,
// retrying the same call with the same caller-chosen id returns the one
// task: nothing acknowledged was lost, nothing doubled.
func TestHAStandbyDiesWritesFailThenRetryIsExact(t *testing.T) {
	ctx := ctxTimeout(t, 3*time.Minute)
	p := startPair(t, ctx)
	pool := haPool(t, ctx, p, false)
	store := statestore.New(pool, statestore.Options{Logger: quietLogger, FailoverAware: true})
	defer store.Close()
	if _, err := store.CreateTask(ctx, statestore.NewTask{Action: "deploy_node"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Standby.Kill(); err != nil {
		t.Fatal(err)
	}
	nt := statestore.NewTask{ID: uuid.New(), Action: "deploy_node"}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := store.CreateTask(cctx, nt)
	cancel()
	if err == nil {
		t.Fatal("a write with the synchronous standby down succeeded")
	}
	fresh := haPool(t, ctx, p, false)
	freshStore := statestore.New(fresh, statestore.Options{Logger: quietLogger, FailoverAware: true})
	defer freshStore.Close()
	cctx, cancel = context.WithTimeout(ctx, 10*time.Second)
	_, err = freshStore.CreateTask(cctx, statestore.NewTask{Action: "deploy_node"})
	cancel()
	if !errors.Is(err, statestore.ErrNotPrimary) {
		t.Fatalf("new connection with the standby down: %v, want ErrNotPrimary", err)
	}
	if err := p.RestartStandby(ctx); err != nil {
		t.Fatal(err)
	}
	var task *statestore.Task
	retryUntil(t, ctx, "the retried create", func(ctx context.Context) (err error) {
		task, err = store.CreateTask(ctx, nt)
		return err
	})
	if task.ID != nt.ID || count(t, pool, "SELECT count(*) FROM tasks WHERE task_id = $1", nt.ID) != 1 {
		t.Fatalf("retried create: %v, want exactly one task %s", task, nt.ID)
	}
}

// The store's pool through PgBouncer, one per database node (each in
// front of its local server), on a multi-host URL of the two poolers: the
// role check runs through the pooler on the server behind it, so the pool
// uses the pooler of the primary, and after the primary is killed and the
// standby promoted, the same store (no restart) writes through the other
// pooler to the new primary.
func TestHAThroughPgBouncerPerNode(t *testing.T) {
	ctx := ctxTimeout(t, 3*time.Minute)
	p := startPair(t, ctx)
	var ports []int
	for _, n := range []*hapg.Node{p.Primary, p.Standby} {
		b, err := pgbouncertest.Start(ctx, n.URL("postgres"))
		if errors.Is(err, pgbouncertest.ErrNotInstalled) {
			t.Skip(err)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		ports = append(ports, b.Port)
	}
	cfg, err := pgxpool.ParseConfig(fmt.Sprintf("host=127.0.0.1,127.0.0.1 port=%d,%d user=postgres dbname=%s sslmode=disable "+
		"target_session_attrs=read-write connect_timeout=3", ports[0], ports[1], haDatabase))
	if err != nil {
		t.Fatal(err)
	}
	statestore.ConfigureForPooler(cfg)
	statestore.ConfigureForFailover(cfg)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := statestore.New(pool, statestore.Options{Logger: quietLogger, DisableListen: true, FailoverAware: true})
	defer store.Close()
	var ids []uuid.UUID
	create := func(ctx context.Context) error {
		task, err := store.CreateTask(ctx, statestore.NewTask{Action: "deploy_node"})
		if err == nil {
			ids = append(ids, task.ID)
		}
		return err
	}
	for i := 0; i < 20; i++ {
		if err := create(ctx); err != nil {
			t.Fatalf("write %d before the kill: %v", i, err)
		}
	}
	if err := p.Primary.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := p.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	retryUntil(t, ctx, "a write through the new primary's pooler", create)
	for i := 0; i < 20; i++ {
		if err := create(ctx); err != nil {
			t.Fatalf("write %d after the failover: %v", i, err)
		}
	}
	if n := count(t, pool, "SELECT count(*) FROM tasks WHERE task_id = ANY($1)", ids); n != len(ids) {
		t.Fatalf("%d of %d acknowledged tasks on the new primary", n, len(ids))
	}
}
