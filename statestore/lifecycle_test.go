package statestore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/statestore"
)

// claimOne queues one task and claims it as claimer.
func claimOne(t *testing.T, s *statestore.Store, claimer string) *statestore.Task {
	t.Helper()
	ctx := context.Background()
	got, err := s.ClaimTasks(ctx, claimer, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("claim = %v, %v", got, err)
	}
	return got[0]
}

// Defect: orch-1 claims X, X is requeued as stale, orch-1 claims X again;
// the first attempt's late completion used to win over attempt 2.
func TestStaleAttemptCannotComplete(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	if _, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_node"}); err != nil {
		t.Fatal(err)
	}
	first := claimOne(t, s, "orch-1")
	if first.Attempt != 1 {
		t.Fatalf("first claim attempt = %d, want 1", first.Attempt)
	}
	if got, err := s.RequeueStaleTasks(ctx, time.Now().Add(time.Hour)); err != nil || len(got) != 1 || got[0].Status != statestore.StatusQueued {
		t.Fatalf("requeue stale = %v, %v", got, err)
	}
	second := claimOne(t, s, "orch-1") // same instance name, new attempt
	if second.ID != first.ID || second.Attempt != 2 {
		t.Fatalf("second claim = %s attempt %d, want %s attempt 2", second.ID, second.Attempt, first.ID)
	}

	failure := statestore.ResultFailure
	done := statestore.StatusComplete
	cur, err := s.GetTask(ctx, first.ID) // a stale worker that re-reads gets a fresh version, not a fresh claim
	if err != nil {
		t.Fatal(err)
	}
	stale := []struct {
		name string
		call func() error
	}{
		{"CompleteTasks", func() error { _, err := s.CompleteTasks(ctx, failure, first.Claim()); return err }},
		{"RequeueTasks", func() error { _, err := s.RequeueTasks(ctx, first.Claim()); return err }},
		{"UpdateTask", func() error {
			_, err := s.UpdateTask(ctx, first.ID, cur.Version, statestore.TaskUpdate{Status: &done, ResultStatus: &failure, Attempt: first.Attempt})
			return err
		}},
		{"UpdateTask without an attempt", func() error {
			_, err := s.UpdateTask(ctx, first.ID, cur.Version, statestore.TaskUpdate{ResultStatus: &failure})
			return err
		}},
	}
	for _, tc := range stale {
		err := tc.call()
		if !errors.Is(err, statestore.ErrStaleAttempt) || !errors.Is(err, statestore.ErrConflict) {
			t.Errorf("%s with attempt 1 while attempt 2 runs: %v, want ErrStaleAttempt (and ErrConflict)", tc.name, err)
		}
		after, err := s.GetTask(ctx, first.ID)
		if err != nil || after.Status != statestore.StatusRunning || after.Attempt != 2 || after.Version != cur.Version ||
			after.Result.Status != statestore.ResultIncomplete {
			t.Fatalf("after the stale %s: %+v, %v; want attempt 2 still running, untouched", tc.name, after, err)
		}
	}
	// The live attempt completes.
	got, err := s.CompleteTasks(ctx, statestore.ResultSuccess, second.Claim())
	if err != nil || len(got) != 1 || got[0].Status != statestore.StatusComplete || got[0].Attempt != 2 {
		t.Fatalf("complete attempt 2 = %v, %v", got, err)
	}
}

func TestRequeueTasksByOwner(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	if _, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"}); err != nil {
		t.Fatal(err)
	}
	c := claimOne(t, s, "a")
	back, err := s.RequeueTasks(ctx, c.Claim())
	if err != nil || len(back) != 1 || back[0].Status != statestore.StatusQueued || back[0].Retry != 1 || back[0].ClaimedBy != "" {
		t.Fatalf("requeue by owner = %+v, %v", back, err)
	}
	if _, err := s.RequeueTasks(ctx, c.Claim()); !errors.Is(err, statestore.ErrStaleAttempt) {
		t.Fatalf("requeue twice: %v, want ErrStaleAttempt", err)
	}
	if c2 := claimOne(t, s, "b"); c2.Attempt != 2 {
		t.Fatalf("claim after requeue: attempt %d, want 2", c2.Attempt)
	}
}

