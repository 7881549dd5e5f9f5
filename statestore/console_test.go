package statestore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/statestore"
)

// Filtered listing reads one index range per (action, status) pair and
// merges them: paging through any filter, a page at a time, lists exactly
// the tasks of the whole list that match, in its order (ties in created_at
// broken by id), each once — also with repeated filter values.
func TestListTasksFilteredPagesMatchTheWholeList(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	actions := []string{"deploy_node", "prepare_node", "verify_node", "destroy_node"}
	var batch []statestore.NewTask
	for i := range 80 {
		st := statestore.StatusQueued
		if i%4 == 3 {
			st = statestore.StatusRequested
		}
		batch = append(batch, statestore.NewTask{Action: actions[i%len(actions)], Status: st})
	}
	if _, err := s.CreateTasks(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	claimed, err := s.ClaimTasks(ctx, "w", 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CompleteTasks(ctx, statestore.ResultSuccess, claimed[0].Claim(), claimed[1].Claim(), claimed[2].Claim(), claimed[5].Claim()); err != nil {
		t.Fatal(err)
	}
	// Five distinct creation times: many ties, broken by task id.
	if _, err := pool.Exec(ctx, `UPDATE tasks SET created_at = '2026-01-01'::timestamptz + (abs(hashtext(task_id::text)) % 5) * interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	all, err := s.ListTasks(ctx, statestore.TaskFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	st := func(v ...statestore.TaskStatus) []statestore.TaskStatus { return v }
	for _, f := range []statestore.TaskFilter{
		{Statuses: st(statestore.StatusQueued)},
		{Statuses: st(statestore.StatusRunning, statestore.StatusComplete)},
		{Statuses: st(statestore.StatusRequested, statestore.StatusRequested)},
		{Statuses: st(statestore.StatusTerminating)},
		{Actions: []string{"deploy_node"}},
		{Actions: []string{"verify_node", "destroy_node", "verify_node"}},
		{Actions: []string{"no_such_action"}},
		{Statuses: st(statestore.StatusQueued, statestore.StatusRunning), Actions: []string{"deploy_node", "prepare_node"}},
	} {
		t.Run(fmt.Sprintf("%v/%v", f.Statuses, f.Actions), func(t *testing.T) {
			want := []uuid.UUID{}
			for _, x := range all.Tasks {
				if (len(f.Statuses) == 0 || slices.Contains(f.Statuses, x.Status)) && (len(f.Actions) == 0 || slices.Contains(f.Actions, x.Action)) {
					want = append(want, x.ID)
				}
			}
			got := []uuid.UUID{}
			f.Limit = 3
			for pages := 0; ; pages++ {
				if pages > 100 {
					t.Fatal("paging does not end")
				}
				page, err := s.ListTasks(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				for _, x := range page.Tasks {
					got = append(got, x.ID)
				}
				if page.Next == "" {
					break
				}
				f.Cursor = page.Next
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-whole list, filtered +filtered pages):\n%s", diff)
			}
		})
	}
}

// ReadTaskTree: the root, then each level oldest first, with depths and
// states; the limit cuts the lower levels and says so; unknown roots are
// ErrNotFound.
func TestReadTaskTree(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	root, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_site"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.CreateSubtask(ctx, root.ID, statestore.NewTask{Action: "deploy_node"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateSubtask(ctx, root.ID, statestore.NewTask{Action: "deploy_node", Status: statestore.StatusRequested})
	if err != nil {
		t.Fatal(err)
	}
	a1, err := s.CreateSubtask(ctx, a.ID, statestore.NewTask{Action: "verify_node"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendMessage(ctx, a1.ID, statestore.NewMessage{Message: "hello"}); err != nil {
		t.Fatal(err)
	}
	type row struct {
		ID     uuid.UUID
		Parent uuid.UUID
		Depth  int
		Status statestore.TaskStatus
		Action string
		Msgs   int64
	}
	rows := func(tree *statestore.TaskTree) []row {
		var out []row
		for _, x := range tree.Tasks {
			r := row{ID: x.ID, Depth: x.Depth, Status: x.Status, Action: x.Action, Msgs: x.LastMessageSeq}
			if x.ParentID != nil {
				r.Parent = *x.ParentID
			}
			out = append(out, r)
		}
		return out
	}
	full := []row{
		{root.ID, uuid.Nil, 0, statestore.StatusQueued, "deploy_site", 0},
		{a.ID, root.ID, 1, statestore.StatusQueued, "deploy_node", 0},
		{b.ID, root.ID, 1, statestore.StatusRequested, "deploy_node", 0},
		{a1.ID, a.ID, 2, statestore.StatusQueued, "verify_node", 1},
	}
	tree, err := s.ReadTaskTree(ctx, root.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(full, rows(tree)); diff != "" || tree.Truncated {
		t.Errorf("tree (-want +got), truncated %v:\n%s", tree.Truncated, diff)
	}
	tree, err = s.ReadTaskTree(ctx, root.ID, 3)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(full[:3], rows(tree)); diff != "" || !tree.Truncated {
		t.Errorf("tree cut at 3 (-want +got), truncated %v:\n%s", tree.Truncated, diff)
	}
	sub, err := s.ReadTaskTree(ctx, a.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := rows(sub); len(got) != 2 || got[0].Depth != 0 || got[1].ID != a1.ID {
		t.Errorf("subtree of a: %+v", got)
	}
	if _, err := s.ReadTaskTree(ctx, uuid.New(), 0); !errors.Is(err, statestore.ErrNotFound) {
		t.Errorf("unknown root: %v, want ErrNotFound", err)
	}
	_, err = s.ReadTaskTree(ctx, root.ID, -1)
	wantInvalid(t, err, "limit")
	ancestors, err := s.TaskAncestors(ctx, a1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := rows(&statestore.TaskTree{Tasks: ancestors}); !cmp.Equal(got, []row{
		{root.ID, uuid.Nil, 0, statestore.StatusQueued, "deploy_site", 0},
		{a.ID, root.ID, 1, statestore.StatusQueued, "deploy_node", 0}}) {
		t.Errorf("ancestors of a1: %+v", got)
	}
	if ancestors, err := s.TaskAncestors(ctx, root.ID); err != nil || len(ancestors) != 0 {
		t.Errorf("ancestors of the root: %v %+v", err, ancestors)
	}
	got, err := s.GetTaskHeader(ctx, a1.ID)
	if err != nil || got.Messages != nil || got.LastMessageSeq != 1 {
		t.Errorf("GetTaskHeader: %v, messages %v, last sequence %d", err, got.Messages, got.LastMessageSeq)
	}
}

// BootActionContexts pages through nodes in name order; the type has no
// room for the key or its digest.
func TestBootActionContextsPage(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_site"})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, n := range []string{"node-c", "node-a", "node-b", "node-e", "node-d"} {
		if _, _, err := s.CreateBootActionContext(ctx, n, task.ID); err != nil {
			t.Fatal(err)
		}
	}
	want = []string{"node-a", "node-b", "node-c", "node-d", "node-e"}
	var got []string
	for after := ""; ; {
		page, err := s.BootActionContexts(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, c := range page {
			if c.TaskID != task.ID {
				t.Errorf("%s: task %s", c.NodeName, c.TaskID)
			}
			got = append(got, c.NodeName)
		}
		after = page[len(page)-1].NodeName
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	_, err = s.BootActionContexts(ctx, "", 10001)
	wantInvalid(t, err, "limit")
}

// LatestBuildDataPreviews: the newest record of each generator, its element
// cut to the characters asked (on a character boundary: the database
// counts characters) and its whole size.
func TestLatestBuildDataPreviews(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	task := uuid.New()
	big := strings.Repeat("é", 3000) // 2 bytes each
	for _, bd := range []statestore.NewBuildData{
		{NodeName: "n1", TaskID: task, Generator: "lshw", DataFormat: "text/plain", DataElement: "old", CollectedAt: time.Now().Add(-time.Hour)},
		{NodeName: "n1", TaskID: task, Generator: "lshw", DataFormat: "text/plain", DataElement: big, CollectedAt: time.Now()},
		{NodeName: "n1", TaskID: task, Generator: "dmesg", DataFormat: "text/plain", DataElement: "short", CollectedAt: time.Now()},
		{NodeName: "n2", TaskID: task, Generator: "lshw", DataFormat: "text/plain", DataElement: "other node", CollectedAt: time.Now()},
	} {
		if _, err := s.InsertBuildData(ctx, bd); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.LatestBuildDataPreviews(ctx, "n1", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Generator, Element string
		Size               int64
	}
	var rows []row
	for _, bd := range got {
		rows = append(rows, row{bd.Generator, bd.DataElement, bd.DataSize})
	}
	want := []row{{"dmesg", "short", 5}, {"lshw", strings.Repeat("é", 10), 6000}}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got, err := s.LatestBuildDataPreviews(ctx, "n1", 10, 1); err != nil || len(got) != 1 || got[0].Generator != "dmesg" {
		t.Errorf("limit 1: %v %+v", err, got)
	}
	_, err = s.LatestBuildDataPreviews(ctx, "n1", 0, 0)
	wantInvalid(t, err, "previewChars")
	_, err = s.LatestBuildDataPreviews(ctx, "bad name", 10, 0)
	wantInvalid(t, err, "node")
}
