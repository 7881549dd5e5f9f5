package statestore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/statestore"
)

func statusPtr(s statestore.TaskStatus) *statestore.TaskStatus { return &s }

// ignoreServerTimes leaves out fields the database sets.
var ignoreServerTimes = cmpopts.IgnoreFields(statestore.Task{}, "CreatedAt", "UpdatedAt")

// Port of the original's task scenarios: insert, select, list, subtask
// append, and the error count over two messages of which one is an error.
func TestTaskInsertSelectList(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})

	nt := statestore.NewTask{
		ID: uuid.New(), Action: "deploy_nodes", DesignRef: "http://design.example/site.yaml",
		NodeFilter: json.RawMessage(`{"filter_set": []}`), RequestContext: json.RawMessage(`{"user": "ops"}`),
		CreatedBy: "ops",
	}
	created, err := s.CreateTask(ctx, nt)
	if err != nil {
		t.Fatal(err)
	}
	want := &statestore.Task{
		ID: nt.ID, SubtaskIDs: []uuid.UUID{}, Status: statestore.StatusQueued, Action: nt.Action,
		DesignRef: nt.DesignRef, NodeFilter: nt.NodeFilter, RequestContext: nt.RequestContext, CreatedBy: "ops",
		Result: statestore.TaskResult{Status: statestore.ResultIncomplete, Successes: []string{}, Failures: []string{},
			Links: json.RawMessage(`[]`)},
		Version: 1,
	}
	if diff := cmp.Diff(want, created, ignoreServerTimes, jsonEqual); diff != "" {
		t.Fatalf("CreateTask (-want +got):\n%s", diff)
	}
	if created.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt is in %v, want UTC", created.CreatedAt.Location())
	}
	got, err := s.GetTask(ctx, nt.ID)
	if err != nil {
		t.Fatal(err)
	}
	want.Messages = []statestore.ResultMessage{}
	if diff := cmp.Diff(want, got, ignoreServerTimes, jsonEqual); diff != "" {
		t.Fatalf("GetTask (-want +got):\n%s", diff)
	}

	second, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	if second.ID.Version() != 7 {
		t.Errorf("generated id is UUID version %d, want 7 (time-ordered)", second.ID.Version())
	}
	page, err := s.ListTasks(ctx, statestore.TaskFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Tasks) != 2 || page.Next != "" {
		t.Fatalf("ListTasks = %d tasks, next %q; want 2, none", len(page.Tasks), page.Next)
	}

	if _, err := s.GetTask(ctx, uuid.New()); !errors.Is(err, statestore.ErrNotFound) {
		t.Fatalf("GetTask(missing) error = %v, want ErrNotFound", err)
	}
}

func TestSubtaskAppendAndSets(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	parent, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_nodes"})
	if err != nil {
		t.Fatal(err)
	}
	var kids []uuid.UUID
	for i := 0; i < 4; i++ {
		k, err := s.CreateSubtask(ctx, parent.ID, statestore.NewTask{Action: "deploy_node"})
		if err != nil {
			t.Fatal(err)
		}
		if k.ParentID == nil || *k.ParentID != parent.ID {
			t.Fatalf("subtask parent = %v", k.ParentID)
		}
		kids = append(kids, k.ID)
	}
	got, err := s.GetTask(ctx, parent.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(kids, got.SubtaskIDs); diff != "" {
		t.Fatalf("parent's subtask list (-want +got):\n%s", diff)
	}
	if got.Version != parent.Version {
		t.Errorf("adding subtasks changed the parent's version %d -> %d", parent.Version, got.Version)
	}

	// Finish two: one complete, one terminated.
	claimed, err := s.ClaimTasks(ctx, "w1", 2, "deploy_node")
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim = %d, %v", len(claimed), err)
	}
	if _, err := s.UpdateTask(ctx, claimed[0].ID, claimed[0].Version, statestore.TaskUpdate{Status: statusPtr(statestore.StatusComplete), Attempt: claimed[0].Attempt}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateTask(ctx, claimed[1].ID, claimed[1].Version, statestore.TaskUpdate{Status: statusPtr(statestore.StatusTerminated), Attempt: claimed[1].Attempt}); err != nil {
		t.Fatal(err)
	}
	ids := func(ts []*statestore.Task) []uuid.UUID {
		out := []uuid.UUID{}
		for _, t := range ts {
			out = append(out, t.ID)
		}
		return out
	}
	for _, tc := range []struct {
		set  statestore.SubtaskSet
		want []uuid.UUID
	}{
		{statestore.AllSubtasks, kids},
		{statestore.CompleteSubtasks, kids[:2]},
		{statestore.ActiveSubtasks, kids[2:]},
	} {
		got, err := s.ListSubtasks(ctx, parent.ID, tc.set)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, ids(got)); diff != "" {
			t.Errorf("ListSubtasks(set %d) (-want +got):\n%s", tc.set, diff)
		}
	}
}

