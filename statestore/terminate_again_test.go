package statestore_test

import (
	"context"
	"testing"

	"github.com/drydock-go/statemgmt/statestore"
)

// TerminateTask on a task already terminating leaves it alone: who asked
// first stays recorded, the version does not move, and it is not reported
// as changed.
func TestTerminateAgainLeavesTerminatingTaskAlone(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	if _, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"}); err != nil {
		t.Fatal(err)
	}
	a := claimOne(t, s, "w1")
	first, err := s.TerminateTask(ctx, a.ID, "ops")
	if err != nil || len(first) != 1 || first[0].Status != statestore.StatusTerminating {
		t.Fatalf("first TerminateTask: %v, %v; want the task terminating", first, err)
	}
	again, err := s.TerminateTask(ctx, a.ID, "someone-else")
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Errorf("second TerminateTask reported %d tasks changed; want none", len(again))
	}
	got, err := s.GetTask(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.TerminatedBy != "ops" || got.Version != first[0].Version || got.Status != statestore.StatusTerminating {
		t.Errorf("after the second TerminateTask: by %q, version %d, %s; want by ops, version %d, terminating",
			got.TerminatedBy, got.Version, got.Status, first[0].Version)
	}
}
