package statestore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// holdTaskRow locks task id's row in a transaction of its own, so that
// appends to it block, until the returned release is called.
func holdTaskRow(t *testing.T, ctx context.Context, s *statestore.Store, id fmt.Stringer) (release func()) {
	t.Helper()
	locked, unlock := make(chan struct{}), make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- s.InTx(ctx, func(ctx context.Context, tx *statestore.Store) error {
			if err := tx.ExecForTest(ctx, "SELECT 1 FROM tasks WHERE task_id = $1 FOR UPDATE", id.String()); err != nil {
				return err
			}
			close(locked)
			<-unlock
			return nil
		})
	}()
	select {
	case <-locked:
	case err := <-errc:
		t.Fatalf("lock task row: %v", err)
	}
	release = sync.OnceFunc(func() {
		close(unlock)
		if err := <-errc; err != nil {
			t.Errorf("lock task row: %v", err)
		}
	})
	t.Cleanup(release) // a test that fails early must not leave the row locked
	return release
}

// waitQueued waits until want calls are queued for the task (or fails).
func waitQueued(t *testing.T, ctx context.Context, s *statestore.Store, task *statestore.Task, want int) {
	t.Helper()
	for statestore.QueuedAppendsForTest(s, task.ID) != want {
		select {
		case <-ctx.Done():
			t.Fatalf("%d appends queued, want %d", statestore.QueuedAppendsForTest(s, task.ID), want)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Calls appending to one task while a statement for it is under way share
// the next statement; each still gets its own messages as one block of
// consecutive numbers, in its own order, and the task's numbers stay
// gap-free.
func TestConcurrentAppendsToOneTaskShareAStatement(t *testing.T) {
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

	const callers, per = 10, 3
	got := make([][]statestore.ResultMessage, callers)
	var wg sync.WaitGroup
	call := func(i int) {
		defer wg.Done()
		msgs := make([]statestore.NewMessage, per)
		for j := range msgs {
			msgs[j] = statestore.NewMessage{Message: fmt.Sprintf("caller %d message %d", i, j), Context: "n", ContextType: "node"}
		}
		out, err := s.AppendMessages(ctx, task.ID, msgs...)
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
		got[i] = out
	}
	wg.Add(1)
	go call(0) // sent, then blocked on the row lock
	for log.count("AppendResultMessages", task.ID.String()) == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("first append never sent")
		case <-time.After(5 * time.Millisecond):
		}
	}
	for i := 1; i < callers; i++ {
		wg.Add(1)
		go call(i)
	}
	waitQueued(t, ctx, s, task, callers-1)
	release()
	wg.Wait()
	waitQueued(t, ctx, s, task, -1)
	if t.Failed() {
		return
	}
	if n := log.count("AppendResultMessages", task.ID.String()); n != 2 {
		t.Errorf("%d statements for %d calls, want 2 (the first, then the nine queued together)", n, callers)
	}
	seen := map[int64]string{}
	for i, out := range got {
		if len(out) != per {
			t.Fatalf("caller %d got %d messages, want %d", i, len(out), per)
		}
		for j, m := range out {
			if m.Sequence != out[0].Sequence+int64(j) {
				t.Errorf("caller %d: numbers %v are not one block in its order", i, out)
			}
			if want := fmt.Sprintf("caller %d message %d", i, j); m.Message != want {
				t.Errorf("caller %d message %d is %q", i, j, m.Message)
			}
			seen[m.Sequence] = m.Message
		}
	}
	stored, err := s.Messages(ctx, task.ID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for k, m := range stored {
		if m.Sequence != int64(k+1) || seen[m.Sequence] != m.Message {
			t.Fatalf("stored message %d: %d %q; returned %q", k, m.Sequence, m.Message, seen[m.Sequence])
		}
	}
	if len(stored) != callers*per {
		t.Fatalf("stored %d messages, want %d", len(stored), callers*per)
	}
}

// A call that gives up while queued returns its context's error, and its
// messages are not written; the others' are.
func TestQueuedAppendCancelledWritesNothing(t *testing.T) {
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
		_, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "kept"})
		first <- err
	}()
	for log.count("AppendResultMessages", task.ID.String()) == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("first append never sent")
		case <-time.After(5 * time.Millisecond):
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	second := make(chan error, 1)
	go func() {
		_, err := s.AppendMessage(cctx, task.ID, statestore.NewMessage{Message: "given up"})
		second <- err
	}()
	waitQueued(t, ctx, s, task, 1)
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled queued append: %v, want context.Canceled", err)
	}
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	waitQueued(t, ctx, s, task, -1) // every statement for the task has ended
	stored, err := s.Messages(ctx, task.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range stored {
		texts = append(texts, m.Message)
	}
	if diff := cmp.Diff([]string{"kept"}, texts); diff != "" {
		t.Errorf("stored messages (-want +got):\n%s", diff)
	}
}