func TestErrorCountOverMessages(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "verify_site"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "Test message 1", Context: "node1", ContextType: "node"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "Test error message", Error: true, Context: "node1", ContextType: "node"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetTask(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Result.ErrorCount != 1 || len(got.Messages) != 2 || got.LastMessageSeq != 2 {
		t.Fatalf("error count %d, %d messages, last seq %d; want 1, 2, 2", got.Result.ErrorCount, len(got.Messages), got.LastMessageSeq)
	}
	if got.Messages[0].Sequence != 1 || got.Messages[1].Sequence != 2 || !got.Messages[1].Error {
		t.Fatalf("messages out of order: %+v", got.Messages)
	}
	if got.Version != task.Version {
		t.Errorf("appending messages changed the version %d -> %d", task.Version, got.Version)
	}
}

func TestCreateTasksBatch(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	root := uuid.New()
	mid := uuid.New()
	batch := []statestore.NewTask{
		{ID: root, Action: "deploy_nodes", Status: statestore.StatusRequested},
		{ID: mid, ParentID: &root, Action: "prepare_nodes"},
		{ParentID: &mid, Action: "power_on_node"},
		{ParentID: &mid, Action: "power_on_node"},
	}
	got, err := s.CreateTasks(ctx, batch...)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[0].ID != root || got[1].ID != mid {
		t.Fatalf("CreateTasks returned tasks out of order: %v", got)
	}
	if diff := cmp.Diff([]uuid.UUID{mid}, got[0].SubtaskIDs); diff != "" {
		t.Errorf("in-batch parent's subtask list (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]uuid.UUID{got[2].ID, got[3].ID}, got[1].SubtaskIDs); diff != "" {
		t.Errorf("in-batch parent's subtask list (-want +got):\n%s", diff)
	}
	if got[0].Status != statestore.StatusRequested || got[2].Status != statestore.StatusQueued {
		t.Errorf("statuses = %s, %s", got[0].Status, got[2].Status)
	}

	// Existing parent plus new children in one batch.
	more, err := s.CreateTasks(ctx, statestore.NewTask{ParentID: &root, Action: "verify_nodes"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.GetTask(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]uuid.UUID{mid, more[0].ID}, r.SubtaskIDs); diff != "" {
		t.Errorf("existing parent's subtask list (-want +got):\n%s", diff)
	}

	before := count(t, pool, "SELECT count(*) FROM tasks")
	missing := uuid.New()
	_, err = s.CreateTasks(ctx, statestore.NewTask{Action: "noop"}, statestore.NewTask{ParentID: &missing, Action: "noop"})
	if !errors.Is(err, statestore.ErrNotFound) {
		t.Fatalf("missing parent: error = %v, want ErrNotFound", err)
	}
	_, err = s.CreateTasks(ctx, statestore.NewTask{Action: "noop"}, statestore.NewTask{ID: root, Action: "noop"})
	if !errors.Is(err, statestore.ErrConflict) {
		t.Fatalf("taken id: error = %v, want ErrConflict", err)
	}
	if after := count(t, pool, "SELECT count(*) FROM tasks"); after != before {
		t.Fatalf("failed batches wrote %d tasks", after-before)
	}
}

func TestListTasksFiltersAndPages(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	parent, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_nodes", Status: statestore.StatusRequested})
	if err != nil {
		t.Fatal(err)
	}
	var batch []statestore.NewTask
	for i := 0; i < 25; i++ {
		nt := statestore.NewTask{Action: "noop"}
		if i%5 == 0 {
			nt.Action, nt.ParentID = "deploy_node", &parent.ID
		}
		batch = append(batch, nt)
	}
	if _, err := s.CreateTasks(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	// Spread creation times so ordering and time filters mean something.
	if _, err := pool.Exec(ctx, `UPDATE tasks SET created_at = now() - (random() * interval '10 days')`); err != nil {
		t.Fatal(err)
	}

	// Page through everything, 7 at a time: newest first, nothing twice.
	var all []*statestore.Task
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		page, err := s.ListTasks(ctx, statestore.TaskFilter{Limit: 7, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Tasks...)
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if len(all) != 26 {
		t.Fatalf("paged through %d tasks, want 26", len(all))
	}
	seen := map[uuid.UUID]bool{}
	for i, task := range all {
		if seen[task.ID] {
			t.Fatalf("task %s listed twice", task.ID)
		}
		seen[task.ID] = true
		if i > 0 && task.CreatedAt.After(all[i-1].CreatedAt) {
			t.Fatalf("not newest first at %d", i)
		}
	}

	mid := all[13].CreatedAt
	tests := []struct {
		name   string
		filter statestore.TaskFilter
		want   func(*statestore.Task) bool
	}{
		{"by status", statestore.TaskFilter{Statuses: []statestore.TaskStatus{statestore.StatusRequested}},
			func(x *statestore.Task) bool { return x.Status == statestore.StatusRequested }},
		{"by action", statestore.TaskFilter{Actions: []string{"deploy_node", "deploy_nodes"}},
			func(x *statestore.Task) bool { return x.Action != "noop" }},
		{"by parent", statestore.TaskFilter{ParentID: &parent.ID},
			func(x *statestore.Task) bool { return x.ParentID != nil }},
		{"created before", statestore.TaskFilter{CreatedBefore: &mid},
			func(x *statestore.Task) bool { return x.CreatedAt.Before(mid) }},
		{"created after", statestore.TaskFilter{CreatedAfter: &mid},
			func(x *statestore.Task) bool { return x.CreatedAt.After(mid) }},
		{"status and action", statestore.TaskFilter{Statuses: []statestore.TaskStatus{statestore.StatusQueued}, Actions: []string{"noop"}},
			func(x *statestore.Task) bool { return x.Status == statestore.StatusQueued && x.Action == "noop" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			page, err := s.ListTasks(ctx, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			var want, got []uuid.UUID
			for _, x := range all {
				if tc.want(x) {
					want = append(want, x.ID)
				}
			}
			for _, x := range page.Tasks {
				got = append(got, x.ID)
			}
			if len(want) == 0 {
				t.Fatal("test data selects nothing")
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	if _, err := s.ListTasks(ctx, statestore.TaskFilter{Cursor: "not-a-cursor"}); err == nil {
		t.Error("a bad cursor was accepted")
	}
	_, err = s.ListTasks(ctx, statestore.TaskFilter{Statuses: []statestore.TaskStatus{"done"}})
	wantInvalid(t, err, "filter.Statuses[0]")
}

func TestListTasksWithMessagesCostsTwoQueries(t *testing.T) {
	ctx := context.Background()
	s, counter := newCountingStore(t)
	var batch []statestore.NewTask
	for i := 0; i < 50; i++ {
		batch = append(batch, statestore.NewTask{Action: "noop"})
	}
	tasks, err := s.CreateTasks(ctx, batch...)
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		if _, err := s.AppendMessages(ctx, task.ID, statestore.NewMessage{Message: "a"}, statestore.NewMessage{Message: "b", Error: true}); err != nil {
			t.Fatal(err)
		}
	}
	before := counter.n.Load()
	page, err := s.ListTasks(ctx, statestore.TaskFilter{WithMessages: true, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	if n := counter.n.Load() - before; n != 2 {
		t.Fatalf("listing 50 tasks with messages sent %d queries, want 2", n)
	}
	for _, task := range page.Tasks {
		if len(task.Messages) != 2 || task.Messages[0].Message != "a" || task.Messages[1].Sequence != 2 || task.Result.ErrorCount != 1 {
			t.Fatalf("task %s messages = %+v, error count %d", task.ID, task.Messages, task.Result.ErrorCount)
		}
	}
}

func TestCanChange(t *testing.T) {
	all := []statestore.TaskStatus{statestore.StatusRequested, statestore.StatusQueued, statestore.StatusRunning,
		statestore.StatusTerminating, statestore.StatusTerminated, statestore.StatusComplete}
	allowed := map[[2]statestore.TaskStatus]bool{
		{"requested", "queued"}: true, {"running", "complete"}: true, // running: only by a claim
		{"running", "terminating"}:  true, // not requested/queued → terminating: nobody would finish it
		{"requested", "terminated"}: true, {"queued", "terminated"}: true, {"running", "terminated"}: true,
		{"terminating", "terminated"}: true,
	}
	for _, from := range all {
		for _, to := range all {
			want := from == to || allowed[[2]statestore.TaskStatus{from, to}]
			if got := statestore.CanChange(from, to); got != want {
				t.Errorf("CanChange(%s, %s) = %v, want %v", from, to, got, want)
			}
		}
	}
}

func TestUpdateTaskOptimistic(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "prepare_site", Status: statestore.StatusRequested})
	if err != nil {
		t.Fatal(err)
	}
	rs := statestore.ResultPartialSuccess
	msg, reason := "half done", "n3 unreachable"
	upd, err := s.UpdateTask(ctx, task.ID, task.Version, statestore.TaskUpdate{
		Status: statusPtr(statestore.StatusQueued), ResultStatus: &rs, ResultMessage: &msg, ResultReason: &reason,
		Successes: []string{"n1"}, Failures: []string{"n3"}, Links: json.RawMessage(`[{"rel":"log"}]`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if upd.Version != task.Version+1 || upd.Status != statestore.StatusQueued || upd.Result.Status != rs ||
		upd.Result.Message != msg || upd.Result.Reason != reason || !cmp.Equal(upd.Result.Failures, []string{"n3"}) {
		t.Fatalf("updated task = %+v", upd)
	}

	// The old version is stale now.
	_, err = s.UpdateTask(ctx, task.ID, task.Version, statestore.TaskUpdate{ResultMessage: &reason})
	if !errors.Is(err, statestore.ErrConflict) {
		t.Fatalf("stale version: error = %v, want ErrConflict", err)
	}
	// queued → complete skips running: invalid.
	_, err = s.UpdateTask(ctx, task.ID, upd.Version, statestore.TaskUpdate{Status: statusPtr(statestore.StatusComplete)})
	wantInvalid(t, err, "status")
	_, err = s.UpdateTask(ctx, uuid.New(), 1, statestore.TaskUpdate{ResultMessage: &msg})
	if !errors.Is(err, statestore.ErrNotFound) {
		t.Fatalf("missing task: error = %v, want ErrNotFound", err)
	}
	again, err := s.GetTask(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if again.Version != upd.Version || again.Status != statestore.StatusQueued {
		t.Fatalf("a rejected update wrote: version %d status %s", again.Version, again.Status)
	}
	// Terminated sets the time.
	term, err := s.UpdateTask(ctx, task.ID, upd.Version, statestore.TaskUpdate{Status: statusPtr(statestore.StatusTerminated), TerminatedBy: &msg})
	if err != nil {
		t.Fatal(err)
	}
	if term.TerminatedAt == nil || term.TerminatedBy != msg {
		t.Fatalf("terminated task = %+v", term)
	}
	_ = pool
}

func TestConcurrentUpdatesOneWinnerPerVersion(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	version := task.Version
	for round := 0; round < 5; round++ {
		const writers = 16
		var wg sync.WaitGroup
		var mu sync.Mutex
		var winners []string
		conflicts := 0
		start := make(chan struct{})
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				m := fmt.Sprintf("writer %d", w)
				_, err := s.UpdateTask(ctx, task.ID, version, statestore.TaskUpdate{ResultMessage: &m})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					winners = append(winners, m)
				case errors.Is(err, statestore.ErrConflict):
					conflicts++
				default:
					t.Errorf("writer %d: %v", w, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(winners) != 1 || conflicts != writers-1 {
			t.Fatalf("round %d: %d winners, %d conflicts; want 1 and %d", round, len(winners), conflicts, writers-1)
		}
		got, err := s.GetTask(ctx, task.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Result.Message != winners[0] || got.Version != version+1 {
			t.Fatalf("round %d: stored %q v%d, winner %q", round, got.Result.Message, got.Version, winners[0])
		}
		version = got.Version
	}
}

func TestUpdateDoesNotClobberConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			if _, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "m", Error: i%2 == 0}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		v := task.Version
		for i := 0; i < 100; i++ {
			m := fmt.Sprint(i)
			u, err := s.UpdateTask(ctx, task.ID, v, statestore.TaskUpdate{ResultMessage: &m})
			if err != nil {
				t.Error(err)
				return
			}
			v = u.Version
		}
	}()
	wg.Wait()
	got, err := s.GetTask(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Messages) != 200 || got.LastMessageSeq != 200 || got.Result.ErrorCount != 100 || got.Result.Message != "99" {
		t.Fatalf("after racing: %d messages, last seq %d, errors %d, result %q",
			len(got.Messages), got.LastMessageSeq, got.Result.ErrorCount, got.Result.Message)
	}
}

func TestClaimOldestFirstWithActions(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	var batch []statestore.NewTask
	actions := []string{"verify_nodes", "prepare_nodes", "deploy_nodes"}
	for i := 0; i < 9; i++ {
		batch = append(batch, statestore.NewTask{Action: actions[i%3]})
	}
	batch = append(batch, statestore.NewTask{Action: "deploy_nodes", Status: statestore.StatusRequested})
	created, err := s.CreateTasks(ctx, batch...)
	if err != nil {
		t.Fatal(err)
	}
	// Make creation order explicit: task i is i minutes old... reversed.
	for i, c := range created {
		if _, err := pool.Exec(ctx, "UPDATE tasks SET created_at = now() - make_interval(mins => $2) WHERE task_id = $1", c.ID, 100-i); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ClaimTasks(ctx, "orch-a", 2, "deploy_nodes")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("claimed %d, want 2", len(got))
	}
	sort.Slice(got, func(i, j int) bool { return got[i].CreatedAt.Before(got[j].CreatedAt) })
	if got[0].ID != created[2].ID || got[1].ID != created[5].ID {
		t.Fatalf("claimed %s, %s; want the two oldest deploy_nodes tasks %s, %s", got[0].ID, got[1].ID, created[2].ID, created[5].ID)
	}
	for _, c := range got {
		if c.Status != statestore.StatusRunning || c.ClaimedBy != "orch-a" || c.ClaimedAt == nil || c.Version != 2 {
			t.Fatalf("claimed task = %+v", c)
		}
	}
	rest, err := s.ClaimTasks(ctx, "orch-b", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 7 {
		t.Fatalf("claimed %d of the remaining queued tasks, want 7 (the requested one is not queued)", len(rest))
	}
	none, err := s.ClaimTasks(ctx, "orch-b", 100)
	if err != nil || len(none) != 0 {
		t.Fatalf("claim from empty queue = %d, %v", len(none), err)
	}

	_, err = s.ClaimTasks(ctx, "", 1)
	wantInvalid(t, err, "claimer")
	_, err = s.ClaimTasks(ctx, "x", 0)
	wantInvalid(t, err, "max")
}

// 16 claimers over 20 000 queued tasks: every task claimed exactly once.
func TestConcurrentClaimersNeverShareATask(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	const total, claimers = 20000, 16
	for i := 0; i < total; i += 1000 {
		batch := make([]statestore.NewTask, 1000)
		for j := range batch {
			batch[j] = statestore.NewTask{Action: "noop"}
		}
		if _, err := s.CreateTasks(ctx, batch...); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	claimedBy := make(map[uuid.UUID]string, total)
	var wg sync.WaitGroup
	for c := 0; c < claimers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("claimer-%d", c)
			for {
				got, err := s.ClaimTasks(ctx, name, 25)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, task := range got {
					if prev, dup := claimedBy[task.ID]; dup {
						t.Errorf("task %s claimed by %s and %s", task.ID, prev, name)
					}
					claimedBy[task.ID] = name
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(claimedBy) != total {
		t.Fatalf("%d distinct tasks claimed, want %d", len(claimedBy), total)
	}
	if n := count(t, pool, "SELECT count(*) FROM tasks WHERE status = 'running' AND claimed_by IS NOT NULL"); n != total {
		t.Fatalf("%d running claimed tasks in the table, want %d", n, total)
	}
	// The database agrees with what each claimer was told.
	rows, err := pool.Query(ctx, "SELECT task_id, claimed_by FROM tasks")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var by string
		if err := rows.Scan(&id, &by); err != nil {
			t.Fatal(err)
		}
		if claimedBy[id] != by {
			t.Fatalf("task %s: table says %s, claimer %s was told", id, by, claimedBy[id])
		}
	}
}

func TestRequeue(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	if _, err := s.CreateTasks(ctx, statestore.NewTask{Action: "noop"}, statestore.NewTask{Action: "noop"}, statestore.NewTask{Action: "noop"}); err != nil {
		t.Fatal(err)
	}
	a, err := s.ClaimTasks(ctx, "gone", 2)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.ClaimTasks(ctx, "alive", 1)
	if err != nil {
		t.Fatal(err)
	}
	back, err := s.RequeueTasksOfClaimer(ctx, "gone")
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 2 {
		t.Fatalf("requeued %d, want 2", len(back))
	}
	for _, task := range back {
		if task.Status != statestore.StatusQueued || task.ClaimedBy != "" || task.ClaimedAt != nil || task.Retry != 1 {
			t.Fatalf("requeued task = %+v", task)
		}
	}
	_ = a
	// By age: pretend alive's claim is an hour old.
	if _, err := pool.Exec(ctx, "UPDATE tasks SET claimed_at = now() - interval '1 hour' WHERE task_id = $1", b[0].ID); err != nil {
		t.Fatal(err)
	}
	again, err := s.ClaimTasks(ctx, "fresh", 2)
	if err != nil || len(again) != 2 {
		t.Fatalf("reclaim = %d, %v", len(again), err)
	}
	stale, err := s.RequeueStaleTasks(ctx, time.Now().Add(-30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) != 1 || stale[0].ID != b[0].ID {
		t.Fatalf("requeued stale = %v, want only %s", stale, b[0].ID)
	}
}

func TestClaimWaitWakesOnNotify(t *testing.T) {
	needsListen(t)
	// A poll interval far longer than the test: only a notification can
	// wake the claimer in time.
	s, _ := newStore(t, statestore.Options{PollInterval: time.Hour})
	ctx := ctxTimeout(t, 60*time.Second)
	// Start the listener and let it connect before the task is queued.
	if err := s.WaitForQueued(ctxTimeout(t, 200*time.Millisecond)); err == nil {
		t.Log("woken during warm-up (listener's initial wake)")
	}
	got := make(chan []*statestore.Task, 1)
	errs := make(chan error, 1)
	go func() {
		tasks, err := s.ClaimTasksWait(ctx, "waiter", 1)
		if err != nil {
			errs <- err
			return
		}
		got <- tasks
	}()
	time.Sleep(300 * time.Millisecond) // the waiter is now waiting
	created, err := s.CreateTask(context.Background(), statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case tasks := <-got:
		if len(tasks) != 1 || tasks[0].ID != created.ID {
			t.Fatalf("woken claimer got %v", tasks)
		}
	case err := <-errs:
		t.Fatalf("ClaimTasksWait: %v (not woken by NOTIFY)", err)
	}
}

func TestClaimWaitPollsWithoutListen(t *testing.T) {
	s, _ := newStore(t, statestore.Options{PollInterval: 50 * time.Millisecond, DisableListen: true})
	ctx := ctxTimeout(t, 30*time.Second)
	go func() {
		time.Sleep(200 * time.Millisecond)
		if _, err := s.CreateTask(context.Background(), statestore.NewTask{Action: "noop"}); err != nil {
			t.Error(err)
		}
	}()
	tasks, err := s.ClaimTasksWait(ctx, "poller", 5)
	if err != nil || len(tasks) != 1 {
		t.Fatalf("polling claimer = %v, %v", tasks, err)
	}
	// A cancelled wait returns the context's error.
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.ClaimTasksWait(cctx, "poller", 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait error = %v", err)
	}
}

func TestTerminateTree(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	root, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_nodes"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimTasks(ctx, "orch", 1); err != nil { // root → running
		t.Fatal(err)
	}
	kids, err := s.CreateTasks(ctx,
		statestore.NewTask{ParentID: &root.ID, Action: "deploy_node", Status: statestore.StatusRequested},
		statestore.NewTask{ParentID: &root.ID, Action: "deploy_node"})
	if err != nil {
		t.Fatal(err)
	}
	grandkid, err := s.CreateSubtask(ctx, kids[1].ID, statestore.NewTask{Action: "power_on_node"})
	if err != nil {
		t.Fatal(err)
	}
	done, err := s.CreateSubtask(ctx, kids[1].ID, statestore.NewTask{Action: "power_on_node"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.ClaimTasks(ctx, "w", 1, "power_on_node")
	if err != nil || len(c) != 1 {
		t.Fatal(c, err)
	}
	completeID := c[0].ID
	if _, err := s.UpdateTask(ctx, c[0].ID, c[0].Version, statestore.TaskUpdate{Status: statusPtr(statestore.StatusComplete), Attempt: c[0].Attempt}); err != nil {
		t.Fatal(err)
	}
	changed, err := s.TerminateTask(ctx, root.ID, "operator")
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 4 {
		t.Fatalf("terminate changed %d tasks, want 4 (the complete one stays)", len(changed))
	}
	want := map[uuid.UUID]statestore.TaskStatus{root.ID: statestore.StatusTerminating,
		kids[0].ID: statestore.StatusTerminated, kids[1].ID: statestore.StatusTerminated,
		completeID: statestore.StatusComplete}
	other := grandkid.ID
	if completeID == grandkid.ID {
		other = done.ID
	}
	want[other] = statestore.StatusTerminated
	for id, st := range want {
		got, err := s.GetTask(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != st {
			t.Errorf("task %s: status %s, want %s", id, got.Status, st)
		}
		if st != statestore.StatusComplete && (!got.Terminate || got.TerminatedBy != "operator") {
			t.Errorf("task %s: terminate %v by %q", id, got.Terminate, got.TerminatedBy)
		}
		if st == statestore.StatusTerminated && got.TerminatedAt == nil {
			t.Errorf("task %s: terminated without a time", id)
		}
	}
	if _, err := s.TerminateTask(ctx, uuid.New(), "x"); !errors.Is(err, statestore.ErrNotFound) {
		t.Fatalf("terminate missing task: %v", err)
	}
}

func TestRetentionDeletesOldTreesInBatches(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	var oldRoots []uuid.UUID
	for i := 0; i < 7; i++ {
		root, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_nodes"})
		if err != nil {
			t.Fatal(err)
		}
		kid, err := s.CreateSubtask(ctx, root.ID, statestore.NewTask{Action: "deploy_node"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendMessages(ctx, kid.ID, statestore.NewMessage{Message: "a"}, statestore.NewMessage{Message: "b"}); err != nil {
			t.Fatal(err)
		}
		oldRoots = append(oldRoots, root.ID)
	}
	young, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendMessage(ctx, young.ID, statestore.NewMessage{Message: "keep"}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "UPDATE tasks SET created_at = now() - interval '40 days' WHERE task_id <> $1", young.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO build_data (node_name, task_id, generator, data_format, data_element)
		VALUES ('n1', $1, 'lshw', 'text/plain', 'x')`, oldRoots[0]); err != nil {
		t.Fatal(err)
	}
	res, err := s.DeleteTasksCreatedBefore(ctx, time.Now().Add(-30*24*time.Hour), statestore.RetentionOptions{BatchSize: 3, IncludeActive: true})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(statestore.RetentionResult{Tasks: 14, Messages: 14, Batches: 3}, res); diff != "" {
		t.Fatalf("retention (-want +got):\n%s", diff)
	}
	if n := count(t, pool, "SELECT count(*) FROM tasks"); n != 1 {
		t.Fatalf("%d tasks left, want the young one", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM result_message"); n != 1 {
		t.Fatalf("%d messages left, want 1", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM build_data"); n != 1 {
		t.Fatal("retention deleted build data")
	}
}

func TestCompleteTasksPerClaim(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	if _, err := s.CreateTasks(ctx, statestore.NewTask{Action: "noop"}, statestore.NewTask{Action: "noop"}, statestore.NewTask{Action: "noop"}); err != nil {
		t.Fatal(err)
	}
	mine, err := s.ClaimTasks(ctx, "a", 2)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := s.ClaimTasks(ctx, "b", 1)
	if err != nil {
		t.Fatal(err)
	}
	// One claim in the batch is not live (wrong attempt): it writes nothing,
	// the live ones complete, and the error says which and why.
	wrong := statestore.Claim{TaskID: theirs[0].ID, Attempt: theirs[0].Attempt + 1}
	done, err := s.CompleteTasks(ctx, statestore.ResultSuccess, mine[0].Claim(), wrong, mine[1].Claim())
	if !errors.Is(err, statestore.ErrStaleAttempt) || !errors.Is(err, statestore.ErrConflict) {
		t.Fatalf("complete with a stale attempt: %v, want ErrStaleAttempt (and ErrConflict)", err)
	}
	var nl *statestore.ClaimsNotLiveError
	if !errors.As(err, &nl) || len(nl.Claims) != 1 || nl.Claims[0] != wrong {
		t.Fatalf("error = %#v, want a ClaimsNotLiveError listing the wrong claim", err)
	}
	if len(done) != 2 {
		t.Fatalf("completed %d, want the 2 live claims", len(done))
	}
	for _, d := range done {
		if d.Status != statestore.StatusComplete || d.Result.Status != statestore.ResultSuccess || d.Attempt != 1 || d.ID == theirs[0].ID {
			t.Fatalf("completed task = %+v", d)
		}
	}
	got, err := s.GetTask(ctx, theirs[0].ID)
	if err != nil || got.Status != statestore.StatusRunning || got.Version != theirs[0].Version {
		t.Fatalf("b's task after a stale claim on it = %v v%d, %v; want running, untouched", got.Status, got.Version, err)
	}
	// Completing twice with the same result: a retry whose answer was lost,
	// it succeeds and writes nothing (docs/ha.md). With another result the
	// claim has ended with the first (a claim is live only while its task
	// is running or terminating).
	before, err := s.GetTask(ctx, mine[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.CompleteTasks(ctx, statestore.ResultSuccess, mine[0].Claim())
	if err != nil || len(again) != 1 || again[0].ID != mine[0].ID || again[0].Version != before.Version {
		t.Fatalf("complete twice, same result: %v, %v; want the task as it is (v%d), no error", again, err, before.Version)
	}
	_, err = s.CompleteTasks(ctx, statestore.ResultFailure, mine[0].Claim())
	if !errors.Is(err, statestore.ErrStaleAttempt) {
		t.Fatalf("complete twice, another result: %v, want ErrStaleAttempt (the claim ended with the task)", err)
	}
	_, err = s.CompleteTasks(ctx, statestore.ResultSuccess, statestore.Claim{TaskID: uuid.New(), Attempt: 1})
	if !errors.Is(err, statestore.ErrNotFound) {
		t.Fatalf("complete a missing task: %v, want ErrNotFound", err)
	}
	_, err = s.CompleteTasks(ctx, "great", mine[0].Claim())
	wantInvalid(t, err, "result status")
	_, err = s.CompleteTasks(ctx, statestore.ResultSuccess, statestore.Claim{TaskID: uuid.New()})
	wantInvalid(t, err, "claims[0].Attempt")
	_, err = s.CompleteTasks(ctx, statestore.ResultSuccess, theirs[0].Claim(), theirs[0].Claim())
	wantInvalid(t, err, "claims[1].TaskID")
}

// Closing a derived store (AsLeader, WithTx) must not stop the parent's
// wake-ups.
func TestClosingDerivedStoreKeepsParentListening(t *testing.T) {
	needsListen(t)
	s, pool := newStore(t, statestore.Options{PollInterval: time.Hour})
	s.AsLeader(1).Close()
	tx, err := pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.WithTx(tx).Close()
	_ = tx.Rollback(context.Background())
	ctx := ctxTimeout(t, 30*time.Second)
	_ = s.WaitForQueued(ctxTimeout(t, 200*time.Millisecond)) // start listening
	go func() {
		time.Sleep(300 * time.Millisecond)
		if _, err := s.CreateTask(context.Background(), statestore.NewTask{Action: "noop"}); err != nil {
			t.Error(err)
		}
	}()
	if got, err := s.ClaimTasksWait(ctx, "w", 1); err != nil || len(got) != 1 {
		t.Fatalf("parent store no longer woken after a derived store was closed: %v, %v", got, err)
	}
}
