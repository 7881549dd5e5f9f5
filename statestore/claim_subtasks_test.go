package statestore_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/statestore"
)

// ClaimTasks and CompleteTasks return each task's subtasks, oldest first,
// as GetTask does (they are computed for the whole batch in one join).
func TestClaimAndCompleteReturnSubtaskIDs(t *testing.T) {
	ctx := ctxTimeout(t, 60*time.Second)
	s, _ := newStore(t, statestore.Options{})
	parent, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	var kids []uuid.UUID
	for range 3 {
		kid, err := s.CreateSubtask(ctx, parent.ID, statestore.NewTask{Action: "other"})
		if err != nil {
			t.Fatal(err)
		}
		kids = append(kids, kid.ID)
	}
	claimed, err := s.ClaimTasks(ctx, "w", 10, "noop")
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 1 || claimed[0].ID != parent.ID {
		t.Fatalf("claimed %v, want the parent only", claimed)
	}
	if diff := cmp.Diff(kids, claimed[0].SubtaskIDs); diff != "" {
		t.Errorf("ClaimTasks subtask ids (-want +got):\n%s", diff)
	}
	done, err := s.CompleteTasks(ctx, statestore.ResultSuccess, claimed[0].Claim())
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 1 {
		t.Fatalf("completed %d tasks, want 1", len(done))
	}
	if diff := cmp.Diff(kids, done[0].SubtaskIDs); diff != "" {
		t.Errorf("CompleteTasks subtask ids (-want +got):\n%s", diff)
	}
	leaf, err := s.ClaimTasks(ctx, "w", 1, "other")
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf) != 1 || leaf[0].ID != kids[0] || len(leaf[0].SubtaskIDs) != 0 {
		t.Fatalf("claimed %+v, want the oldest subtask, with no subtasks", leaf)
	}
}