// Defect: UpdateTask queued → running made a running task nobody claimed
// (claimed_at NULL), which no recovery call ever found.
func TestOnlyClaimMakesTaskRunning(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	running := statestore.StatusRunning
	_, err = s.UpdateTask(ctx, task.ID, task.Version, statestore.TaskUpdate{Status: &running})
	wantInvalid(t, err, "status")
	if !strings.Contains(err.Error(), "only ClaimTasks makes a task running") {
		t.Errorf("error does not say why: %v", err)
	}
	got, err := s.GetTask(ctx, task.ID)
	if err != nil || got.Status != statestore.StatusQueued || got.Version != task.Version {
		t.Fatalf("after the refused update: %+v, %v", got, err)
	}
	if statestore.CanChange(statestore.StatusQueued, statestore.StatusRunning) {
		t.Error("CanChange(queued, running) = true")
	}
}

// The recovery rule for terminating tasks: a claim that recovery finds
// stale (or whose claimer is gone) ends a terminating task as terminated.
func TestRecoveryEndsOrphanedTerminatingTasks(t *testing.T) {
	ctx := context.Background()
	for _, how := range []string{"stale", "claimer"} {
		t.Run(how, func(t *testing.T) {
			s, _ := newStore(t, statestore.Options{})
			if _, err := s.CreateTasks(ctx, statestore.NewTask{Action: "noop"}, statestore.NewTask{Action: "noop"}); err != nil {
				t.Fatal(err)
			}
			a, b := claimOne(t, s, "gone"), claimOne(t, s, "gone")
			if _, err := s.TerminateTask(ctx, a.ID, "ops"); err != nil {
				t.Fatal(err)
			}
			var got []*statestore.Task
			var err error
			if how == "stale" {
				got, err = s.RequeueStaleTasks(ctx, time.Now().Add(time.Hour))
			} else {
				got, err = s.RequeueTasksOfClaimer(ctx, "gone")
			}
			if err != nil || len(got) != 2 {
				t.Fatalf("recovery = %v, %v", got, err)
			}
			for _, g := range got {
				want := map[uuid.UUID]statestore.TaskStatus{a.ID: statestore.StatusTerminated, b.ID: statestore.StatusQueued}[g.ID]
				if g.Status != want {
					t.Errorf("task %s after recovery: %s, want %s", g.ID, g.Status, want)
				}
				if g.Status == statestore.StatusTerminated && (g.TerminatedAt == nil || g.TerminatedBy != "ops") {
					t.Errorf("terminated task = %+v", g)
				}
			}
			// The gone worker's late write is stale.
			if _, err := s.UpdateTask(ctx, a.ID, 0, statestore.TaskUpdate{}); err == nil {
				t.Error("update of a recovered task with a stale version succeeded")
			}
		})
	}
}

// waitForLockWait waits until some backend of the database waits for a lock.
func waitForLockWait(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	waitForLockWaiters(t, pool, 1)
}

// Defect: TerminateTask racing CreateSubtask left parent=terminated,
// child=queued. Here the subtask's transaction is open (holding its
// parent share lock) when termination starts, and commits while
// termination waits: the new subtask must be marked.
func TestTerminateMarksSubtaskCreatedConcurrently(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	parent, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_nodes"})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	kid, err := s.WithTx(tx).CreateSubtask(ctx, parent.ID, statestore.NewTask{Action: "deploy_node"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var changed []*statestore.Task
	var terr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		changed, terr = s.TerminateTask(ctx, parent.ID, "ops")
	}()
	waitForLockWait(t, pool)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if terr != nil {
		t.Fatal(terr)
	}
	got, err := s.GetTask(ctx, kid.ID)
	if err != nil || got.Status != statestore.StatusTerminated || !got.Terminate {
		t.Fatalf("subtask created during termination: %s terminate=%t, %v; want terminated", got.Status, got.Terminate, err)
	}
	if len(changed) != 2 {
		t.Errorf("TerminateTask changed %d tasks, want parent and subtask", len(changed))
	}
}

