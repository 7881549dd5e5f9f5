package console

import (
	"io"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/statestore"
)

// BenchmarkRenderTree1000 renders a task page whose tree has 1 000
// subtasks (100 children of 9 each), without the database: the template's
// share of the tree page's time.
func BenchmarkRenderTree1000(b *testing.B) {
	pages, err := parsePages("/console")
	if err != nil {
		b.Fatal(err)
	}
	root := uuid.Must(uuid.NewV7())
	tree := &statestore.TaskTree{Tasks: []statestore.TreeTask{{ID: root, Action: "deploy_site", Status: statestore.StatusRunning}}}
	var grand []statestore.TreeTask
	for range 100 {
		c := uuid.Must(uuid.NewV7())
		tree.Tasks = append(tree.Tasks, statestore.TreeTask{ID: c, ParentID: &root, Depth: 1, Action: "deploy_node", Status: statestore.StatusRunning})
		for range 9 {
			grand = append(grand, statestore.TreeTask{ID: uuid.Must(uuid.NewV7()), ParentID: &c, Depth: 2, Action: "prepare_node",
				Status: statestore.StatusComplete, ResultStatus: statestore.ResultSuccess, LastMessageSeq: 3})
		}
	}
	tree.Tasks = append(tree.Tasks, grand...)
	d := taskData{frame: frame{Title: "Task", Nav: "tasks"}, Task: &statestore.Task{ID: root, CreatedAt: time.Now()},
		Tree: buildTree("/console", tree, root), TreeSize: len(tree.Tasks), StreamURL: "/console/tasks/x/events?after=0"}
	for b.Loop() {
		if err := pages["task.html"].Execute(io.Discard, d); err != nil {
			b.Fatal(err)
		}
	}
}
