package statestore_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/statestore"
)

func TestAppendAndPageMessages(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_nodes"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	long := strings.Repeat("é", statestore.MaxMessageLength) // at the limit, multi-byte: stored whole
	in := []statestore.NewMessage{
		{Message: "first", Context: "n1", ContextType: "node", Time: at, Extra: json.RawMessage(`{"k": [1, 2]}`)},
		{Message: long, Error: true},
		{Message: "third"},
	}
	out, err := s.AppendMessages(ctx, task.ID, in...)
	if err != nil {
		t.Fatal(err)
	}
	want := []statestore.ResultMessage{
		{TaskID: task.ID, Sequence: 1, Message: "first", Context: "n1", ContextType: "node", Time: at, Extra: in[0].Extra},
		{TaskID: task.ID, Sequence: 2, Message: long, Error: true},
		{TaskID: task.ID, Sequence: 3, Message: "third"},
	}
	ignoreDefaultTime := cmpopts.IgnoreFields(statestore.ResultMessage{}, "Time")
	if diff := cmp.Diff(want, out, ignoreDefaultTime, jsonEqual); diff != "" {
		t.Fatalf("AppendMessages (-want +got):\n%s", diff)
	}
	if !out[0].Time.Equal(at) || time.Since(out[1].Time) > time.Minute {
		t.Fatalf("times = %v, %v", out[0].Time, out[1].Time)
	}
	more, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "fourth"})
	if err != nil || more.Sequence != 4 {
		t.Fatalf("AppendMessage = %+v, %v", more, err)
	}
	page, err := s.Messages(ctx, task.ID, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[0].Sequence != 2 || page[1].Sequence != 3 || page[0].Message != long {
		t.Fatalf("Messages(after 1, limit 2) = %+v", page)
	}
	if _, err := s.AppendMessage(ctx, uuid.New(), statestore.NewMessage{Message: "x"}); !errors.Is(err, statestore.ErrNotFound) {
		t.Fatalf("append to missing task: %v", err)
	}
}

// 16 writers append 1000 messages each to one task, one at a time: the
// sequence is exactly 1..16000, no gaps, no duplicates, and the error
// count matches.
func TestConcurrentAppendSequenceIsGapFree(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 16, 1000
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "m", Error: i == 0}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var n, min, max, distinct int64
	if err := pool.QueryRow(ctx, `SELECT count(*), min(sequence), max(sequence), count(DISTINCT sequence)
		FROM result_message WHERE task_id = $1`, task.ID).Scan(&n, &min, &max, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != writers*each || min != 1 || max != writers*each || distinct != n {
		t.Fatalf("sequence: %d rows, min %d, max %d, %d distinct; want exactly 1..%d", n, min, max, distinct, writers*each)
	}
	got, err := s.GetTask(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastMessageSeq != writers*each || got.Result.ErrorCount != writers {
		t.Fatalf("task counters: last seq %d, errors %d", got.LastMessageSeq, got.Result.ErrorCount)
	}
}

func TestTailMessagesFollowsLive(t *testing.T) {
	needsListen(t)
	s, _ := newStore(t, statestore.Options{PollInterval: time.Hour}) // only NOTIFY can wake it in time
	ctx := context.Background()
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "before"}); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var got []string
	done := make(chan error, 1)
	stop := errors.New("seen enough")
	go func() {
		done <- s.TailMessages(tctx, task.ID, 0, func(m statestore.ResultMessage) error {
			got = append(got, m.Message)
			if len(got) == 4 {
				return stop
			}
			return nil
		})
	}()
	time.Sleep(300 * time.Millisecond)
	for _, m := range []string{"one", "two"} {
		if _, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: m}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "three"}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, stop) {
		t.Fatalf("TailMessages ended with %v (not woken by NOTIFY?)", err)
	}
	if diff := cmp.Diff([]string{"before", "one", "two", "three"}, got); diff != "" {
		t.Fatalf("tailed (-want +got):\n%s", diff)
	}
}

