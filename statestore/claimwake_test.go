package statestore_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// One queued task wakes one idle claimer, not all of them: the others would
// only race it for the same row.
func TestQueuedTaskWakesOneClaimer(t *testing.T) {
	needsListen(t)
	ctx := ctxTimeout(t, 90*time.Second)
	db := statetest.New(t)
	log := newQueryLog()
	s := tracedStore(t, db, log, statestore.Options{PollInterval: time.Hour})
	writer := tracedStore(t, db, newQueryLog(), statestore.Options{})
	admin := storePool(t, db)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // after stopFirst's cancel: cleanups run last-registered first
	ctx = stopFirst(t, ctx)

	const claimers = 8
	claimed := make(chan *statestore.Task, 100)
	for i := range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				tasks, err := s.ClaimTasksWait(ctx, fmt.Sprintf("claimer-%d", i), 1)
				if err != nil && ctx.Err() == nil {
					t.Errorf("ClaimTasksWait: %v", err)
					return
				}
				for _, task := range tasks {
					claimed <- task
				}
			}
		}()
	}
	listenerPID(t, ctx, admin, db.Name, 0)
	claims := func() int {
		n := 0
		for i := range claimers {
			n += log.count("ClaimTasks", fmt.Sprintf("claimer-%d", i))
		}
		return n
	}
	claimOne := func() {
		t.Helper()
		task, err := writer.CreateTask(ctx, statestore.NewTask{Action: "noop"})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-claimed:
			if got.ID != task.ID {
				t.Fatalf("claimed %s, want %s", got.ID, task.ID)
			}
		case <-ctx.Done():
			t.Fatal("task never claimed")
		}
	}
	claimOne() // the listener's connect-time wake-up (everyone) is past
	claimOne()
	before := claims()
	const tasks = 5
	for range tasks {
		claimOne()
	}
	// Per task: one claim that gets it and the winner's next claim that
	// finds nothing before it waits again; at times a claimer woken while
	// its own empty claim was under way claims once more. Woken all at
	// once, the eight would run at least eight.
	if n := claims() - before; n > 4*tasks {
		t.Errorf("%d idle claimers ran %d claims for %d queued tasks, one at a time; want at most %d", claimers, n, tasks, 4*tasks)
	}
}

// A batch queued in one transaction sends one notification (PostgreSQL folds
// identical ones), which wakes one claimer; each claimer that takes all it
// asked for hands the wake-up on, so every idle claimer gets a task without
// waiting for its poll interval (an hour here).
func TestQueuedBatchWakesEnoughClaimers(t *testing.T) {
	needsListen(t)
	ctx := ctxTimeout(t, 60*time.Second)
	db := statetest.New(t)
	s := tracedStore(t, db, newQueryLog(), statestore.Options{PollInterval: time.Hour})
	writer := tracedStore(t, db, newQueryLog(), statestore.Options{})
	admin := storePool(t, db)
	ctx = stopFirst(t, ctx)

	const claimers = 4
	claimed := make(chan *statestore.Task, claimers)
	for i := range claimers {
		go func() {
			// Each claimer takes one task and keeps it: the others must be
			// woken for theirs.
			tasks, err := s.ClaimTasksWait(ctx, fmt.Sprintf("holder-%d", i), 1, "noop")
			if err != nil && ctx.Err() == nil {
				t.Errorf("ClaimTasksWait: %v", err)
			}
			for _, task := range tasks {
				claimed <- task
			}
		}()
	}
	// Listening from here on (its connect-time wake-up of everyone only
	// makes the holders claim nothing and wait again).
	listenerPID(t, ctx, admin, db.Name, 0)
	batch := make([]statestore.NewTask, claimers)
	for i := range batch {
		batch[i] = statestore.NewTask{Action: "noop"}
	}
	if _, err := writer.CreateTasks(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	for got := 0; got < claimers; {
		select {
		case <-claimed:
			got++
		case <-ctx.Done():
			t.Fatalf("%d of %d claimers got a task of the batch: the wake-up was not handed on", got, claimers)
		}
	}
}
