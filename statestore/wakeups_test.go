package statestore_test

// Wake-ups: who is woken, by what, over which connection, and what a
// waiter does when the wake-up cannot come.

import (
	"context"
	"errors"
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

// queryLog counts, per query name and argument, the statements a pool
// sends (a test's view of who asked the database what).
type queryLog struct {
	mu    sync.Mutex
	calls map[string]int // "QueryName arg" → count
	ended chan string    // query names as they finish, when non-nil
}

type queryNameKey struct{}

func newQueryLog() *queryLog { return &queryLog{calls: map[string]int{}} }

func queryName(sql string) string {
	const p = "-- name: "
	if !strings.HasPrefix(sql, p) {
		return ""
	}
	name, _, _ := strings.Cut(sql[len(p):], " ")
	return name
}

func (l *queryLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	name := queryName(d.SQL)
	if name == "" {
		return ctx
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range d.Args {
		switch v := a.(type) {
		case uuid.UUID:
			l.calls[name+" "+v.String()]++
		case string:
			l.calls[name+" "+v]++
		}
	}
	return context.WithValue(ctx, queryNameKey{}, name)
}

func (l *queryLog) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	if name, ok := ctx.Value(queryNameKey{}).(string); ok && l.ended != nil {
		select {
		case l.ended <- name:
		default:
		}
	}
}

func (l *queryLog) count(name, arg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls[name+" "+arg]
}

// stopFirst returns a context that ends when the test does, before the
// pools and stores made so far close (cleanups run last-registered first),
// so background waiters see their context end rather than a closed pool.
func stopFirst(t *testing.T, parent context.Context) context.Context {
	ctx, cancel := context.WithCancel(parent)
	t.Cleanup(cancel)
	return ctx
}

// tracedStore is a store over db whose statements log records.
func tracedStore(t *testing.T, db *statetest.Database, log *queryLog, opts statestore.Options) *statestore.Store {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = log
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := statestore.New(pool, opts)
	t.Cleanup(s.Close)
	return s
}

// listenerPID waits until a backend of db other than old LISTENs for
// message wake-ups and returns its pid.
func listenerPID(t *testing.T, ctx context.Context, admin *pgxpool.Pool, db string, old int) int {
	t.Helper()
	for {
		var pid int
		err := admin.QueryRow(ctx, `SELECT pid FROM pg_stat_activity
			WHERE datname = $1 AND pid <> pg_backend_pid() AND pid <> $2 AND query LIKE '%LISTEN statemgmt_message%'`,
			db, old).Scan(&pid)
		if err == nil {
			return pid
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no listening connection: %v", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// tailInto follows task id into a channel until the test ends.
func tailInto(t *testing.T, ctx context.Context, s *statestore.Store, id uuid.UUID) <-chan statestore.ResultMessage {
	ch := make(chan statestore.ResultMessage, 1000)
	go func() {
		err := s.TailMessages(ctx, id, 0, func(m statestore.ResultMessage) error { ch <- m; return nil })
		if ctx.Err() == nil {
			t.Errorf("tail of %s ended: %v", id, err)
		}
	}()
	return ch
}

func receive(t *testing.T, ctx context.Context, ch <-chan statestore.ResultMessage, want string) {
	t.Helper()
	for {
		select {
		case m := <-ch:
			if m.Message == want {
				return
			}
		case <-ctx.Done():
			t.Fatalf("tailer never saw %q (not woken?)", want)
		}
	}
}

// An append wakes only the tailers of its task: five idle tailers of other
// tasks run no query while 200 messages go to a sixth.
func TestAppendWakesOnlyTailersOfThatTask(t *testing.T) {
	needsListen(t)
	ctx := ctxTimeout(t, 90*time.Second)
	db := statetest.New(t)
	log := newQueryLog()
	s := tracedStore(t, db, log, statestore.Options{PollInterval: time.Hour}) // only wake-ups wake
	writer := tracedStore(t, db, newQueryLog(), statestore.Options{})         // another process's store
	admin := storePool(t, db)
	ctx = stopFirst(t, ctx)

	var ids []uuid.UUID
	for range 7 {
		task, err := writer.CreateTask(ctx, statestore.NewTask{Action: "noop"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, task.ID)
	}
	syncID, busy, idle := ids[0], ids[1], ids[2:]
	syncCh := tailInto(t, ctx, s, syncID)
	busyCh := tailInto(t, ctx, s, busy)
	listenerPID(t, ctx, admin, db.Name, 0)
	// Once the listener has delivered this, its connect-time wake-up is past.
	if _, err := writer.AppendMessage(ctx, syncID, statestore.NewMessage{Message: "ready"}); err != nil {
		t.Fatal(err)
	}
	receive(t, ctx, syncCh, "ready")
	// The idle tailers subscribe, read once, and wait.
	for _, id := range idle {
		tailInto(t, ctx, s, id)
	}
	for _, id := range idle {
		for log.count("ListResultMessages", id.String()) == 0 {
			select {
			case <-ctx.Done():
				t.Fatal("idle tailer never read")
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	before := map[uuid.UUID]int{}
	for _, id := range idle {
		before[id] = log.count("ListResultMessages", id.String())
	}

	for i := range 200 {
		if _, err := writer.AppendMessage(ctx, busy, statestore.NewMessage{Message: "m"}); err != nil {
			t.Fatal(err, i)
		}
	}
	// Wake-ups arrive in commit order: once this one is seen, so were the 200.
	if _, err := writer.AppendMessage(ctx, syncID, statestore.NewMessage{Message: "done"}); err != nil {
		t.Fatal(err)
	}
	receive(t, ctx, syncCh, "done")
	for range 200 {
		receive(t, ctx, busyCh, "m")
	}
	for _, id := range idle {
		if n := log.count("ListResultMessages", id.String()) - before[id]; n != 0 {
			t.Errorf("idle tailer of %s ran %d queries for messages to another task", id, n)
		}
	}
}

// A queued task wakes only claimers of its action (and of every action):
// a claimer of alpha runs no claim while 50 beta tasks are queued.
func TestQueuedTaskWakesOnlyClaimersOfItsAction(t *testing.T) {
	needsListen(t)
	ctx := ctxTimeout(t, 90*time.Second)
	db := statetest.New(t)
	log := newQueryLog()
	s := tracedStore(t, db, log, statestore.Options{PollInterval: time.Hour})
	writer := tracedStore(t, db, newQueryLog(), statestore.Options{})
	admin := storePool(t, db)
	ctx = stopFirst(t, ctx)

	claimed := make(chan *statestore.Task, 10)
	claimAll := make(chan *statestore.Task, 100)
	loop := func(claimer string, out chan<- *statestore.Task, n int, actions ...string) {
		for got := 0; got < n && ctx.Err() == nil; {
			tasks, err := s.ClaimTasksWait(ctx, claimer, 1, actions...)
			for _, task := range tasks {
				out <- task
				got++
			}
			if err != nil && ctx.Err() == nil {
				t.Errorf("ClaimTasksWait(%s): %v", claimer, err)
				return
			}
		}
	}
	go loop("alpha-claimer", claimed, 1000, "alpha")
	listenerPID(t, ctx, admin, db.Name, 0)
	waitClaimed := func(action string) {
		t.Helper()
		task, err := writer.CreateTask(ctx, statestore.NewTask{Action: action})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-claimed:
			if got.ID != task.ID {
				t.Fatalf("claimed %s, want %s", got.ID, task.ID)
			}
		case <-ctx.Done():
			t.Fatal("alpha task never claimed (claimer not woken?)")
		}
	}
	waitClaimed("alpha") // the listener's connect-time wake-up is past
	before := log.count("ClaimTasks", "alpha-claimer")
	go loop("any-claimer", claimAll, 50) // claims only the beta tasks to come

	for range 50 {
		if _, err := writer.CreateTask(ctx, statestore.NewTask{Action: "beta"}); err != nil {
			t.Fatal(err)
		}
	}
	// The claimer of every action is woken by beta tasks.
	for range 50 {
		select {
		case <-claimAll:
		case <-ctx.Done():
			t.Fatal("claimer of every action missed beta tasks")
		}
	}
	waitClaimed("alpha") // commit order: the 50 wake-ups are past
	// Woken once, for the alpha task: one claim that gets it and one that
	// finds nothing before waiting again, plus perhaps that same empty claim
	// after the first alpha task, if it ran after the count above.
	if n := log.count("ClaimTasks", "alpha-claimer") - before; n > 3 {
		t.Errorf("alpha claimer ran %d claims while 50 beta tasks and 1 alpha task were queued; want at most 3", n)
	}
}

// The listening connection is opened like the pool's own, through its
// BeforeConnect and AfterConnect hooks: here BeforeConnect supplies the
// address (the configured one is dead), as endpoint discovery would.
func TestListenerUsesPoolConnectHooks(t *testing.T) {
	needsListen(t)
	ctx := ctxTimeout(t, 30*time.Second)
	db := statetest.New(t)
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	host, port := cfg.ConnConfig.Host, cfg.ConnConfig.Port
	cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Fallbacks = "127.0.0.1", 1, nil // nothing listens there
	var mu sync.Mutex
	before, after := 0, 0
	cfg.BeforeConnect = func(_ context.Context, c *pgx.ConnConfig) error {
		mu.Lock()
		defer mu.Unlock()
		before++
		c.Host, c.Port, c.Fallbacks = host, port, nil
		return nil
	}
	cfg.AfterConnect = func(context.Context, *pgx.Conn) error {
		mu.Lock()
		defer mu.Unlock()
		after++
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := statestore.New(pool, statestore.Options{PollInterval: time.Hour}) // only wake-ups wake
	t.Cleanup(s.Close)
	ctx = stopFirst(t, ctx)
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "first"}); err != nil {
		t.Fatal(err)
	}
	ch := tailInto(t, ctx, s, task.ID)
	receive(t, ctx, ch, "first") // read directly: the tailer is now waiting
	if _, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "second"}); err != nil {
		t.Fatal(err)
	}
	receive(t, ctx, ch, "second")
	mu.Lock()
	defer mu.Unlock()
	if before < 2 || after < 2 {
		t.Errorf("hooks ran %d/%d times, want the pool's and the listener's connections", before, after)
	}
}

// After a successful reconnection the next drop starts the backoff over:
// four separate drops each wait the first delay, not 2, 4, 8 times it.
func TestListenerBackoffResetsAfterReconnect(t *testing.T) {
	needsListen(t)
	ctx := ctxTimeout(t, 60*time.Second)
	db := statetest.New(t)
	admin := storePool(t, db)
	delays := make(chan time.Duration, 10)
	s := statestore.New(admin, statestore.Options{PollInterval: time.Hour})
	statestore.SetListenRetriedForTest(s, func(d time.Duration) { delays <- d })
	t.Cleanup(s.Close)
	ctx = stopFirst(t, ctx)
	go func() { _ = s.WaitForQueued(ctx) }() // starts the listener

	pid := 0
	var got []time.Duration
	for range 4 {
		pid = listenerPID(t, ctx, admin, db.Name, pid)
		if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
			t.Fatal(err)
		}
		select {
		case d := <-delays:
			got = append(got, d)
		case <-ctx.Done():
			t.Fatal("listener did not notice the drop")
		}
	}
	for i, d := range got {
		if d != got[0] {
			t.Fatalf("reconnect delays after separate drops = %v: drop %d waited %v, not %v", got, i+1, d, got[0])
		}
	}
}

// A claimer that finds the only queued task locked by another transaction
// retries soon, not after a poll interval (an hour here; no wake-up comes:
// listening is off).
func TestClaimWaitRetriesSoonWhenQueuedRowsWereLocked(t *testing.T) {
	ctx := ctxTimeout(t, 60*time.Second)
	db := statetest.New(t)
	log := newQueryLog()
	log.ended = make(chan string, 100)
	s := tracedStore(t, db, log, statestore.Options{PollInterval: time.Hour, DisableListen: true})
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	holder, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.Background())
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1 FROM tasks WHERE task_id = $1 FOR UPDATE", task.ID); err != nil {
		t.Fatal(err)
	}
	type result struct {
		tasks []*statestore.Task
		err   error
	}
	done := make(chan result, 1)
	go func() {
		tasks, err := s.ClaimTasksWait(ctx, "claimer", 1)
		done <- result{tasks, err}
	}()
	for name := ""; name != "ClaimTasks"; { // the claimer has looked and skipped the row
		select {
		case name = <-log.ended:
		case <-ctx.Done():
			t.Fatal("no claim attempt")
		}
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || len(r.tasks) != 1 || r.tasks[0].ID != task.ID {
		t.Fatalf("ClaimTasksWait = %v, %v; want the task once its lock was released", r.tasks, r.err)
	}
}

// Appending notifies from no transaction of its own (the commit-time
// notify lock stays off the append path): with the store's wake-ups off, a
// listener sees nothing from an append, only the marker sent after it.
func TestAppendTransactionDoesNotNotify(t *testing.T) {
	needsListen(t)
	ctx := ctxTimeout(t, 30*time.Second)
	db := statetest.New(t)
	s := tracedStore(t, db, newQueryLog(), statestore.Options{DisableNotify: true, DisableListen: true})
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN statemgmt_message"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendMessages(ctx, task.ID, statestore.NewMessage{Message: "a"}, statestore.NewMessage{Message: "b"}); err != nil {
		t.Fatal(err)
	}
	if err := s.InTx(ctx, func(ctx context.Context, tx *statestore.Store) error {
		_, err := tx.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "c"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.ExecForTest(ctx, "SELECT pg_notify('statemgmt_message', 'marker')"); err != nil {
		t.Fatal(err)
	}
	n, err := conn.WaitForNotification(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Payload != "marker" {
		t.Fatalf("an append notified (payload %q) from its own transaction", n.Payload)
	}
}

// Every way of appending wakes a tailer in another process once the
// append commits: a plain call, the store's InTx (after its commit), and a
// caller's transaction through WithTx (at the caller's commit, not before).
func TestEveryAppendPathWakesTailers(t *testing.T) {
	needsListen(t)
	ctx := ctxTimeout(t, 60*time.Second)
	db := statetest.New(t)
	tailer := tracedStore(t, db, newQueryLog(), statestore.Options{PollInterval: time.Hour})
	writerPool := storePool(t, db)
	writer := statestore.New(writerPool, statestore.Options{})
	t.Cleanup(writer.Close)
	ctx = stopFirst(t, ctx)
	task, err := writer.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writer.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "start"}); err != nil {
		t.Fatal(err)
	}
	ch := tailInto(t, ctx, tailer, task.ID)
	receive(t, ctx, ch, "start")

	if _, err := writer.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "plain"}); err != nil {
		t.Fatal(err)
	}
	receive(t, ctx, ch, "plain")

	if err := writer.InTx(ctx, func(ctx context.Context, tx *statestore.Store) error {
		_, err := tx.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "in InTx"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	receive(t, ctx, ch, "in InTx")

	tx, err := writerPool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writer.WithTx(tx).AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "in WithTx"}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	receive(t, ctx, ch, "in WithTx")
}
