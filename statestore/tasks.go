package statestore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/drydock-go/statemgmt/gen/db"
)

// TaskStatus is where a task is in its lifecycle:
//
//	requested → queued → running → complete
//	running → terminating → terminated
//	requested or queued → terminated
//
// complete and terminated are final. Only a claim (ClaimTasks) makes a task
// running; recovery (RequeueStaleTasks, RequeueTasksOfClaimer) and the
// owner (RequeueTasks) put a running task back to queued, and recovery ends
// a terminating task whose claimer is gone as terminated.
type TaskStatus string

// The task statuses.
const (
	StatusRequested   TaskStatus = "requested"
	StatusQueued      TaskStatus = "queued"
	StatusRunning     TaskStatus = "running"
	StatusTerminating TaskStatus = "terminating"
	StatusTerminated  TaskStatus = "terminated"
	StatusComplete    TaskStatus = "complete"
)

// Final reports whether no further status change is allowed.
func (s TaskStatus) Final() bool { return s == StatusComplete || s == StatusTerminated }

// allowedFrom lists, for each status, the statuses a task may change to it
// from through UpdateTask. (Claiming and requeueing have their own calls.)
var allowedFrom = map[TaskStatus][]TaskStatus{
	StatusRequested: {},
	StatusQueued:    {StatusRequested},
	StatusRunning:   {}, // only ClaimTasks makes a task running
	StatusComplete:  {StatusRunning},
	// A task not yet running is terminated directly: terminating means a
	// claimer is still at work and recovery can find it by its claim.
	StatusTerminating: {StatusRunning},
	StatusTerminated:  {StatusRequested, StatusQueued, StatusRunning, StatusTerminating},
}

// CanChange reports whether UpdateTask may move a task from one status to
// another. Keeping the same status is always allowed.
func CanChange(from, to TaskStatus) bool {
	if from == to {
		return true
	}
	for _, f := range allowedFrom[to] {
		if f == from {
			return true
		}
	}
	return false
}

// ResultStatus is the outcome of a task (and of a boot action).
type ResultStatus string

// The result statuses.
const (
	ResultIncomplete     ResultStatus = "incomplete"
	ResultSuccess        ResultStatus = "success"
	ResultPartialSuccess ResultStatus = "partial_success"
	ResultFailure        ResultStatus = "failure"
	ResultUnreported     ResultStatus = "unreported"
)

// Task is one orchestrator task as stored.
type Task struct {
	// ID identifies the task: a time-ordered UUIDv7 unless its creator chose one.
	ID         uuid.UUID
	ParentID   *uuid.UUID  // nil for a top-level task
	SubtaskIDs []uuid.UUID // read from the subtasks: oldest first, then by id
	// Status is where the task is in its lifecycle (see CanChange).
	Status TaskStatus
	// Action is what the task asks for, e.g. "deploy_nodes"; claimers
	// select work by it.
	Action string
	// DesignRef is the URI of the site design the task works from (package
	// fetch resolves it); empty when none.
	DesignRef      string
	NodeFilter     json.RawMessage // nil when unset
	RequestContext json.RawMessage // nil when unset
	// Retry counts the times the task went back from running to the queue:
	// RequeueTasks, RequeueTasksOfClaimer and RequeueStaleTasks each add
	// one; UpdateTask may set it (TaskUpdate.Retry). 0 for a new task.
	Retry int
	// CreatedAt is when the task was created, by the database's clock.
	CreatedAt time.Time
	// CreatedBy names who created the task (NewTask.CreatedBy).
	CreatedBy string
	// UpdatedAt is when the task's own fields last changed, by the
	// database's clock.
	UpdatedAt time.Time
	// TerminatedAt is when the task became terminated; nil before (a
	// terminating task has none yet).
	TerminatedAt *time.Time
	// TerminatedBy names who asked for the termination (TerminateTask's by,
	// or TaskUpdate.TerminatedBy); empty when nobody did.
	TerminatedBy string
	// Terminate records that termination was asked for: TerminateTask sets
	// it on every task of the tree it marks (a running task becomes
	// terminating: its worker should stop and end it as terminated). The
	// store never clears it; only TaskUpdate.Terminate changes it otherwise.
	Terminate bool
	// Result is the task's outcome, incomplete until it ends.
	Result TaskResult
	// Version increases with every change to the task's own fields; pass it
	// to UpdateTask. Appending messages or subtasks does not change it.
	Version int64
	// LastMessageSeq is the sequence number of the task's newest message.
	LastMessageSeq int64
	ClaimedBy      string     // who claimed it (running tasks)
	ClaimedAt      *time.Time // when
	// Attempt counts the claims of the task: 0 before the first, and each
	// claim adds one. A claimed task's writes must name it (see Claim).
	Attempt int64
	// Messages is filled by GetTask and by ListTasks with WithMessages.
	Messages []ResultMessage
}

// Claim names one claim of a task: the task and its attempt. The worker
// that claimed a task passes it to CompleteTasks, RequeueTasks and (as
// TaskUpdate.Attempt) UpdateTask. The claim is live only while the task is
// running or terminating under it: once the task is requeued, complete or
// terminated (by its worker or by recovery), every write naming the old
// attempt fails with ErrStaleAttempt and writes nothing.
type Claim struct {
	// TaskID is the claimed task.
	TaskID uuid.UUID
	// Attempt is the task's attempt under this claim (Task.Attempt when it
	// was claimed: 1 or more).
	Attempt int64
}

// Claim returns the claim this task was returned under (its id and
// attempt). Call it on the task ClaimTasks returned, and keep it: a task
// read later may carry a newer attempt that is not the caller's.
func (t *Task) Claim() Claim { return Claim{TaskID: t.ID, Attempt: t.Attempt} }

// ErrStaleAttempt means a write named an attempt that is no longer the
// task's live claim (the task was requeued, perhaps claimed again, since):
// nothing was written. errors.Is(err, ErrConflict) holds as well.
var ErrStaleAttempt = fmt.Errorf("statestore: stale attempt: %w", ErrConflict)

// ErrParentClosed means a subtask was refused because its parent is
// terminating, terminated or complete: nothing was written.
// errors.Is(err, ErrConflict) holds as well.
var ErrParentClosed = fmt.Errorf("statestore: parent task is terminating, terminated or complete: %w", ErrConflict)

// TaskResult is the outcome part of a task.
type TaskResult struct {
	// Status is ResultIncomplete until the task's worker reports an outcome
	// (success, partial_success, failure or unreported).
	Status ResultStatus
	// Message summarises the outcome for people.
	Message string
	// Reason says why the task failed or partly succeeded.
	Reason string
	// ErrorCount is the number of the task's messages flagged as errors,
	// kept by the store as messages are appended.
	ErrorCount int
	// Successes names what succeeded, e.g. the nodes deployed.
	Successes []string
	// Failures names what failed, e.g. the nodes not deployed.
	Failures []string
	Links    json.RawMessage // a JSON array
}