// The other order: termination's transaction holds the tree when the
// subtask is created; the creation waits and is then refused.
func TestCreateSubtaskWaitsForTerminationAndIsRefused(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	parent, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_nodes"})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := s.WithTx(tx).TerminateTask(ctx, parent.ID, "ops"); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := s.CreateSubtask(ctx, parent.ID, statestore.NewTask{Action: "deploy_node"})
		errc <- err
	}()
	waitForLockWait(t, pool)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, statestore.ErrParentClosed) || !errors.Is(err, statestore.ErrConflict) {
		t.Fatalf("subtask under a parent being terminated: %v, want ErrParentClosed", err)
	}
	if n := count(t, pool, "SELECT count(*) FROM tasks"); n != 1 {
		t.Fatalf("%d tasks, want only the parent", n)
	}
}

// Many rounds of creation racing termination, with grandchildren: after
// TerminateTask returns nothing under the root is left unmarked.
func TestTerminateRacingCreateSubtaskStress(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	for round := 0; round < 20; round++ {
		root, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_nodes"})
		if err != nil {
			t.Fatal(err)
		}
		mid, err := s.CreateSubtask(ctx, root.ID, statestore.NewTask{Action: "deploy_node"})
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					for _, p := range []uuid.UUID{root.ID, mid.ID} {
						_, err := s.CreateSubtask(ctx, p, statestore.NewTask{Action: "noop"})
						if err != nil && !errors.Is(err, statestore.ErrParentClosed) {
							t.Error(err)
							return
						}
					}
				}
			}()
		}
		time.Sleep(5 * time.Millisecond)
		if _, err := s.TerminateTask(ctx, root.ID, "ops"); err != nil {
			t.Fatal(err)
		}
		unmarked := count(t, pool, `WITH RECURSIVE tree AS (SELECT task_id FROM tasks WHERE task_id = $1
			UNION ALL SELECT c.task_id FROM tasks c JOIN tree ON c.parent_task_id = tree.task_id)
			SELECT count(*) FROM tasks JOIN tree USING (task_id) WHERE status IN ('requested', 'queued', 'running')`, root.ID)
		close(stop)
		wg.Wait()
		if unmarked != 0 {
			t.Fatalf("round %d: %d tasks of the tree left unmarked when TerminateTask returned", round, unmarked)
		}
		if n := count(t, pool, `WITH RECURSIVE tree AS (SELECT task_id FROM tasks WHERE task_id = $1
			UNION ALL SELECT c.task_id FROM tasks c JOIN tree ON c.parent_task_id = tree.task_id)
			SELECT count(*) FROM tasks JOIN tree USING (task_id) WHERE status IN ('requested', 'queued', 'running')`, root.ID); n != 0 {
			t.Fatalf("round %d: %d tasks created under the terminated tree afterwards", round, n)
		}
	}
}

