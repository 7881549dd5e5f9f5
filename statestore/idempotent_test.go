package statestore_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/statestore"
)

// waitForLockWaiter waits until some session of the database waits for a
// lock (the duplicate call queued behind the original's transaction).
func waitForLockWaiter(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for count(t, pool, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the duplicate call never waited for the original's lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A retried CreateTask (same caller-chosen id, same content) returns the
// task that exists and writes nothing; other content under that id, or a
// batch only part of which exists, is ErrConflict.
func TestCreateTaskRetryIsIdempotent(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	s, pool := newStore(t, statestore.Options{})
	id, kid := uuid.New(), uuid.New()
	nt := statestore.NewTask{ID: id, Action: "deploy_nodes", DesignRef: "file:///site.yaml",
		NodeFilter: json.RawMessage(`{"b": 1, "a": [1, 2]}`), CreatedBy: "api"}
	sub := statestore.NewTask{ID: kid, ParentID: &id, Action: "deploy_node", CreatedBy: "api"}
	first, err := s.CreateTasks(ctx, nt, sub)
	if err != nil {
		t.Fatal(err)
	}
	// The same batch again, node filter spelled differently (jsonb keeps neither spacing nor key order).
	nt2 := nt
	nt2.NodeFilter = json.RawMessage(`{"a":[1,2],"b":1}`)
	again, err := s.CreateTasks(ctx, nt2, sub)
	if err != nil {
		t.Fatalf("retry of a committed batch: %v", err)
	}
	if len(again) != 2 || again[0].ID != id || again[1].ID != kid || again[0].Version != first[0].Version ||
		len(again[0].SubtaskIDs) != 1 || again[0].SubtaskIDs[0] != kid {
		t.Fatalf("retry returned %+v, want the two tasks as stored", again)
	}
	one, err := s.CreateTask(ctx, sub)
	if err != nil || one.ID != kid {
		t.Fatalf("retry of one task: %v, %v", one, err)
	}
	if n := count(t, pool, "SELECT count(*) FROM tasks"); n != 2 {
		t.Fatalf("%d tasks after retries, want 2", n)
	}
	for name, bad := range map[string][]statestore.NewTask{
		"other action":      {{ID: id, Action: "other", DesignRef: nt.DesignRef, NodeFilter: nt.NodeFilter, CreatedBy: "api"}},
		"other node filter": {{ID: id, Action: nt.Action, DesignRef: nt.DesignRef, NodeFilter: json.RawMessage(`{}`), CreatedBy: "api"}},
		"other parent":      {{ID: kid, Action: "deploy_node", CreatedBy: "api"}},
		"part of a batch":   {nt, {ID: uuid.New(), Action: "x"}},
	} {
		if _, err := s.CreateTasks(ctx, bad...); !errors.Is(err, statestore.ErrConflict) {
			t.Errorf("%s: %v, want ErrConflict", name, err)
		}
	}
	if n := count(t, pool, "SELECT count(*) FROM tasks"); n != 2 {
		t.Fatalf("%d tasks after refused retries, want 2", n)
	}
}

// A duplicate CreateTask racing the original (which has inserted but not
// yet committed) waits for it and then returns the original's task.
func TestCreateTaskDuplicateRacingOriginal(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	s, pool := newStore(t, statestore.Options{})
	nt := statestore.NewTask{ID: uuid.New(), Action: "deploy_node", CreatedBy: "api"}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := s.WithTx(tx).CreateTask(ctx, nt); err != nil {
		t.Fatal(err)
	}
	type result struct {
		task *statestore.Task
		err  error
	}
	dup := make(chan result, 1)
	go func() {
		task, err := s.CreateTask(ctx, nt)
		dup <- result{task, err}
	}()
	waitForLockWaiter(t, pool)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-dup
	if r.err != nil || r.task.ID != nt.ID {
		t.Fatalf("duplicate racing the original: %v, %v; want the original's task", r.task, r.err)
	}
	if n := count(t, pool, "SELECT count(*) FROM tasks"); n != 1 {
		t.Fatalf("%d tasks, want 1", n)
	}
}

// An append retried with the same client message id returns the stored
// message (same sequence number) and appends nothing; a batch mixing a
// stored and a new id appends only the new one; the id with other content
// is ErrConflict.
func TestAppendMessageClientIDIsIdempotent(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	s, pool := newStore(t, statestore.Options{})
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_node"})
	if err != nil {
		t.Fatal(err)
	}
	m := statestore.NewMessage{Message: "booting", Context: "n1", ContextType: "node", ClientID: "w1-n1-boot",
		Extra: json.RawMessage(`{"x": 1, "y": 2}`)}
	first, err := s.AppendMessage(ctx, task.ID, m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "no id"}); err != nil {
		t.Fatal(err)
	}
	m2 := m
	m2.Extra = json.RawMessage(`{"y":2,"x":1}`)
	again, err := s.AppendMessage(ctx, task.ID, m2)
	if err != nil || again.Sequence != first.Sequence || again.ClientID != m.ClientID {
		t.Fatalf("retry: %+v, %v; want sequence %d", again, err, first.Sequence)
	}
	batch, err := s.AppendMessages(ctx, task.ID, statestore.NewMessage{Message: "up", ClientID: "w1-n1-up"}, m)
	if err != nil || len(batch) != 2 || batch[0].Sequence != 3 || batch[1].Sequence != first.Sequence {
		t.Fatalf("mixed batch: %+v, %v; want the new one as 3, the stored one as %d", batch, err, first.Sequence)
	}
	got, err := s.GetTask(ctx, task.ID)
	if err != nil || got.LastMessageSeq != 3 || len(got.Messages) != 3 {
		t.Fatalf("after retries: last sequence %d, %d messages, %v; want 3, 3", got.LastMessageSeq, len(got.Messages), err)
	}
	other := m
	other.Message = "something else"
	if _, err := s.AppendMessage(ctx, task.ID, other); !errors.Is(err, statestore.ErrConflict) {
		t.Fatalf("same client id, other text: %v, want ErrConflict", err)
	}
	_, err = s.AppendMessages(ctx, task.ID, statestore.NewMessage{Message: "a", ClientID: "dup"},
		statestore.NewMessage{Message: "b", ClientID: "dup"})
	wantInvalid(t, err, "messages[1].ClientID")
	if _, err := s.AppendMessage(ctx, uuid.New(), m); !errors.Is(err, statestore.ErrNotFound) {
		t.Fatalf("missing task: %v, want ErrNotFound", err)
	}
	if n := count(t, pool, "SELECT count(*) FROM result_message"); n != 3 {
		t.Fatalf("%d messages stored, want 3", n)
	}
}

// A duplicate append racing the original (appended, not yet committed)
// waits for it and returns the original's message: one row, one number.
func TestAppendMessageDuplicateRacingOriginal(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	s, pool := newStore(t, statestore.Options{})
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_node"})
	if err != nil {
		t.Fatal(err)
	}
	m := statestore.NewMessage{Message: "booting", ClientID: "w1-boot"}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	orig, err := s.WithTx(tx).AppendMessage(ctx, task.ID, m)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		m   statestore.ResultMessage
		err error
	}
	dup := make(chan result, 1)
	go func() {
		m, err := s.AppendMessage(ctx, task.ID, m)
		dup <- result{m, err}
	}()
	waitForLockWaiter(t, pool)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-dup
	if r.err != nil || r.m.Sequence != orig.Sequence {
		t.Fatalf("duplicate racing the original: %+v, %v; want sequence %d", r.m, r.err, orig.Sequence)
	}
	if n := count(t, pool, "SELECT count(*) FROM result_message"); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
	if n := count(t, pool, "SELECT last_message_seq FROM tasks"); n != 1 {
		t.Fatalf("last_message_seq %d, want 1", n)
	}
}

// Completing the same claim again with the same result succeeds and
// changes nothing, also when the duplicate races the original.
func TestCompleteDuplicateRacingOriginal(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	s, pool := newStore(t, statestore.Options{})
	if _, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_node"}); err != nil {
		t.Fatal(err)
	}
	claimed, err := s.ClaimTasks(ctx, "w1", 1)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v, %v", claimed, err)
	}
	c := claimed[0].Claim()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	done, err := s.WithTx(tx).CompleteTasks(ctx, statestore.ResultSuccess, c)
	if err != nil || len(done) != 1 {
		t.Fatalf("original: %v, %v", done, err)
	}
	type result struct {
		tasks []*statestore.Task
		err   error
	}
	dup := make(chan result, 1)
	go func() {
		tasks, err := s.CompleteTasks(ctx, statestore.ResultSuccess, c)
		dup <- result{tasks, err}
	}()
	waitForLockWaiter(t, pool)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-dup
	if r.err != nil || len(r.tasks) != 1 || r.tasks[0].Version != done[0].Version ||
		r.tasks[0].Status != statestore.StatusComplete {
		t.Fatalf("duplicate racing the original: %v, %v; want the task complete at v%d", r.tasks, r.err, done[0].Version)
	}
}