// NewTask describes a task to create.
type NewTask struct {
	// ID of the new task; a time-ordered UUIDv7 is generated when zero.
	ID uuid.UUID
	// ParentID makes the task a subtask. The parent must exist (or come
	// earlier in the same batch) and be requested, queued or running.
	ParentID *uuid.UUID
	// Action is required: lower-case letters, digits and underscores.
	Action string
	// Status defaults to queued; requested is the only other choice.
	Status TaskStatus
	// DesignRef is the URI of the site design the task works from; at most
	// 2048 characters.
	DesignRef string
	// NodeFilter selects the nodes the task applies to: any JSON value, or
	// nil.
	NodeFilter json.RawMessage
	// RequestContext is the JSON the API keeps with the request, or nil.
	RequestContext json.RawMessage
	// CreatedBy names the user or service creating the task; at most 256
	// characters.
	CreatedBy string
}

// taskRow is every generated row type that carries a whole task with its
// subtask ids (identical fields, so each converts to db.GetTaskRow).
type taskRow interface {
	db.GetTaskRow | db.ListTasksRow | db.ListSubtasksRow | db.UpdateTaskRow |
		db.RequeueTasksOfClaimerRow | db.RequeueStaleTasksRow | db.RequeueClaimedTasksRow |
		db.TerminateTasksRow | db.CompleteTasksRow | db.ListTasksFilteredRow
}

func taskFromRow[R taskRow](row *R) *Task {
	r := db.GetTaskRow(*row)
	t := &Task{
		ID: r.TaskID, ParentID: r.ParentTaskID, SubtaskIDs: nonNil(r.SubtaskIds),
		Status: TaskStatus(r.Status), Action: r.Action, DesignRef: r.DesignRef,
		NodeFilter: r.NodeFilter, RequestContext: r.RequestContext, Retry: int(r.Retry),
		CreatedAt: r.CreatedAt.UTC(), CreatedBy: r.CreatedBy, UpdatedAt: r.UpdatedAt.UTC(),
		TerminatedAt: utcPtr(r.TerminatedAt), TerminatedBy: deref(r.TerminatedBy), Terminate: r.Terminate,
		Result: TaskResult{
			Status: ResultStatus(r.ResultStatus), Message: r.ResultMessage, Reason: r.ResultReason,
			ErrorCount: int(r.ResultErrorCount), Successes: nonNil(r.ResultSuccesses),
			Failures: nonNil(r.ResultFailures), Links: r.ResultLinks,
		},
		Version: r.Version, LastMessageSeq: r.LastMessageSeq,
		ClaimedBy: deref(r.ClaimedBy), ClaimedAt: utcPtr(r.ClaimedAt), Attempt: r.Attempt,
	}
	return t
}

func tasksFromRows[R taskRow](rows []*R) []*Task {
	out := make([]*Task, len(rows))
	for i, r := range rows {
		out[i] = taskFromRow(r)
	}
	return out
}

// CreateTask creates one task. See CreateTasks.
func (s *Store) CreateTask(ctx context.Context, nt NewTask) (_ *Task, err error) {
	ctx, span := s.start(ctx, "statestore.CreateTask")
	defer finish(span, &err)
	tasks, err := s.CreateTasks(ctx, nt)
	if err != nil {
		return nil, err
	}
	return tasks[0], nil
}

// CreateSubtask creates a task under parent. A parent that is terminating,
// terminated or complete refuses it with ErrParentClosed, and nothing is
// written; the check reads the parent under a share lock taken in a
// statement before the insert, in the same transaction, so it cannot race
// TerminateTask (see there).
func (s *Store) CreateSubtask(ctx context.Context, parent uuid.UUID, nt NewTask) (_ *Task, err error) {
	ctx, span := s.start(ctx, "statestore.CreateSubtask")
	defer finish(span, &err)
	nt.ParentID = &parent
	return s.CreateTask(ctx, nt)
}