func TestInTx(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	boom := errors.New("boom")

	err := s.InTx(ctx, func(ctx context.Context, tx *statestore.Store) error {
		if _, err := tx.CreateTask(ctx, statestore.NewTask{Action: "noop"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx error = %v", err)
	}
	func() {
		defer func() {
			if r := recover(); r != "panic in tx" {
				t.Fatalf("recovered %v", r)
			}
		}()
		_ = s.InTx(ctx, func(ctx context.Context, tx *statestore.Store) error {
			if _, err := tx.CreateTask(ctx, statestore.NewTask{Action: "noop"}); err != nil {
				return err
			}
			panic("panic in tx")
		})
	}()
	cctx, cancel := context.WithCancel(ctx)
	err = s.InTx(cctx, func(ctx context.Context, tx *statestore.Store) error {
		if _, err := tx.CreateTask(ctx, statestore.NewTask{Action: "noop"}); err != nil {
			return err
		}
		cancel()
		return ctx.Err()
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled InTx error = %v", err)
	}
	if n := count(t, pool, "SELECT count(*) FROM tasks"); n != 0 {
		t.Fatalf("%d tasks survived rolled-back transactions", n)
	}
	// The pool is intact: no connection leaked by the three rollbacks.
	if st := pool.Stat(); st.AcquiredConns() != 0 {
		t.Fatalf("%d connections still acquired after rollbacks", st.AcquiredConns())
	}

	// Commit path, with a nested InTx (savepoint) that fails alone.
	err = s.InTx(ctx, func(ctx context.Context, tx *statestore.Store) error {
		if _, err := tx.CreateTask(ctx, statestore.NewTask{Action: "noop"}); err != nil {
			return err
		}
		inner := tx.InTx(ctx, func(ctx context.Context, tx *statestore.Store) error {
			if _, err := tx.CreateTask(ctx, statestore.NewTask{Action: "noop"}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(inner, boom) {
			return errors.New("inner error lost")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, pool, "SELECT count(*) FROM tasks"); n != 1 {
		t.Fatalf("%d tasks after commit with a rolled-back savepoint, want 1", n)
	}
}

func TestWithCallersTx(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	task, err := s.WithTx(tx).CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WithTx(tx).AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "in tx"}); err != nil {
		t.Fatal(err)
	}
	// Invisible outside until commit.
	if n := count(t, pool, "SELECT count(*) FROM tasks"); n != 0 {
		t.Fatalf("uncommitted task visible outside the transaction")
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetTask(ctx, task.ID); !errors.Is(err, statestore.ErrNotFound) {
		t.Fatalf("rolled-back task: %v", err)
	}
}

// Bad input: each a clear error naming the field; nothing written.
func TestBadInputWritesNothing(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	nilID := uuid.Nil
	bogus := statestore.TaskStatus("done")
	tests := []struct {
		name  string
		call  func() error
		field string
	}{
		{"empty action", func() error { _, err := s.CreateTask(ctx, statestore.NewTask{}); return err }, "task.Action"},
		{"action with capitals", func() error { _, err := s.CreateTask(ctx, statestore.NewTask{Action: "Deploy"}); return err }, "task.Action"},
		{"injection in action", func() error {
			_, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop'; DROP TABLE tasks; --"})
			return err
		}, "task.Action"},
		{"new task already running", func() error {
			_, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop", Status: statestore.StatusRunning})
			return err
		}, "task.Status"},
		{"nil parent id", func() error {
			_, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop", ParentID: &nilID})
			return err
		}, "task.ParentID"},
		{"invalid node filter JSON", func() error {
			_, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop", NodeFilter: json.RawMessage(`{"a":`)})
			return err
		}, "task.NodeFilter"},
		{"NUL in design ref", func() error {
			_, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop", DesignRef: "a\x00b"})
			return err
		}, "task.DesignRef"},
		{"second task in batch bad", func() error {
			_, err := s.CreateTasks(ctx, statestore.NewTask{Action: "noop"}, statestore.NewTask{Action: ""})
			return err
		}, "tasks[1].Action"},
		{"unknown status", func() error {
			_, err := s.UpdateTask(ctx, task.ID, task.Version, statestore.TaskUpdate{Status: &bogus})
			return err
		}, "update.Status"},
		{"invalid transition", func() error {
			_, err := s.UpdateTask(ctx, task.ID, task.Version, statestore.TaskUpdate{Status: statusPtr(statestore.StatusRequested)})
			return err
		}, "status"},
		{"links not an array", func() error {
			_, err := s.UpdateTask(ctx, task.ID, task.Version, statestore.TaskUpdate{Links: json.RawMessage(`{}`)})
			return err
		}, "update.Links"},
		{"oversized message", func() error {
			_, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: strings.Repeat("x", statestore.MaxMessageLength+1)})
			return err
		}, "message.Message"},
		{"invalid UTF-8 message", func() error {
			_, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "\xff\xfe"})
			return err
		}, "message.Message"},
		{"invalid extra JSON", func() error {
			_, err := s.AppendMessages(ctx, task.ID, statestore.NewMessage{Message: "ok"}, statestore.NewMessage{Message: "x", Extra: json.RawMessage(`nope`)})
			return err
		}, "messages[1].Extra"},
		{"NUL escape in extra", func() error {
			_, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "x", Extra: json.RawMessage(`{"a":"\u0000"}`)})
			return err
		}, "message.Extra"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			wantInvalid(t, err, tc.field)
			if strings.Contains(err.Error(), "DROP TABLE") {
				t.Errorf("error repeats the rejected value: %v", err)
			}
		})
	}
	if n := count(t, pool, "SELECT count(*) FROM tasks"); n != 1 {
		t.Fatalf("%d tasks after bad input, want 1", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM result_message"); n != 0 {
		t.Fatalf("%d messages after bad input, want 0", n)
	}
	got, err := s.GetTask(ctx, task.ID)
	if err != nil || got.Version != task.Version {
		t.Fatalf("task changed by bad input: %+v, %v", got, err)
	}
}
