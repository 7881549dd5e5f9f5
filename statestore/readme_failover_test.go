package statestore_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// TestReadmeOrchestratorRecoversADeadLeadersClaims runs the README's
// orchestrator loop (readmeOrchestrator, the very region the README copies)
// after another instance led, claimed a task as leader and died before
// completing it. The README promises that every instance runs this loop and
// the leader does the work: the new leader must put the dead one's claim
// back in the queue and complete the task, not leave it running for ever.
func TestReadmeOrchestratorRecoversADeadLeadersClaims(t *testing.T) {
	// The deadline only bounds a broken run (the task stays running).
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	e := newExampleDB(ctx)
	defer e.close()
	e.setenv("DATABASE_URL", "STATEMGMT_ELECTOR_URL")
	queued := e.queue(ctx, "deploy_node")

	// orchestrator-1 is elected, claims the task as the loop does, and dies
	// before completing it: its session ends, its claim stays.
	dead, err := statestore.NewElector(statestore.ElectorConfig{ConnString: e.db.URL, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	deadCtx, die := context.WithCancel(ctx)
	var deposed *statestore.Store // orchestrator-1's fenced store, for its late writes
	var claim statestore.Claim
	err = dead.Run(deadCtx, func(ctx context.Context, term int64) error {
		defer die()
		deposed = e.store.AsLeader(term)
		claimed, err := deposed.ClaimTasks(ctx, "orchestrator-1", 10, "deploy_node")
		if err == nil && (len(claimed) != 1 || claimed[0].ID != queued.ID) {
			err = errors.New("orchestrator-1 did not claim the queued task")
		}
		if err == nil {
			claim = claimed[0].Claim()
		}
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("orchestrator-1's Run: %v, want it ended by its context", err)
	}
	if held := e.task(queued.ID); held.Status != statestore.StatusRunning || held.ClaimedBy != "orchestrator-1" {
		t.Fatalf("before orchestrator-2: task %s claimed by %q, want running, claimed by orchestrator-1", held.Status, held.ClaimedBy)
	}

	// orchestrator-2 runs the README's loop until the task is complete.
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		e.cancelWhenComplete(ctx, cancel, queued.ID)
	}()
	err = readmeOrchestrator(ctx, slog.New(slog.DiscardHandler), "orchestrator-2")
	<-watched
	done := e.task(queued.ID)
	if done.Status != statestore.StatusComplete || done.ClaimedBy != "orchestrator-2" {
		t.Fatalf("the README's loop as orchestrator-2 (ended: %v) left the dead leader's task %s, claimed by %q; want complete, claimed by orchestrator-2",
			err, done.Status, done.ClaimedBy)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("readmeOrchestrator: %v, want it ended by its context", err)
	}

	// What the README says of a deposed leader's writes: its claims are
	// fenced, and its completion of the claim it held is refused.
	late := t.Context() // ctx ended with the loop
	if _, err := e.store.CreateTask(late, statestore.NewTask{Action: "deploy_node", CreatedBy: "example"}); err != nil {
		t.Fatal(err)
	}
	if got, err := deposed.ClaimTasks(late, "orchestrator-1", 10, "deploy_node"); !errors.Is(err, statestore.ErrNotLeader) {
		t.Errorf("the deposed leader's ClaimTasks = %v, %v; want ErrNotLeader", got, err)
	}
	if _, err := deposed.CompleteTasks(late, statestore.ResultSuccess, claim); !errors.Is(err, statestore.ErrStaleAttempt) {
		t.Errorf("the deposed leader's CompleteTasks of its old claim: %v, want ErrStaleAttempt", err)
	}
}

// TestReadmeOrchestratorMigratesAFreshDatabase runs the README's
// orchestrator loop on a database nobody migrated, as a newcomer copying it
// would: it migrates at start-up, is elected and completes a task queued
// once the schema is there (without the migration its elector only logged
// `relation "leadership_fence" does not exist`, retrying for ever).
func TestReadmeOrchestratorMigratesAFreshDatabase(t *testing.T) {
	// The deadline only bounds a broken run (the schema never appears).
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	db := statetest.NewEmpty(t)
	t.Setenv("DATABASE_URL", db.URL)
	t.Setenv("STATEMGMT_ELECTOR_URL", db.URL)

	ended := make(chan error, 1)
	go func() { ended <- readmeOrchestrator(ctx, slog.New(slog.DiscardHandler), "orchestrator-1") }()

	pool, err := pgxpool.New(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store := statestore.New(pool, statestore.Options{})
	defer store.Close()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for v := int32(0); v != statestore.LatestSchemaVersion(); {
		select {
		case <-ctx.Done():
			t.Fatalf("the README's loop left the fresh database at schema version %d, not %d", v, statestore.LatestSchemaVersion())
		case err := <-ended:
			t.Fatalf("the README's loop ended before migrating: %v", err)
		case <-tick.C:
		}
		conn, err := pool.Acquire(ctx)
		if err != nil {
			t.Logf("acquire: %v (polling again)", err)
			continue
		}
		got, err := statestore.SchemaVersion(ctx, conn.Conn())
		conn.Release()
		if err != nil {
			t.Logf("schema version: %v (polling again)", err)
			continue
		}
		v = got
	}
	queued, err := store.CreateTask(ctx, statestore.NewTask{Action: "deploy_node", CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case <-ctx.Done():
			t.Fatalf("the README's loop did not complete the task queued after the migration")
		case err := <-ended:
			t.Fatalf("the README's loop ended: %v", err)
		case <-tick.C:
		}
		if done, err := store.GetTask(ctx, queued.ID); err == nil && done.Status == statestore.StatusComplete {
			break
		}
	}
	cancel()
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Errorf("readmeOrchestrator: %v, want it ended by its context", err)
	}
}