// CreateTasks creates many tasks in one statement (one round trip) and
// returns them in the order given. A subtask's parent may be an existing
// task or one in the same batch. A missing parent fails the whole batch
// with ErrNotFound; a taken id with ErrConflict — unless the call is a
// retry: when every task of the batch exists with the same content (parent,
// action, design ref, node filter, request context, created by), they are
// returned as they are now and nothing is written, so a batch with
// caller-chosen ids may be retried safely after an unknown outcome (not
// inside a caller's transaction, which the refused insert aborts); a parent that is
// terminating, terminated or complete with ErrParentClosed (but a retry of
// a batch that committed before its parent closed returns the batch);
// nothing is written. The cost per task does not grow with the batch. A batch naming
// existing parents runs in a transaction of two statements (lock and check
// the parents, then insert); one without runs one statement.
func (s *Store) CreateTasks(ctx context.Context, tasks ...NewTask) (_ []*Task, err error) {
	ctx, span := s.start(ctx, "statestore.CreateTasks")
	defer finish(span, &err)
	if len(tasks) == 0 {
		return []*Task{}, nil
	}
	p := db.InsertTasksParams{
		TaskIds: make([]uuid.UUID, len(tasks)), ParentTaskIds: make([]uuid.UUID, len(tasks)),
		Statuses: make([]string, len(tasks)), Actions: make([]string, len(tasks)),
		DesignRefs: make([]string, len(tasks)), NodeFilters: make([]json.RawMessage, len(tasks)),
		RequestContexts: make([]json.RawMessage, len(tasks)), CreatedBys: make([]string, len(tasks)),
	}
	seen := make(map[uuid.UUID]bool, len(tasks))
	for i, nt := range tasks {
		field := func(name string) string {
			if len(tasks) == 1 {
				return "task." + name
			}
			return fmt.Sprintf("tasks[%d].%s", i, name)
		}
		if err := validateNewTask(nt, field); err != nil {
			return nil, err
		}
		if nt.ID == uuid.Nil {
			id, err := uuid.NewV7()
			if err != nil {
				return nil, fmt.Errorf("statestore: generate task id: %w", err)
			}
			nt.ID = id
		}
		if seen[nt.ID] {
			return nil, invalid(field("ID"), "appears twice in the batch")
		}
		seen[nt.ID] = true
		if nt.Status == "" {
			nt.Status = StatusQueued
		}
		p.TaskIds[i], p.Statuses[i], p.Actions[i] = nt.ID, string(nt.Status), nt.Action
		if nt.ParentID != nil {
			p.ParentTaskIds[i] = *nt.ParentID
		}
		p.DesignRefs[i], p.NodeFilters[i], p.RequestContexts[i], p.CreatedBys[i] =
			nt.DesignRef, nt.NodeFilter, nt.RequestContext, nt.CreatedBy
	}
	if err := batchParentCycle(p.TaskIds, p.ParentTaskIds, len(tasks)); err != nil {
		return nil, err
	}
	inBatch := make(map[uuid.UUID][]uuid.UUID)
	existing := []uuid.UUID{}
	for _, parent := range p.ParentTaskIds {
		if parent == uuid.Nil {
			continue
		}
		if _, ok := inBatch[parent]; !ok {
			inBatch[parent] = nil
			if !seen[parent] {
				existing = append(existing, parent)
			}
		}
	}
	var rows []*db.Tasks
	taken := false // the insert found an id taken: perhaps a retry of a batch that committed
	if len(existing) == 0 {
		rows, err = s.q.InsertTasks(ctx, s.conn, p)
		taken = isTaskIDTaken(err)
		err = mapError("create tasks", err)
	} else {
		err = s.InTx(ctx, func(ctx context.Context, tx *Store) (err error) {
			if err := tx.lockParents(ctx, existing); err != nil {
				return err
			}
			statementBoundary(ctx, "CreateTasks: parents locked, before the insert")
			rows, err = tx.q.InsertTasks(ctx, tx.conn, p)
			taken = isTaskIDTaken(err)
			return mapError("create tasks", err)
		})
	}
	if taken && s.tx == nil {
		// Outside a caller's transaction (which the failed insert aborted),
		// a retry of a batch that committed returns that batch.
		return s.existingBatch(ctx, p)
	}
	if errors.Is(err, ErrParentClosed) {
		// A retry of a batch that committed before its parent closed.
		return s.existingBatchOr(ctx, p, err)
	}
	if err != nil {
		return nil, err
	}
	byID := make(map[uuid.UUID]*Task, len(rows))
	for _, r := range rows {
		row := getTaskRowFromModel(r)
		byID[r.TaskID] = taskFromRow(&row)
	}
	out := make([]*Task, len(tasks))
	for i, id := range p.TaskIds {
		if out[i] = byID[id]; out[i] == nil {
			return nil, fmt.Errorf("statestore: create tasks: task %s missing from the database's answer", id)
		}
		if parent := p.ParentTaskIds[i]; parent != uuid.Nil && seen[parent] {
			inBatch[parent] = append(inBatch[parent], id)
		}
	}
	// A new task's only subtasks are those of its own batch, all created at
	// the same time: in id order, as GetTask lists them.
	for parent, kids := range inBatch {
		if t := byID[parent]; t != nil && len(kids) > 0 {
			sort.Slice(kids, func(i, j int) bool { return bytes.Compare(kids[i][:], kids[j][:]) < 0 })
			t.SubtaskIDs = kids
		}
	}
	s.tasksCreated(ctx, out)
	return out, nil
}

// batchParentCycle refuses tasks of one batch that name each other as
// parents in a loop: the foreign key accepts such a batch (every parent
// exists at the end of the statement), but the tree would have no root and
// every walk of it (TerminateTask) would never end.
func batchParentCycle(ids, parents []uuid.UUID, n int) error {
	parentOf := make(map[uuid.UUID]uuid.UUID, len(ids))
	index := make(map[uuid.UUID]int, len(ids))
	for i, id := range ids {
		if parents[i] != uuid.Nil {
			parentOf[id] = parents[i]
		}
		index[id] = i
	}
	const (
		unseen = iota
		onPath
		done
	)
	state := make(map[uuid.UUID]int, len(ids))
	for _, start := range ids {
		var path []uuid.UUID
		id, cycle := start, false
		for {
			if state[id] != unseen {
				cycle = state[id] == onPath
				break
			}
			if _, ok := index[id]; !ok {
				break // an existing task: the chain leaves the batch
			}
			state[id] = onPath
			path = append(path, id)
			p, ok := parentOf[id]
			if !ok {
				break // a top-level task
			}
			id = p
		}
		if cycle {
			i := index[id]
			field := fmt.Sprintf("tasks[%d].ParentID", i)
			if n == 1 {
				field = "task.ParentID"
			}
			return invalid(field, "forms a cycle with other tasks of the batch")
		}
		for _, v := range path {
			state[v] = done
		}
	}
	return nil
}

// getTaskRowFromModel adds an empty subtask list to a bare task row.
func getTaskRowFromModel(r *db.Tasks) db.GetTaskRow {
	return db.GetTaskRow{
		TaskID: r.TaskID, ParentTaskID: r.ParentTaskID, Status: r.Status, Action: r.Action,
		DesignRef: r.DesignRef, NodeFilter: r.NodeFilter, RequestContext: r.RequestContext, Retry: r.Retry,
		CreatedAt: r.CreatedAt, CreatedBy: r.CreatedBy, UpdatedAt: r.UpdatedAt, TerminatedAt: r.TerminatedAt,
		TerminatedBy: r.TerminatedBy, Terminate: r.Terminate, ResultStatus: r.ResultStatus,
		ResultMessage: r.ResultMessage, ResultReason: r.ResultReason, ResultErrorCount: r.ResultErrorCount,
		ResultSuccesses: r.ResultSuccesses, ResultFailures: r.ResultFailures, ResultLinks: r.ResultLinks,
		Version: r.Version, LastMessageSeq: r.LastMessageSeq, ClaimedBy: r.ClaimedBy, ClaimedAt: r.ClaimedAt,
		Attempt: r.Attempt, SubtaskIds: []uuid.UUID{},
	}
}

// lockParents share-locks the existing parents a batch names and checks
// them under that lock, in a statement of its own before the insert: the
// insert's foreign key check sees parents committed after its snapshot, so
// a check in the insert's own snapshot could miss a parent committed (and
// then terminated) while the insert waited for a lock. A parent the lock
// statement does not see is looked for once more in a fresh statement (it
// may have been committed while the first one waited); still missing, it
// is ErrNotFound, so the insert only ever runs under parents locked here.
func (s *Store) lockParents(ctx context.Context, parents []uuid.UUID) error {
	var rows []*db.LockParentsRow
	for try := 0; try < 2; try++ {
		var err error
		if rows, err = s.q.LockParents(ctx, s.conn, parents); err != nil {
			return mapError("create tasks: lock parents", err)
		}
		if len(rows) == len(parents) {
			break
		}
	}
	found := make(map[uuid.UUID]bool, len(rows))
	for _, r := range rows {
		found[r.TaskID] = true
		switch TaskStatus(r.Status) {
		case StatusTerminating, StatusTerminated, StatusComplete:
			return fmt.Errorf("create tasks: parent %s is %s: %w", r.TaskID, r.Status, ErrParentClosed)
		}
	}
	for _, id := range parents {
		if !found[id] {
			return fmt.Errorf("create tasks: parent %s: %w", id, ErrNotFound)
		}
	}
	return nil
}

