package statestore_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// A message whose Time PostgreSQL cannot store is bad input of its own
// call: it is refused before any statement, naming the field, so a call
// grouped with it is unaffected (before the fix, the whole grouped
// statement failed with PostgreSQL's "timestamp out of range", failing
// every call of the group).
func TestGroupedAppendBreakBadTimeFailsOnlyItsCall(t *testing.T) {
	ctx := ctxTimeout(t, 60*time.Second)
	db := statetest.New(t)
	log := newQueryLog()
	s := tracedStore(t, db, log, statestore.Options{DisableListen: true})
	other := tracedStore(t, db, newQueryLog(), statestore.Options{DisableListen: true})
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	release := holdTaskRow(t, ctx, other, task.ID)
	first := make(chan error, 1)
	go func() {
		_, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "first"})
		first <- err
	}()
	for log.count("AppendResultMessages", task.ID.String()) == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("first append never sent")
		case <-time.After(5 * time.Millisecond):
		}
	}
	bad, good := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := s.AppendMessages(ctx, task.ID, statestore.NewMessage{Message: "ok"},
			statestore.NewMessage{Message: "ancient", Time: time.Date(-10000, 1, 1, 0, 0, 0, 0, time.UTC)})
		bad <- err
	}()
	go func() {
		_, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "good"})
		good <- err
	}()
	// Wait for the bad call to be refused or queued, and the good one queued.
	var badErr error
	badDone := false
	for {
		if !badDone {
			select {
			case badErr = <-bad:
				badDone = true
			default:
			}
		}
		want := 2
		if badDone {
			want = 1
		}
		if statestore.QueuedAppendsForTest(s, task.ID) == want {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("calls never queued")
		case <-time.After(5 * time.Millisecond):
		}
	}
	release()
	if err := <-first; err != nil {
		t.Fatalf("first call: %v", err)
	}
	if err := <-good; err != nil {
		t.Errorf("good call grouped with a bad one: %v", err)
	}
	if !badDone {
		badErr = <-bad
	}
	var ie *statestore.InvalidInputError
	if !errors.As(badErr, &ie) || ie.Field != "messages[1].Time" {
		t.Errorf("bad call: %v, want an InvalidInputError for messages[1].Time", badErr)
	}
	waitQueued(t, ctx, s, task, -1)
	stored, err := s.Messages(ctx, task.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 2 || stored[0].Message != "first" || stored[1].Message != "good" {
		t.Errorf("stored %v, want first and good", stored)
	}
}

// cancelTracer cancels a context when a ClaimTasks statement of claimer
// starts while armed, and counts the QueuedTaskExists statements of
// claimers of action "noop" only (the victim's) that have ended.
type cancelTracer struct {
	claimer string
	armed   atomic.Bool
	cancel  context.CancelFunc
	fired   atomic.Bool
	looked  atomic.Int32
}

type victimLookKey struct{}

func (c *cancelTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if queryName(d.SQL) == "QueuedTaskExists" && len(d.Args) == 1 {
		if a, ok := d.Args[0].([]string); ok && len(a) == 1 && a[0] == "noop" {
			return context.WithValue(ctx, victimLookKey{}, true)
		}
	}
	if !c.armed.Load() || queryName(d.SQL) != "ClaimTasks" {
		return ctx
	}
	for _, a := range d.Args {
		if s, ok := a.(string); ok && s == c.claimer {
			c.fired.Store(true)
			c.cancel() // the woken claimer gives up right after its wake-up
		}
	}
	return ctx
}

func (c *cancelTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	if ctx.Value(victimLookKey{}) != nil {
		c.looked.Add(1)
	}
}