func TestCreateSubtaskUnderClosedParentRefused(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	terminated, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TerminateTask(ctx, terminated.ID, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"}); err != nil {
		t.Fatal(err)
	}
	terminating := claimOne(t, s, "w")
	if _, err := s.TerminateTask(ctx, terminating.ID, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"}); err != nil {
		t.Fatal(err)
	}
	complete := claimOne(t, s, "w")
	if _, err := s.CompleteTasks(ctx, statestore.ResultSuccess, complete.Claim()); err != nil {
		t.Fatal(err)
	}
	open, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop", Status: statestore.StatusRequested})
	if err != nil {
		t.Fatal(err)
	}
	before := count(t, pool, "SELECT count(*) FROM tasks")
	for name, parent := range map[string]uuid.UUID{"terminated": terminated.ID, "terminating": terminating.ID, "complete": complete.ID} {
		_, err := s.CreateSubtask(ctx, parent, statestore.NewTask{Action: "noop"})
		if !errors.Is(err, statestore.ErrParentClosed) || !strings.Contains(err.Error(), parent.String()+" is "+name) {
			t.Errorf("subtask under a %s parent: %v, want ErrParentClosed naming it", name, err)
		}
		// In a batch with a good parent: the whole batch is refused.
		p := parent
		_, err = s.CreateTasks(ctx, statestore.NewTask{Action: "noop", ParentID: &open.ID}, statestore.NewTask{Action: "noop", ParentID: &p})
		if !errors.Is(err, statestore.ErrParentClosed) {
			t.Errorf("batch with a subtask under a %s parent: %v, want ErrParentClosed", name, err)
		}
	}
	if n := count(t, pool, "SELECT count(*) FROM tasks"); n != before {
		t.Fatalf("refused subtasks wrote %d tasks", n-before)
	}
	if _, err := s.CreateSubtask(ctx, open.ID, statestore.NewTask{Action: "noop"}); err != nil {
		t.Fatalf("subtask under a requested parent: %v", err)
	}
}

// Defect: UpdateTask dereferenced a nil status when the UPDATE found no row
// but the re-read found the expected version (the creating transaction
// committed in between).
func TestUpdateTaskNeverPanicsWhenTheTaskAppearsMidCall(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	task, err := s.WithTx(tx).CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	defer statestore.SetStatementHook(func(ctx context.Context, where string) {
		if strings.HasPrefix(where, "UpdateTask: no row") {
			if err := tx.Commit(ctx); err != nil {
				t.Error(err)
			}
		}
	})()
	msg := "hello"
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("UpdateTask panicked: %v", p)
			}
		}()
		_, err = s.UpdateTask(ctx, task.ID, task.Version, statestore.TaskUpdate{ResultMessage: &msg})
	}()
	if !errors.Is(err, statestore.ErrConflict) {
		t.Fatalf("update racing the task's creation: %v, want ErrConflict", err)
	}
	got, err := s.GetTask(ctx, task.ID)
	if err != nil || got.Version != 1 || got.Result.Message != "" {
		t.Fatalf("task after the refused update: %+v, %v", got, err)
	}
}