// GetTask reads one task with all its messages in order (two queries).
// A missing task is ErrNotFound.
func (s *Store) GetTask(ctx context.Context, id uuid.UUID) (_ *Task, err error) {
	ctx, span := s.start(ctx, "statestore.GetTask")
	defer finish(span, &err)
	r, err := s.q.GetTask(ctx, s.conn, id)
	if err != nil {
		return nil, mapError("get task "+id.String(), err)
	}
	t := taskFromRow(r)
	if err := s.attachMessages(ctx, []*Task{t}); err != nil {
		return nil, err
	}
	return t, nil
}

// TaskFilter selects tasks for ListTasks. Zero fields do not filter.
type TaskFilter struct {
	// Statuses keeps the tasks in any of these statuses.
	Statuses []TaskStatus
	// Actions keeps the tasks with any of these actions.
	Actions []string
	// ParentID keeps the direct subtasks of this task.
	ParentID *uuid.UUID
	// CreatedAfter keeps the tasks created strictly after this time
	// (exclusive: a task created at exactly CreatedAfter is left out;
	// TestListTasksFiltersAndPages filters at a listed task's own time).
	CreatedAfter *time.Time
	// CreatedBefore keeps the tasks created strictly before this time
	// (exclusive).
	CreatedBefore *time.Time
	// Limit is the page size: default 100, at most 10000.
	Limit int
	// Cursor continues a previous page (TaskPage.Next).
	Cursor string
	// WithMessages also reads every listed task's messages, in one more
	// query for the whole page.
	WithMessages bool
}

// TaskPage is one page of ListTasks.
type TaskPage struct {
	// Tasks are the page's tasks, newest first.
	Tasks []*Task
	// Next is the cursor of the following page; empty on the last page.
	Next string
}

// ListTasks lists tasks newest first, filtered, one page at a time (keyset
// pagination: pages stay stable while tasks are added). It costs one query,
// two with WithMessages, whatever the page size.
func (s *Store) ListTasks(ctx context.Context, f TaskFilter) (_ *TaskPage, err error) {
	ctx, span := s.start(ctx, "statestore.ListTasks")
	defer finish(span, &err)
	limit := f.Limit
	switch {
	case limit == 0:
		limit = 100
	case limit < 0 || limit > 10000:
		return nil, invalid("filter.Limit", "must be between 1 and 10000, got %d", limit)
	}
	p := db.ListTasksParams{
		Statuses: make([]string, 0, len(f.Statuses)), Actions: nonNil(f.Actions),
		ParentTaskID: f.ParentID, CreatedAfter: f.CreatedAfter, CreatedBefore: f.CreatedBefore,
		MaxRows: int32(limit + 1), CursorCreatedAt: endOfTime, CursorTaskID: uuid.Max,
	}
	for i, st := range f.Statuses {
		if err := validateStatus(st, fmt.Sprintf("filter.Statuses[%d]", i)); err != nil {
			return nil, err
		}
		p.Statuses = append(p.Statuses, string(st))
	}
	if f.Cursor != "" {
		at, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, err
		}
		p.CursorCreatedAt, p.CursorTaskID = at, id
	}
	tasks, err := s.listTasks(ctx, p)
	if err != nil {
		return nil, mapError("list tasks", err)
	}
	page := &TaskPage{}
	if len(tasks) > limit {
		tasks = tasks[:limit]
		last := tasks[limit-1]
		page.Next = encodeCursor(last.CreatedAt, last.ID)
	}
	page.Tasks = tasks
	if f.WithMessages {
		if err := s.attachMessages(ctx, page.Tasks); err != nil {
			return nil, err
		}
	}
	return page, nil
}

// listTasks runs the query that reads only matching tasks: with a status or
// action filter, one index range per (action, status) pair (every status
// when none is asked, every action in the table when none is asked); else,
// and with a parent or time filter, the keyset walk of all tasks. Duplicate
// filter values are dropped first (each would read its range again).
func (s *Store) listTasks(ctx context.Context, p db.ListTasksParams) ([]*Task, error) {
	p.Statuses, p.Actions = unique(p.Statuses), unique(p.Actions)
	if p.ParentTaskID == nil && p.CreatedAfter == nil && p.CreatedBefore == nil && (len(p.Statuses) > 0 || len(p.Actions) > 0) {
		statuses := p.Statuses
		if len(statuses) == 0 {
			statuses = allStatuses
		}
		rows, err := s.q.ListTasksFiltered(ctx, s.conn, db.ListTasksFilteredParams{Actions: p.Actions, Statuses: statuses,
			CursorCreatedAt: p.CursorCreatedAt, CursorTaskID: p.CursorTaskID, MaxRows: p.MaxRows})
		return tasksFromRows(rows), err
	}
	rows, err := s.q.ListTasks(ctx, s.conn, p)
	return tasksFromRows(rows), err
}

// allStatuses is every task status, for queries that read per status.
var allStatuses = []string{string(StatusRequested), string(StatusQueued), string(StatusRunning),
	string(StatusTerminating), string(StatusTerminated), string(StatusComplete)}