// A woken claimer that fails before its claim runs (its context ended right
// after the wake-up) hands the wake-up on: another claimer of the action
// gets the task without waiting a poll interval (an hour here). Before the
// fix, the claimer went round its loop, its next claim failed, and the
// wake-up was lost with it.
func TestClaimWaitBreakWokenClaimerThatFailsHandsOn(t *testing.T) {
	needsListen(t)
	ctx := ctxTimeout(t, 60*time.Second)
	db := statetest.New(t)
	vctx, vcancel := context.WithCancel(ctx)
	defer vcancel()
	tr := &cancelTracer{claimer: "victim", cancel: vcancel}
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = tr
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := statestore.New(pool, statestore.Options{PollInterval: time.Hour})
	t.Cleanup(s.Close)
	writer := tracedStore(t, db, newQueryLog(), statestore.Options{})
	admin := storePool(t, db)
	ctx = stopFirst(t, ctx)

	// Start the listener and let its connect-time wake-up of everyone pass.
	wctx, wcancel := context.WithCancel(ctx)
	warm := make(chan struct{})
	go func() {
		defer close(warm)
		_, _ = s.ClaimTasksWait(wctx, "warm", 1, "warm-up")
	}()
	listenerPID(t, ctx, admin, db.Name, 0)
	wcancel()
	<-warm

	var wg sync.WaitGroup
	victim := make(chan error, 1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		// Waits for "noop" only: a queued noop task wakes it first.
		_, err := s.ClaimTasksWait(vctx, "victim", 1, "noop")
		victim <- err
	}()
	got := make(chan *statestore.Task, 1)
	go func() {
		defer wg.Done()
		// Waits for every action.
		tasks, err := s.ClaimTasksWait(ctx, "other", 1)
		if err != nil && ctx.Err() == nil {
			t.Errorf("other claimer: %v", err)
		}
		for _, task := range tasks {
			got <- task
		}
	}()
	t.Cleanup(wg.Wait)
	// Both subscribed, the victim past its first claim (so that the claim
	// the tracer cancels is the one after its wake-up): the notification
	// wakes the victim (waiting for noop only, it is picked before a
	// claimer of every action).
	waitFor := func(what string, cond func() bool) {
		for !cond() {
			select {
			case <-ctx.Done():
				t.Fatalf("never %s", what)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	waitFor("both claimers waiting", func() bool {
		return statestore.ClaimersWaitingForTest(s) == 2 && tr.looked.Load() > 0
	})
	tr.armed.Store(true)
	if _, err := writer.CreateTask(ctx, statestore.NewTask{Action: "noop"}); err != nil {
		t.Fatal(err)
	}
	select {
	case task := <-got:
		if task.Action != "noop" {
			t.Errorf("claimed %q", task.Action)
		}
	case <-ctx.Done():
		t.Fatalf("the other claimer never got the task (victim fired: %v): the failed claimer lost the wake-up", tr.fired.Load())
	}
	if err := <-victim; !errors.Is(err, context.Canceled) {
		t.Errorf("victim: %v, want context.Canceled", err)
	}
}

// Many goroutines of one Store append to one task at once: mixed batch
// sizes, some callers cancelling at random moments (queued or in flight),
// some appending idempotently (ClientID) in between. Every call that
// succeeds got one block of consecutive numbers in its own order, matching
// what is stored; the task's numbers run 1..n with no gap or duplicate;
// a cancelled call wrote either all or none of its messages.
func TestGroupedAppendBreakStress(t *testing.T) {
	ctx := ctxTimeout(t, 120*time.Second)
	db := statetest.New(t)
	log := newQueryLog()
	s := tracedStore(t, db, log, statestore.Options{DisableListen: true})
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	const callers = 40
	type result struct {
		out       []statestore.ResultMessage
		err       error
		n         int
		cancelled bool
	}
	results := make([]result, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 1 + (i*7)%13
			if i%10 == 9 {
				n = 300
			}
			msgs := make([]statestore.NewMessage, n)
			for j := range msgs {
				msgs[j] = statestore.NewMessage{Message: fmt.Sprintf("c%d m%d", i, j)}
				if i%5 == 4 {
					msgs[j].ClientID = fmt.Sprintf("c%d-%d", i, j)
				}
			}
			cctx := ctx
			if i%4 == 3 {
				var cancel context.CancelFunc
				cctx, cancel = context.WithCancel(ctx)
				go func() {
					// Cancel at some point while the calls are under way.
					for range i % 5 {
						runtime.Gosched()
					}
					cancel()
				}()
				results[i].cancelled = true
			}
			out, err := s.AppendMessages(cctx, task.ID, msgs...)
			results[i].out, results[i].err, results[i].n = out, err, n
		}()
	}
	wg.Wait()
	waitQueued(t, ctx, s, task, -1)
	t.Logf("%d grouped statements for %d calls", log.count("AppendResultMessages", task.ID.String()), callers)
	stored, err := s.Messages(ctx, task.ID, 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	bySeq := map[int64]string{}
	count := map[int]int{} // caller → messages stored
	for k, m := range stored {
		if m.Sequence != int64(k+1) {
			t.Fatalf("stored message %d has number %d: a gap or duplicate", k, m.Sequence)
		}
		bySeq[m.Sequence] = m.Message
		var c, j int
		if _, err := fmt.Sscanf(m.Message, "c%d m%d", &c, &j); err != nil {
			t.Fatalf("stored %q", m.Message)
		}
		count[c]++
	}
	for i, r := range results {
		switch {
		case r.err == nil:
			if len(r.out) != r.n || count[i] != r.n {
				t.Errorf("caller %d: returned %d, stored %d, want %d", i, len(r.out), count[i], r.n)
				continue
			}
			for j, m := range r.out {
				want := fmt.Sprintf("c%d m%d", i, j)
				if m.Sequence != r.out[0].Sequence+int64(j) || bySeq[m.Sequence] != want {
					t.Errorf("caller %d message %d: number %d holds %q, want one block holding %q",
						i, j, m.Sequence, bySeq[m.Sequence], want)
				}
			}
		case r.cancelled && errors.Is(r.err, context.Canceled):
			if count[i] != 0 && count[i] != r.n {
				t.Errorf("cancelled caller %d: %d of %d messages stored", i, count[i], r.n)
			}
		default:
			t.Errorf("caller %d: %v", i, r.err)
		}
	}
}

// A task deleted while calls to it are queued behind a statement: every
// call, the one blocked on the row lock and those grouped after it, fails
// on its own with ErrNotFound.
func TestGroupedAppendBreakTaskDeletedMidGroup(t *testing.T) {
	ctx := ctxTimeout(t, 60*time.Second)
	db := statetest.New(t)
	log := newQueryLog()
	s := tracedStore(t, db, log, statestore.Options{DisableListen: true})
	other := tracedStore(t, db, newQueryLog(), statestore.Options{DisableListen: true})
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	locked, unlock := make(chan struct{}), make(chan struct{})
	deleted := make(chan error, 1)
	go func() {
		deleted <- other.InTx(ctx, func(ctx context.Context, tx *statestore.Store) error {
			if err := tx.ExecForTest(ctx, "DELETE FROM tasks WHERE task_id = $1", task.ID.String()); err != nil {
				return err
			}
			close(locked)
			<-unlock
			return nil
		})
	}()
	select {
	case <-locked:
	case err := <-deleted:
		t.Fatalf("delete task: %v", err)
	}
	const callers = 5
	errs := make(chan error, callers)
	appendOne := func(i int) {
		_, err := s.AppendMessages(ctx, task.ID, statestore.NewMessage{Message: fmt.Sprint(i)}, statestore.NewMessage{Message: "x"})
		errs <- err
	}
	go appendOne(0)
	for log.count("AppendResultMessages", task.ID.String()) == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("first append never sent")
		case <-time.After(5 * time.Millisecond):
		}
	}
	for i := 1; i < callers; i++ {
		go appendOne(i)
	}
	waitQueued(t, ctx, s, task, callers-1)
	close(unlock)
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	for range callers {
		if err := <-errs; !errors.Is(err, statestore.ErrNotFound) {
			t.Errorf("append to a task deleted meanwhile: %v, want ErrNotFound", err)
		}
	}
}

// The message times Go accepts are exactly those PostgreSQL stores: the
// first and last instants are stored as given, one microsecond outside is
// refused naming the field.
func TestAppendMessageTimeRangeBreak(t *testing.T) {
	ctx := ctxTimeout(t, 60*time.Second)
	s, _ := newStore(t, statestore.Options{DisableListen: true})
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	first := time.Date(-4713, 11, 24, 0, 0, 0, 0, time.UTC)
	last := time.Date(294276, 12, 31, 23, 59, 59, 999999000, time.UTC)
	for _, tc := range []struct {
		at time.Time
		ok bool
	}{
		{first, true}, {last, true},
		{first.Add(-time.Microsecond), false}, {last.Add(time.Microsecond), false},
	} {
		m, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "t", Time: tc.at})
		var ie *statestore.InvalidInputError
		switch {
		case tc.ok && err != nil:
			t.Errorf("time %v: %v", tc.at, err)
		case tc.ok && !m.Time.Equal(tc.at):
			t.Errorf("time %v stored as %v", tc.at, m.Time)
		case !tc.ok && (!errors.As(err, &ie) || ie.Field != "message.Time"):
			t.Errorf("time %v: %v, want an InvalidInputError for message.Time", tc.at, err)
		}
	}
}

