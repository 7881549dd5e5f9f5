package statestore

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/gen/db"
)

// Read-only calls for viewers such as the web console (internal/console):
// bounded reads that never return boot-action key material and never read
// more messages than asked for.

// GetTaskHeader reads one task without its messages (Messages is nil):
// GetTask reads every message of the task, which a page that shows only the
// newest few, or follows them live, does not need. ErrNotFound if no such task.
func (s *Store) GetTaskHeader(ctx context.Context, id uuid.UUID) (*Task, error) {
	r, err := s.q.GetTask(ctx, s.conn, id)
	if err != nil {
		return nil, mapError("get task "+id.String(), err)
	}
	return taskFromRow(r), nil
}

// TreeTask is one task of a TaskTree: its place in the tree and its state.
type TreeTask struct {
	// ID is the task's id.
	ID uuid.UUID
	// ParentID is nil for a top-level task (the root of a tree may have one).
	ParentID *uuid.UUID
	// Depth is 0 for the root, 1 for its subtasks, and so on.
	Depth int
	// Status is the task's lifecycle status.
	Status TaskStatus
	// Action is what the task does, e.g. deploy_node.
	Action string
	// ResultStatus is the task's result so far.
	ResultStatus ResultStatus
	// CreatedAt is when the task was created (the database's clock).
	CreatedAt time.Time
	// UpdatedAt is when the task last changed.
	UpdatedAt time.Time
	// ClaimedBy names the claimer of the current or last attempt ("" if never claimed).
	ClaimedBy string
	// Attempt counts the task's claims (0 if never claimed).
	Attempt int64
	// LastMessageSeq is the sequence of the task's newest message (0 if none).
	LastMessageSeq int64
}

// TaskTree is a task and its descendants, as read by ReadTaskTree.
type TaskTree struct {
	// Tasks lists the root first, then each level, each level oldest first.
	Tasks []TreeTask
	// Truncated reports that the tree has more tasks than the limit asked.
	Truncated bool
}

// ReadTaskTree reads the task id and its descendants, at most limit tasks
// (default 1000, at most 100000), breadth-first: a tree cut by the limit
// keeps its upper levels. One query. ErrNotFound if no such task.
func (s *Store) ReadTaskTree(ctx context.Context, id uuid.UUID, limit int) (*TaskTree, error) {
	if limit == 0 {
		limit = 1000
	}
	if limit < 0 || limit > 100000 {
		return nil, invalid("limit", "must be between 1 and 100000, got %d", limit)
	}
	rows, err := s.q.ListTaskTree(ctx, s.conn, db.ListTaskTreeParams{TaskID: id, MaxRows: int32(limit + 1)})
	if err != nil {
		return nil, mapError("read task tree of "+id.String(), err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("read task tree of %s: %w", id, ErrNotFound)
	}
	tree := &TaskTree{Tasks: make([]TreeTask, 0, min(len(rows), limit))}
	if len(rows) > limit {
		rows, tree.Truncated = rows[:limit], true
	}
	for _, r := range rows {
		tree.Tasks = append(tree.Tasks, TreeTask{ID: r.TaskID, ParentID: r.ParentTaskID, Depth: int(r.Depth),
			Status: TaskStatus(r.Status), Action: r.Action, ResultStatus: ResultStatus(r.ResultStatus),
			CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), ClaimedBy: deref(r.ClaimedBy),
			Attempt: r.Attempt, LastMessageSeq: r.LastMessageSeq})
	}
	return tree, nil
}

// TaskAncestors returns the ancestors of task id, the top-level task first
// and its parent last (Depth 0 for the top-level task), at most 1000 levels;
// none for a top-level or unknown task. One query.
func (s *Store) TaskAncestors(ctx context.Context, id uuid.UUID) ([]TreeTask, error) {
	rows, err := s.q.ListTaskAncestors(ctx, s.conn, id)
	if err != nil {
		return nil, mapError("read ancestors of "+id.String(), err)
	}
	out := make([]TreeTask, len(rows))
	for i, r := range rows {
		out[i] = TreeTask{ID: r.TaskID, ParentID: r.ParentTaskID, Depth: i, Status: TaskStatus(r.Status), Action: r.Action,
			ResultStatus: ResultStatus(r.ResultStatus), CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	}
	return out, nil
}

// BootActionContexts returns up to limit (default 100, at most 10000) boot
// action contexts in node-name order, starting after the node named after
// ("" starts at the first). Like every BootActionContext, they carry no key
// and no key digest.
func (s *Store) BootActionContexts(ctx context.Context, after string, limit int) ([]BootActionContext, error) {
	if limit == 0 {
		limit = 100
	}
	if limit < 0 || limit > 10000 {
		return nil, invalid("limit", "must be between 1 and 10000, got %d", limit)
	}
	rows, err := s.q.ListBootActionContexts(ctx, s.conn, db.ListBootActionContextsParams{CursorNodeName: after, MaxRows: int32(limit)})
	if err != nil {
		return nil, mapError("list boot action contexts", err)
	}
	out := make([]BootActionContext, len(rows))
	for i, r := range rows {
		out[i] = BootActionContext{NodeName: r.NodeName, TaskID: r.TaskID, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	}
	return out, nil
}

// LatestBuildDataPreviews returns the newest record of each generator of
// node (at most limit generators: default 100, at most 10000), in generator
// order, with DataElement cut to its first previewChars characters (1 to
// 1 048 576) and DataSize the whole element's size: a view of a node's data
// that never reads whole elements, however large.
func (s *Store) LatestBuildDataPreviews(ctx context.Context, node string, previewChars, limit int) ([]BuildData, error) {
	if err := validateNodeName(node, "node"); err != nil {
		return nil, err
	}
	if previewChars < 1 || previewChars > 1<<20 {
		return nil, invalid("previewChars", "must be between 1 and 1048576, got %d", previewChars)
	}
	if limit == 0 {
		limit = 100
	}
	if limit < 0 || limit > 10000 {
		return nil, invalid("limit", "must be between 1 and 10000, got %d", limit)
	}
	rows, err := s.q.LatestBuildDataPreviewsOfNode(ctx, s.conn, db.LatestBuildDataPreviewsOfNodeParams{
		NodeName: node, PreviewChars: int32(previewChars), MaxRows: int32(limit)})
	if err != nil {
		return nil, mapError("read build data previews of "+node, err)
	}
	out := make([]BuildData, len(rows))
	for i, r := range rows {
		out[i] = BuildData{ID: r.BuildDataID, NodeName: r.NodeName, TaskID: r.TaskID, CollectedAt: r.CollectedAt.UTC(),
			Generator: r.Generator, DataFormat: r.DataFormat, DataElement: r.Preview, DataSize: r.DataSize}
	}
	return out, nil
}