// unique returns s without repeated values, in first-seen order.
func unique(s []string) []string {
	out := make([]string, 0, len(s))
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// SubtaskSet chooses which subtasks ListSubtasks returns.
type SubtaskSet int

// The subtask sets of the original.
const (
	// AllSubtasks returns every direct subtask.
	AllSubtasks SubtaskSet = iota
	// CompleteSubtasks returns those that are complete or terminated.
	CompleteSubtasks
	// ActiveSubtasks returns all others.
	ActiveSubtasks
)

// ListSubtasks lists the direct subtasks of parent, oldest first.
func (s *Store) ListSubtasks(ctx context.Context, parent uuid.UUID, set SubtaskSet) (_ []*Task, err error) {
	ctx, span := s.start(ctx, "statestore.ListSubtasks")
	defer finish(span, &err)
	var statuses []string
	switch set {
	case AllSubtasks:
		statuses = []string{}
	case CompleteSubtasks:
		statuses = []string{string(StatusComplete), string(StatusTerminated)}
	case ActiveSubtasks:
		statuses = []string{string(StatusRequested), string(StatusQueued), string(StatusRunning), string(StatusTerminating)}
	default:
		return nil, invalid("set", "unknown subtask set %d", set)
	}
	rows, err := s.q.ListSubtasks(ctx, s.conn, db.ListSubtasksParams{ParentTaskID: parent, Statuses: statuses})
	if err != nil {
		return nil, mapError("list subtasks of "+parent.String(), err)
	}
	return tasksFromRows(rows), nil
}

// TaskUpdate names the fields UpdateTask changes; nil fields stay as they are.
type TaskUpdate struct {
	// Status moves the task along its lifecycle (see CanChange; never to
	// running: only ClaimTasks does that).
	Status *TaskStatus
	// DesignRef replaces the design URI; at most 2048 characters.
	DesignRef *string
	// NodeFilter replaces the node filter (JSON) when not nil.
	NodeFilter json.RawMessage
	// RequestContext replaces the request context (JSON) when not nil.
	RequestContext json.RawMessage
	// Retry sets the retry count (Task.Retry), 0 to 2^30.
	Retry *int
	// Terminate sets or clears Task.Terminate. It changes no status: to
	// terminate a task and its subtasks use TerminateTask.
	Terminate *bool
	// TerminatedBy sets who terminated the task; at most 256 characters.
	TerminatedBy *string
	// ResultStatus sets Result.Status.
	ResultStatus *ResultStatus
	// ResultMessage sets Result.Message; at most MaxMessageLength characters.
	ResultMessage *string
	// ResultReason sets Result.Reason; at most MaxMessageLength characters.
	ResultReason *string
	Successes    []string // nil: unchanged; empty: cleared
	Failures     []string // nil: unchanged; empty: cleared
	// Links replaces Result.Links when not nil: a JSON array.
	Links json.RawMessage
	// Attempt is the attempt the caller acts for. The worker that claimed
	// the task passes the Attempt of its claim (Task.Claim): the update
	// then applies only while that claim is the task's live claim (not
	// requeued since, nor ended: a claim is live only while the task is
	// running or terminating under it). Zero acts for nobody's claim: the update applies
	// only to a task under no live claim (not running or terminating with
	// a claimer). Otherwise ErrStaleAttempt, nothing written.
	Attempt int64
}

// UpdateTask changes the given fields of task id if its version is still
// expectedVersion and u.Attempt matches the task's claim (see
// TaskUpdate.Attempt), and returns the task as written (with a new
// version). A stale version is ErrConflict, a stale attempt
// ErrStaleAttempt and a missing task ErrNotFound; a status change the
// lifecycle does not allow is an *InvalidInputError on "status" (running is
// never allowed: only ClaimTasks makes a task running). In every failure
// nothing is written. Messages appended concurrently are never lost: the
// update touches only the named fields.
func (s *Store) UpdateTask(ctx context.Context, id uuid.UUID, expectedVersion int64, u TaskUpdate) (_ *Task, err error) {
	ctx, span := s.start(ctx, "statestore.UpdateTask")
	defer finish(span, &err)
	if err := validateUpdate(u); err != nil {
		return nil, err
	}
	if u.Attempt < 0 {
		return nil, invalid("update.Attempt", "must not be negative, got %d", u.Attempt)
	}
	p := db.UpdateTaskParams{
		TaskID: id, ExpectedVersion: expectedVersion, AllowedFrom: []string{}, Attempt: u.Attempt,
		DesignRef: u.DesignRef, NodeFilter: u.NodeFilter, RequestContext: u.RequestContext,
		Terminate: u.Terminate, TerminatedBy: u.TerminatedBy, ResultMessage: u.ResultMessage,
		ResultReason: u.ResultReason, ResultSuccesses: u.Successes, ResultFailures: u.Failures,
		ResultLinks: u.Links,
	}
	if u.Status != nil {
		st := string(*u.Status)
		p.Status = &st
		for _, f := range allowedFrom[*u.Status] {
			p.AllowedFrom = append(p.AllowedFrom, string(f))
		}
	}
	if u.Retry != nil {
		r := int32(*u.Retry)
		p.Retry = &r
	}
	if u.ResultStatus != nil {
		rs := string(*u.ResultStatus)
		p.ResultStatus = &rs
	}
	r, err := s.q.UpdateTask(ctx, s.conn, p)
	if err == nil {
		t := taskFromRow(r)
		s.taskUpdated(ctx, t, u)
		return t, nil
	}
	mapped := mapError("update task "+id.String(), err)
	if !isNotFound(mapped) {
		return nil, mapped
	}
	statementBoundary(ctx, "UpdateTask: no row, before reading why")
	// No row: find out which condition failed, for a precise error. The
	// task may have changed (or its creation committed) since the update,
	// so every outcome below is possible, including none of the conditions
	// failing now: that is a conflict too.
	cur, gerr := s.q.GetTask(ctx, s.conn, id)
	if gerr != nil {
		return nil, mapError("update task "+id.String(), gerr)
	}
	// The attempt first: a worker whose claim was requeued always holds a
	// stale version too (requeueing bumps it), and ErrStaleAttempt is the
	// reason it must act on (drop the work); it wraps ErrConflict as well.
	claimed := cur.ClaimedBy != nil
	live := claimed && (cur.Status == string(StatusRunning) || cur.Status == string(StatusTerminating))
	switch {
	case u.Attempt == 0 && live:
		return nil, fmt.Errorf("update task %s: %w: the task is claimed (attempt %d); only that claim may update it",
			id, ErrStaleAttempt, cur.Attempt)
	case u.Attempt != 0 && (!live || cur.Attempt != u.Attempt):
		return nil, fmt.Errorf("update task %s: %w: attempt %d is not the task's live claim (attempt %d, claimed: %t, status %s)",
			id, ErrStaleAttempt, u.Attempt, cur.Attempt, claimed, cur.Status)
	case cur.Version != expectedVersion:
		return nil, fmt.Errorf("update task %s: %w: version is %d, not %d", id, ErrConflict, cur.Version, expectedVersion)
	case u.Status != nil && !CanChange(TaskStatus(cur.Status), *u.Status):
		if *u.Status == StatusRunning {
			return nil, fmt.Errorf("update task %s: %w", id,
				invalid("status", "cannot change from %s to running: only ClaimTasks makes a task running", cur.Status))
		}
		return nil, fmt.Errorf("update task %s: %w", id,
			invalid("status", "cannot change from %s to %s", cur.Status, *u.Status))
	}
	return nil, fmt.Errorf("update task %s: %w: the task changed while it was being updated", id, ErrConflict)
}

// ClaimTasks atomically takes up to max of the oldest queued tasks, only
// of the given actions when any are given, marks them running and records
// claimer and claim time. Each claim is a new attempt (Task.Attempt one
// more than before): keep t.Claim() and name it in CompleteTasks,
// RequeueTasks and UpdateTask. Concurrent claimers never get the same task (rows
// another claimer holds are skipped, not waited for). An empty result means
// no work; ClaimTasksWait waits for work instead.
func (s *Store) ClaimTasks(ctx context.Context, claimer string, max int, actions ...string) (_ []*Task, err error) {
	ctx, span := s.start(ctx, "statestore.ClaimTasks")
	defer finish(span, &err)
	if err := validateClaimer(claimer); err != nil {
		return nil, err
	}
	if max < 1 || max > 10000 {
		return nil, invalid("max", "must be between 1 and 10000, got %d", max)
	}
	for i, a := range actions {
		if err := validateAction(a, fmt.Sprintf("actions[%d]", i)); err != nil {
			return nil, err
		}
	}
	var rows []*db.ClaimTasksRow
	err = s.leaderOnly(ctx, func(ctx context.Context, s *Store) (err error) {
		rows, err = s.q.ClaimTasks(ctx, s.conn, db.ClaimTasksParams{
			ClaimedBy: claimer, Actions: nonNil(actions), MaxTasks: int32(max),
		})
		return mapError("claim tasks", err)
	})
	if err != nil {
		return nil, err
	}
	out := make([]*Task, len(rows))
	since := make([]time.Time, len(rows))
	for i, r := range rows {
		out[i], since[i] = claimedTask(r), r.QueuedSince
	}
	s.tasksClaimed(ctx, out, since)
	return out, nil
}

// claimedTask converts a claim's row (a task and when it was queued).
func claimedTask(r *db.ClaimTasksRow) *Task {
	row := db.GetTaskRow{
		TaskID: r.TaskID, ParentTaskID: r.ParentTaskID, Status: r.Status, Action: r.Action,
		DesignRef: r.DesignRef, NodeFilter: r.NodeFilter, RequestContext: r.RequestContext, Retry: r.Retry,
		CreatedAt: r.CreatedAt, CreatedBy: r.CreatedBy, UpdatedAt: r.UpdatedAt, TerminatedAt: r.TerminatedAt,
		TerminatedBy: r.TerminatedBy, Terminate: r.Terminate, ResultStatus: r.ResultStatus,
		ResultMessage: r.ResultMessage, ResultReason: r.ResultReason, ResultErrorCount: r.ResultErrorCount,
		ResultSuccesses: r.ResultSuccesses, ResultFailures: r.ResultFailures, ResultLinks: r.ResultLinks,
		Version: r.Version, LastMessageSeq: r.LastMessageSeq, ClaimedBy: r.ClaimedBy, ClaimedAt: r.ClaimedAt,
		Attempt: r.Attempt, SubtaskIds: r.SubtaskIds,
	}
	return taskFromRow(&row)
}

// claimRetryMin is how soon ClaimTasksWait tries again when queued tasks
// exist but another transaction held every one's row lock; the delay
// doubles while that lasts, up to the poll interval.
const claimRetryMin = 5 * time.Millisecond

// ClaimTasksWait is ClaimTasks that, when nothing is queued, waits for new
// work (LISTEN/NOTIFY wake-ups for these actions, with polling as the
// fallback) and tries again, until it has at least one task or ctx ends.
// When queued tasks exist but were all skipped because other transactions
// held their row locks, it retries soon rather than after a poll interval.
func (s *Store) ClaimTasksWait(ctx context.Context, claimer string, max int, actions ...string) (_ []*Task, err error) {
	ctx, span := s.start(ctx, "statestore.ClaimTasksWait")
	defer finish(span, &err)
	var retry time.Duration
	var earlier *subscription // the last subscription of ours that was woken
	for {
		// Subscribe before claiming so a task queued in between wakes us.
		sub := s.wake.subscribeClaimer(actions...)
		tasks, err := s.claimOrWait(ctx, sub, &retry, claimer, max, actions)
		s.wake.unsubscribe(sub)
		if err != nil || len(tasks) > 0 {
			// A queued notification wakes one claimer (see listener.notified).
			// Hand it on when this claim may not have seen the task that
			// woke us (woken during or after it), when we took all we
			// asked for and more may be queued, or when we fail after an
			// earlier wake-up whose task we never claimed (a context ended
			// right after the wake-up:
			// TestClaimWaitBreakWokenClaimerThatFailsHandsOn).
			hand := earlier
			if woken(sub) {
				hand = sub
			} else if err == nil && len(tasks) < max {
				hand = nil // the claim after the wake-up took what it found
			}
			if hand != nil || len(tasks) == max {
				s.wake.passOn(hand, taskActions(tasks)...)
			}
			return tasks, err
		}
		if woken(sub) {
			earlier = sub
		}
	}
}

// taskActions lists the distinct actions of tasks.
func taskActions(tasks []*Task) []string {
	var out []string
	for _, t := range tasks {
		if !slices.Contains(out, t.Action) {
			out = append(out, t.Action)
		}
	}
	return out
}

// claimOrWait claims; when that finds nothing it waits for sub, the poll
// interval, or, when queued tasks exist that were locked, the retry delay.
func (s *Store) claimOrWait(ctx context.Context, sub *subscription, retry *time.Duration,
	claimer string, max int, actions []string) ([]*Task, error) {
	tasks, err := s.ClaimTasks(ctx, claimer, max, actions...)
	if err != nil || len(tasks) > 0 {
		return tasks, err
	}
	queued, err := s.q.QueuedTaskExists(ctx, s.conn, nonNil(actions))
	if err != nil {
		return nil, mapError("look for locked queued tasks", err)
	}
	delay := s.poll
	if queued { // skipped because locked: whoever holds them may let go soon
		*retry = min(*retry*2, s.poll)
		if *retry < claimRetryMin {
			*retry = min(claimRetryMin, s.poll)
		}
		delay = *retry
	} else {
		*retry = 0
	}
	return nil, wait(ctx, sub.ch, delay)
}

// RequeueTasksOfClaimer is the leader's recovery when an instance is gone:
// every running task claimed by claimer goes back to the queue (retry + 1),
// and every terminating task claimed by claimer becomes terminated (its
// termination was asked for and nobody is left to finish it). It returns
// the tasks it changed. The gone instance's late writes fail with
// ErrStaleAttempt.
func (s *Store) RequeueTasksOfClaimer(ctx context.Context, claimer string) (_ []*Task, err error) {
	ctx, span := s.start(ctx, "statestore.RequeueTasksOfClaimer")
	defer finish(span, &err)
	if err := validateClaimer(claimer); err != nil {
		return nil, err
	}
	var rows []*db.RequeueTasksOfClaimerRow
	err = s.leaderOnly(ctx, func(ctx context.Context, s *Store) (err error) {
		rows, err = s.q.RequeueTasksOfClaimer(ctx, s.conn, claimer)
		return mapError("requeue tasks of "+claimer, err)
	})
	if err != nil {
		return nil, err
	}
	out := tasksFromRows(rows)
	s.tasksRecovered(ctx, out)
	return out, nil
}

// RequeueStaleTasks recovers every claim made before claimedBefore, whoever
// made it: running tasks go back to the queue (retry + 1), terminating
// tasks become terminated. It returns the tasks it changed.
func (s *Store) RequeueStaleTasks(ctx context.Context, claimedBefore time.Time) (_ []*Task, err error) {
	ctx, span := s.start(ctx, "statestore.RequeueStaleTasks")
	defer finish(span, &err)
	var rows []*db.RequeueStaleTasksRow
	err = s.leaderOnly(ctx, func(ctx context.Context, s *Store) (err error) {
		rows, err = s.q.RequeueStaleTasks(ctx, s.conn, claimedBefore)
		return mapError("requeue stale tasks", err)
	})
	if err != nil {
		return nil, err
	}
	out := tasksFromRows(rows)
	s.tasksRecovered(ctx, out)
	return out, nil
}

// RequeueTasks is the owner giving claimed tasks back to the queue (retry +
// 1), e.g. on shutdown, in one statement. Each claim applies only while it
// is live (the task running under that attempt); the others write nothing.
// It returns the tasks it requeued; if some claims were not live, the
// error (returned with those tasks) wraps ErrStaleAttempt (requeued,
// complete or terminated since), ErrConflict (no longer running, e.g.
// terminating) or ErrNotFound for the first of them; see
// ClaimsNotLiveError. A task named twice is invalid input
// (*InvalidInputError on claims[i].TaskID), nothing written.
func (s *Store) RequeueTasks(ctx context.Context, claims ...Claim) (_ []*Task, err error) {
	ctx, span := s.start(ctx, "statestore.RequeueTasks")
	defer finish(span, &err)
	ids, attempts, err := claimArgs(claims)
	if err != nil || len(ids) == 0 {
		return []*Task{}, err
	}
	rows, err := s.q.RequeueClaimedTasks(ctx, s.conn, db.RequeueClaimedTasksParams{TaskIds: ids, Attempts: attempts})
	if err != nil {
		return nil, mapError("requeue tasks", err)
	}
	statementBoundary(ctx, "RequeueTasks: before checking every claim was live")
	out := tasksFromRows(rows)
	s.tasksRecovered(ctx, out)
	return out, s.claimsNotLive(ctx, "requeue tasks", claims, out)
}

// claimArgs validates claims and splits them into the query's arrays.
func claimArgs(claims []Claim) ([]uuid.UUID, []int64, error) {
	ids, attempts := make([]uuid.UUID, len(claims)), make([]int64, len(claims))
	seen := make(map[uuid.UUID]bool, len(claims))
	for i, c := range claims {
		if c.Attempt < 1 {
			return nil, nil, invalid(fmt.Sprintf("claims[%d].Attempt", i), "must be a claim's attempt (1 or more), got %d", c.Attempt)
		}
		if seen[c.TaskID] {
			return nil, nil, invalid(fmt.Sprintf("claims[%d].TaskID", i), "appears twice")
		}
		seen[c.TaskID] = true
		ids[i], attempts[i] = c.TaskID, c.Attempt
	}
	return ids, attempts, nil
}

// ClaimsNotLiveError reports the claims a batch call (CompleteTasks,
// RequeueTasks) did not apply because they were not live; the call applied
// the others. It wraps the reason for the first of them (ErrStaleAttempt,
// ErrConflict or ErrNotFound), so errors.Is works on it.
type ClaimsNotLiveError struct {
	// Claims are the claims not applied, in the order given.
	Claims []Claim
	err    error
}

// Error implements error.
func (e *ClaimsNotLiveError) Error() string {
	if len(e.Claims) == 1 {
		return e.err.Error()
	}
	return fmt.Sprintf("%d claims not live, first: %v", len(e.Claims), e.err)
}

// Unwrap returns the reason for the first claim.
func (e *ClaimsNotLiveError) Unwrap() error { return e.err }

// claimsNotLive says why some claims were not applied (nil when all were):
// it reads their current state after the write.
func (s *Store) claimsNotLive(ctx context.Context, op string, claims []Claim, done []*Task) error {
	if len(done) == len(claims) {
		return nil
	}
	applied := make(map[uuid.UUID]bool, len(done))
	for _, t := range done {
		applied[t.ID] = true
	}
	var missing []Claim
	ids := []uuid.UUID{}
	for _, c := range claims {
		if !applied[c.TaskID] {
			missing = append(missing, c)
			ids = append(ids, c.TaskID)
		}
	}
	rows, err := s.q.GetClaimStates(ctx, s.conn, ids)
	if err != nil {
		return &ClaimsNotLiveError{Claims: missing, err: mapError(op, err)}
	}
	cur := make(map[uuid.UUID]*db.GetClaimStatesRow, len(rows))
	for _, r := range rows {
		cur[r.TaskID] = r
	}
	c := missing[0]
	r := cur[c.TaskID]
	switch {
	case r == nil:
		err = fmt.Errorf("%s: task %s: %w", op, c.TaskID, ErrNotFound)
	case r.Attempt != c.Attempt || r.ClaimedBy == nil ||
		(r.Status != string(StatusRunning) && r.Status != string(StatusTerminating)):
		err = fmt.Errorf("%s: task %s: %w: attempt %d is not its live claim (attempt %d, status %s)",
			op, c.TaskID, ErrStaleAttempt, c.Attempt, r.Attempt, r.Status)
	case r.Status != string(StatusRunning):
		err = fmt.Errorf("%s: task %s: %w: it is %s, not running", op, c.TaskID, ErrConflict, r.Status)
	default:
		err = fmt.Errorf("%s: task %s: %w: it changed concurrently", op, c.TaskID, ErrConflict)
	}
	return &ClaimsNotLiveError{Claims: missing, err: err}
}

// maxTerminateRounds bounds TerminateTask's lock-and-walk rounds; each
// extra round means subtasks were being created under the tree.
const maxTerminateRounds = 100

// TerminateTask marks task id and all its descendants: tasks not yet
// running become terminated, running ones terminating (their workers finish
// the job, or recovery ends them); final and already terminating ones are
// left alone (not reported, their terminated_by kept). by is recorded as
// terminated_by. It returns the tasks it changed; a missing task is
// ErrNotFound.
//
// When it returns, no descendant is left requested, queued or running
// unmarked, even with subtasks being created concurrently: it locks every
// task of the tree, walks the tree again and repeats until a walk finds
// nothing it had not locked before the walk began, then marks them all, in
// one transaction. CreateSubtask share-locks the parent and refuses a closed
// one, so a subtask either commits before a walk sees the tree (and is
// marked) or is refused.
//
// Each walk must see the subtasks committed before it, so TerminateTask
// needs READ COMMITTED: on a Store bound by WithTx to a REPEATABLE READ or
// SERIALIZABLE transaction (whose snapshot would hide them) it is refused
// with an *InvalidInputError on "transaction", nothing written.
func (s *Store) TerminateTask(ctx context.Context, id uuid.UUID, by string) (_ []*Task, err error) {
	ctx, span := s.start(ctx, "statestore.TerminateTask")
	defer finish(span, &err)
	if err := validateText(by, "by", 256); err != nil {
		return nil, err
	}
	if s.tx != nil {
		iso, err := s.q.TransactionIsolation(ctx, s.conn)
		if err != nil {
			return nil, mapError("terminate task "+id.String()+": read isolation level", err)
		}
		if iso != "read committed" {
			return nil, fmt.Errorf("terminate task %s: %w", id, invalid("transaction",
				"isolation level is %s; TerminateTask needs READ COMMITTED (its snapshot would hide subtasks committed meanwhile)", iso))
		}
	}
	var rows []*db.TerminateTasksRow
	// Rounds lock new rows after old ones, so two terminations of
	// overlapping trees can deadlock: PostgreSQL aborts one; it is retried.
	err = s.leaderTxRetryingDeadlocks(ctx, func(ctx context.Context, tx *Store) (err error) {
		rows, err = tx.terminateTree(ctx, id, by)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := tasksFromRows(rows)
	s.tasksRecovered(ctx, out)
	return out, nil
}

func (s *Store) terminateTree(ctx context.Context, id uuid.UUID, by string) ([]*db.TerminateTasksRow, error) {
	op := "terminate task " + id.String()
	locked := map[uuid.UUID]bool{}
	for round := 0; ; round++ {
		if round == maxTerminateRounds {
			return nil, fmt.Errorf("%s: %w: subtasks kept appearing under the tree", op, ErrConflict)
		}
		statementBoundary(ctx, "TerminateTask: before a lock-and-walk round")
		tree, err := s.q.LockTaskTree(ctx, s.conn, id)
		if err != nil {
			return nil, mapError(op, err)
		}
		if len(tree) == 0 {
			return nil, fmt.Errorf("%s: %w", op, ErrNotFound)
		}
		// Every task the walk found is locked now, final ones too. A
		// walk is trusted only if every task it found was already locked
		// before it began (so the first walk never is): then no subtask
		// can be on its way under any of them. Final tasks count as well:
		// a subtask created under a parent just before the parent became
		// final is no less a descendant.
		grew := false
		ids := make([]uuid.UUID, 0, len(tree))
		for _, t := range tree {
			if !locked[t.TaskID] {
				locked[t.TaskID], grew = true, true
			}
			if !TaskStatus(t.Status).Final() {
				ids = append(ids, t.TaskID)
			}
		}
		if grew {
			continue
		}
		statementBoundary(ctx, "TerminateTask: tree locked, before marking")
		rows, err := s.q.TerminateTasks(ctx, s.conn, db.TerminateTasksParams{TaskIds: ids, TerminatedBy: by})
		return rows, mapError(op, err)
	}
}

// statementHook, when set (tests only), runs at the statement boundaries of
// the calls that take several statements, so tests can pause there.
var statementHook atomic.Pointer[func(ctx context.Context, where string)]

func statementBoundary(ctx context.Context, where string) {
	if h := statementHook.Load(); h != nil {
		(*h)(ctx, where)
	}
}

// deadlockRetries is how often a transaction aborted to break a deadlock is
// run again before its error is returned.
const deadlockRetries = 3

// leaderTxRetryingDeadlocks runs fn in a transaction (fenced when s is a
// leader's store), and runs it again, up to deadlockRetries times, when
// PostgreSQL aborted it to break a deadlock. For calls that lock a tree in
// rounds (termination, retention), whose lock order cannot be global.
func (s *Store) leaderTxRetryingDeadlocks(ctx context.Context, fn func(ctx context.Context, tx *Store) error) error {
	for try := 0; ; try++ {
		err := s.leaderOnly(ctx, func(ctx context.Context, s *Store) error {
			return s.InTx(ctx, fn)
		})
		if err == nil || try == deadlockRetries || !isDeadlock(err) {
			return err
		}
	}
}

// isDeadlock reports whether PostgreSQL aborted the statement to break a
// deadlock.
func isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == pgDeadlockDetected
}

// endOfTime is the cursor of the first page: later than any task.
var endOfTime = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// Cursors are opaque to callers: base64 of created_at (µs) and task id.
func encodeCursor(at time.Time, id uuid.UUID) string {
	var b [24]byte
	binary.BigEndian.PutUint64(b[:8], uint64(at.UnixMicro()))
	copy(b[8:], id[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodeCursor(c string) (time.Time, uuid.UUID, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) != 24 {
		return time.Time{}, uuid.Nil, invalid("filter.Cursor", "is not a cursor returned by ListTasks")
	}
	var id uuid.UUID
	copy(id[:], b[8:])
	return time.UnixMicro(int64(binary.BigEndian.Uint64(b[:8]))).UTC(), id, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// CompleteTasks marks claimed tasks complete with result status rs (use
// ResultFailure to fail them), in one statement. Each claim applies only
// while it is live: the task running under the named attempt; the others
// write nothing. It returns the tasks it completed; if some claims were not
// live, the error (returned with those tasks) wraps ErrStaleAttempt (the
// task was requeued, perhaps claimed again, or ended since), ErrConflict (no longer
// running, e.g. terminating: end it with UpdateTask to terminated) or
// ErrNotFound for the first of them; see ClaimsNotLiveError. A claim
// already completed under its attempt with the same result status counts
// as applied and its task is returned (after them): a retry whose first
// call's answer was lost succeeds, and writes nothing. Use UpdateTask
// (with TaskUpdate.Attempt) to set more of the result. A task named twice
// is invalid input (*InvalidInputError on claims[i].TaskID), nothing
// written.
func (s *Store) CompleteTasks(ctx context.Context, rs ResultStatus, claims ...Claim) (_ []*Task, err error) {
	ctx, span := s.start(ctx, "statestore.CompleteTasks")
	defer finish(span, &err)
	if err := validateResultStatus(rs, "result status"); err != nil {
		return nil, err
	}
	ids, attempts, err := claimArgs(claims)
	if err != nil || len(ids) == 0 {
		return []*Task{}, err
	}
	rows, err := s.q.CompleteTasks(ctx, s.conn, db.CompleteTasksParams{
		TaskIds: ids, Attempts: attempts, ResultStatus: string(rs)})
	if err != nil {
		return nil, mapError("complete tasks", err)
	}
	statementBoundary(ctx, "CompleteTasks: before checking every claim was live")
	out := tasksFromRows(rows)
	again, err := s.alreadyCompleted(ctx, rs, claims, out)
	if err != nil {
		return out, err
	}
	s.tasksCompleted(ctx, out) // only the tasks this call completed
	out = append(out, again...)
	return out, s.claimsNotLive(ctx, "complete tasks", claims, out)
}