// Claimers of different actions that each keep what they claim (up to 2)
// all get work from one batch of five tasks of two actions queued in one
// transaction, with an hour's poll interval: the wake-ups of both actions
// are handed on until the batch is claimed.
func TestQueuedMixedBatchBreakAllClaimed(t *testing.T) {
	needsListen(t)
	ctx := ctxTimeout(t, 60*time.Second)
	db := statetest.New(t)
	s := tracedStore(t, db, newQueryLog(), statestore.Options{PollInterval: time.Hour})
	writer := tracedStore(t, db, newQueryLog(), statestore.Options{})
	admin := storePool(t, db)
	ctx = stopFirst(t, ctx)

	// Start the listener and let its connect-time wake-up of everyone pass.
	wctx, wcancel := context.WithCancel(ctx)
	warm := make(chan struct{})
	go func() {
		defer close(warm)
		_, _ = s.ClaimTasksWait(wctx, "warm", 1, "warm-up")
	}()
	listenerPID(t, ctx, admin, db.Name, 0)
	wcancel()
	<-warm

	claimers := [][]string{{"a", "b"}, {"a"}, {"b"}, nil}
	claimed := make(chan *statestore.Task, 8)
	var wg sync.WaitGroup
	ctx, stop := context.WithCancel(ctx)
	t.Cleanup(func() { stop(); wg.Wait() }) // claimers left without a task stop waiting
	for i, actions := range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tasks, err := s.ClaimTasksWait(ctx, fmt.Sprintf("holder-%d", i), 2, actions...)
			if err != nil && ctx.Err() == nil {
				t.Errorf("ClaimTasksWait: %v", err)
			}
			for _, task := range tasks {
				claimed <- task
			}
		}()
	}
	for statestore.ClaimersWaitingForTest(s) != len(claimers) {
		select {
		case <-ctx.Done():
			t.Fatal("claimers never waiting")
		case <-time.After(5 * time.Millisecond):
		}
	}
	batch := []statestore.NewTask{{Action: "a"}, {Action: "b"}, {Action: "a"}, {Action: "b"}, {Action: "a"}}
	if _, err := writer.CreateTasks(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	for got := 0; got < len(batch); {
		select {
		case <-claimed:
			got++
		case <-ctx.Done():
			t.Fatalf("%d of %d tasks of the batch claimed: a wake-up was not handed on", got, len(batch))
		}
	}
}
