package statestore_test

import (
	"context"
	"testing"
	"time"

	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// Defect: issue 12 defect 2 — before 007, UpdateTask could move a task
// queued → running (and queued → terminating) without a claim, leaving
// claimed_by/claimed_at NULL, "and no recovery call ever finds it". The fix
// stops new ones, but migration 007 leaves the existing ones as they are
// (it only sets attempt = 1 where claimed_by IS NOT NULL). After upgrading,
// such a task is running/terminating with no claimer: RequeueStaleTasks
// (claimed_at < cutoff: NULL never matches) and RequeueTasksOfClaimer never
// recover it, and the README's "every running or terminating task has a
// claimer" does not hold for upgraded databases.
// Suggested fix: in 007, requeue running tasks without a claim (status
// queued, retry + 1) and terminate terminating ones without a claim (or give
// them a synthetic claim so recovery finds them); optionally a CHECK that
// running/terminating implies claimed_by IS NOT NULL.
// Fixed: the attempts migration requeues running tasks without a claimer
// (retry + 1) and terminates terminating ones, as recovery would. (No CHECK
// constraint: tools and tests insert running tasks without a claim.)
func TestMigrationRecoversUnclaimedRunningTasks(t *testing.T) {
	ctx := context.Background()
	db := statetest.NewEmpty(t)
	conn := connect(t, db.URL)
	// Version 9: just before 010_task_attempts.sql, the migration that
	// recovers them (not "latest - 1": later migrations come after it).
	if _, err := statestore.MigrateTo(ctx, conn, 9, quietLogger); err != nil {
		t.Fatal(err)
	}
	// What the pre-fix UpdateTask(queued → running / terminating) left behind.
	if _, err := conn.Exec(ctx, `INSERT INTO tasks (status, action) VALUES ('running', 'noop'), ('terminating', 'noop')`); err != nil {
		t.Fatal(err)
	}
	if _, err := statestore.Migrate(ctx, conn, quietLogger); err != nil {
		t.Fatal(err)
	}
	s := statestore.New(storePool(t, db), statestore.Options{})
	t.Cleanup(s.Close)
	got, err := s.RequeueStaleTasks(ctx, time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var stuck int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM tasks WHERE status IN ('running', 'terminating') AND claimed_by IS NULL`).Scan(&stuck); err != nil {
		t.Fatal(err)
	}
	var queued, terminated int
	if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'queued' AND retry = 1),
		count(*) FILTER (WHERE status = 'terminated' AND terminated_at IS NOT NULL) FROM tasks`).Scan(&queued, &terminated); err != nil {
		t.Fatal(err)
	}
	if queued != 1 || terminated != 1 {
		t.Errorf("after migrating: %d requeued (retry 1), %d terminated; want 1 and 1", queued, terminated)
	}
	if stuck != 0 {
		t.Fatalf("after migrating to %d and RequeueStaleTasks (recovered %d): %d running/terminating tasks have no claimer and can never be recovered",
			statestore.LatestSchemaVersion(), len(got), stuck)
	}
}
