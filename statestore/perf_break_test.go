package statestore_test

import (
	"context"
	"errors"
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
	queued := 0
	for queued < 2 {
		select {
		case badErr = <-bad:
			bad = nil
			queued--
		case <-ctx.Done():
			t.Fatal("calls never queued")
		case <-time.After(5 * time.Millisecond):
		}
		queued = statestore.QueuedAppendsForTest(s, task.ID)
		if bad == nil {
			queued++
		}
	}
	release()
	if err := <-first; err != nil {
		t.Fatalf("first call: %v", err)
	}
	if err := <-good; err != nil {
		t.Errorf("good call grouped with a bad one: %v", err)
	}
	if bad != nil {
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
// starts while armed.
type cancelTracer struct {
	claimer string
	armed   atomic.Bool
	cancel  context.CancelFunc
	fired   atomic.Bool
}

func (c *cancelTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
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

func (c *cancelTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

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
	// Both subscribed: the notification wakes the victim (waiting for noop
	// only, it is picked before a claimer of every action).
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
		return statestore.ClaimersWaitingForTest(s) == 2
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