// Defect: every CreateSubtask rewrote the parent's subtask array, so
// fan-out was quadratic. Now the parent row is not written at all.
func TestSubtaskDoesNotRewriteParent(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	parent, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_nodes"})
	if err != nil {
		t.Fatal(err)
	}
	ctid := func() string {
		var c string
		if err := pool.QueryRow(ctx, "SELECT ctid::text || '/' || xmin::text FROM tasks WHERE task_id = $1", parent.ID).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	before := ctid()
	var kids []uuid.UUID
	for i := 0; i < 5; i++ {
		k, err := s.CreateSubtask(ctx, parent.ID, statestore.NewTask{Action: "deploy_node"})
		if err != nil {
			t.Fatal(err)
		}
		kids = append(kids, k.ID)
	}
	if after := ctid(); after != before {
		t.Fatalf("creating subtasks rewrote the parent row (%s -> %s)", before, after)
	}
	got, err := s.GetTask(ctx, parent.ID)
	if err != nil || len(got.SubtaskIDs) != 5 {
		t.Fatalf("parent = %v, %v", got, err)
	}
	for i := range kids {
		if got.SubtaskIDs[i] != kids[i] {
			t.Fatalf("subtask ids %v, want %v (creation order)", got.SubtaskIDs, kids)
		}
	}
}

// Retention keeps a tree while any task in it is active: a root two hours
// old with a subtask running under orch-2 stays, and orch-2's completion
// still finds it.
func TestRetentionKeepsActiveTrees(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	active, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_nodes", Status: statestore.StatusRequested})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSubtask(ctx, active.ID, statestore.NewTask{Action: "deploy_node"}); err != nil {
		t.Fatal(err)
	}
	running := claimOne(t, s, "orch-2")
	finished, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop", Status: statestore.StatusRequested})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSubtask(ctx, finished.ID, statestore.NewTask{Action: "noop"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TerminateTask(ctx, finished.ID, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "UPDATE tasks SET created_at = now() - interval '2 hours'"); err != nil {
		t.Fatal(err)
	}
	cutoff := time.Now().Add(-time.Hour)
	preview, err := s.PreviewRetention(ctx, cutoff)
	if err != nil {
		t.Fatal(err)
	}
	wantPreview := &statestore.RetentionPreview{
		Finished: map[statestore.TaskStatus]int64{statestore.StatusTerminated: 2},
		Active:   map[statestore.TaskStatus]int64{statestore.StatusRequested: 1, statestore.StatusRunning: 1},
	}
	if diffs := cmp.Diff(wantPreview, preview); diffs != "" {
		t.Fatalf("preview (-want +got):\n%s", diffs)
	}
	res, err := s.DeleteTasksCreatedBefore(ctx, cutoff, statestore.RetentionOptions{BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := (statestore.RetentionResult{Tasks: 2, Batches: 2, TreesKept: 1}); res != want {
		t.Fatalf("retention = %+v, want %+v", res, want)
	}
	if _, err := s.CompleteTasks(ctx, statestore.ResultSuccess, running.Claim()); err != nil {
		t.Fatalf("orch-2's completion after the purge: %v", err)
	}
	res, err = s.DeleteTasksCreatedBefore(ctx, cutoff, statestore.RetentionOptions{IncludeActive: true})
	if err != nil || res.Tasks != 2 {
		t.Fatalf("retention with IncludeActive = %+v, %v", res, err)
	}
	if n := count(t, pool, "SELECT count(*) FROM tasks"); n != 0 {
		t.Fatalf("%d tasks left", n)
	}
}

// waitForLockWaiters waits until n backends of the database wait for a lock.
func waitForLockWaiters(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if count(t, pool, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'") >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("fewer than %d backends waited for a lock within 30 s", n)
}

// Found by TestTaskLifecycleModel's long run: a subtask is being created
// (its parent share-locked), the parent is then set terminated by
// UpdateTask (which does not cascade) and TerminateTask runs behind it.
// TerminateTask's first walk saw only the parent, final by the time its
// lock was granted, and stopped there, leaving the new subtask queued. A
// walk taken before any lock was held proves nothing: the tree must be
// walked again after the locks, until no task at all is new.
func TestTerminateAfterParentTerminatedByUpdateMarksNewSubtask(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	parent, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_nodes"})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	kid, err := s.WithTx(tx).CreateSubtask(ctx, parent.ID, statestore.NewTask{Action: "deploy_node"})
	if err != nil {
		t.Fatal(err)
	}
	updated := make(chan error, 1)
	go func() {
		terminated := statestore.StatusTerminated
		_, err := s.UpdateTask(ctx, parent.ID, parent.Version, statestore.TaskUpdate{Status: &terminated})
		updated <- err
	}()
	waitForLockWaiters(t, pool, 1)
	var changed []*statestore.Task
	terminated := make(chan error, 1)
	go func() {
		var err error
		changed, err = s.TerminateTask(ctx, parent.ID, "ops")
		terminated <- err
	}()
	waitForLockWaiters(t, pool, 2)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-updated; err != nil {
		t.Fatal(err)
	}
	if err := <-terminated; err != nil {
		t.Fatal(err)
	}
	got, err := s.GetTask(ctx, kid.ID)
	if err != nil || got.Status != statestore.StatusTerminated {
		t.Fatalf("subtask after TerminateTask returned: %v, %v; want terminated (changed: %d tasks)", got.Status, err, len(changed))
	}
}
