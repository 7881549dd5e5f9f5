package statestore

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/gen/db"
)

// TaskStatus is where a task is in its lifecycle:
//
//	requested → queued → running → complete
//	any non-final state → terminating → terminated (or straight to terminated)
//
// complete and terminated are final.
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
	StatusRequested:   {},
	StatusQueued:      {StatusRequested},
	StatusRunning:     {StatusQueued},
	StatusComplete:    {StatusRunning},
	StatusTerminating: {StatusRequested, StatusQueued, StatusRunning},
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
	ID             uuid.UUID
	ParentID       *uuid.UUID  // nil for a top-level task
	SubtaskIDs     []uuid.UUID // in the order they were created
	Status         TaskStatus
	Action         string
	DesignRef      string
	NodeFilter     json.RawMessage // nil when unset
	RequestContext json.RawMessage // nil when unset
	Retry          int
	CreatedAt      time.Time
	CreatedBy      string
	UpdatedAt      time.Time
	TerminatedAt   *time.Time
	TerminatedBy   string
	Terminate      bool
	Result         TaskResult
	// Version increases with every change to the task's own fields; pass it
	// to UpdateTask. Appending messages or subtasks does not change it.
	Version int64
	// LastMessageSeq is the sequence number of the task's newest message.
	LastMessageSeq int64
	ClaimedBy      string     // who claimed it (running tasks)
	ClaimedAt      *time.Time // when
	// Messages is filled by GetTask and by ListTasks with WithMessages.
	Messages []ResultMessage
}

// TaskResult is the outcome part of a task.
type TaskResult struct {
	Status  ResultStatus
	Message string
	Reason  string
	// ErrorCount is the number of the task's messages flagged as errors,
	// kept by the store as messages are appended.
	ErrorCount int
	Successes  []string
	Failures   []string
	Links      json.RawMessage // a JSON array
}

// NewTask describes a task to create.
type NewTask struct {
	// ID of the new task; a time-ordered UUIDv7 is generated when zero.
	ID uuid.UUID
	// ParentID makes the task a subtask; the parent's subtask list records
	// it in the same statement.
	ParentID *uuid.UUID
	// Action is required: lower-case letters, digits and underscores.
	Action string
	// Status defaults to queued; requested is the only other choice.
	Status         TaskStatus
	DesignRef      string
	NodeFilter     json.RawMessage
	RequestContext json.RawMessage
	CreatedBy      string
}

func taskFromRow(r *db.Tasks) *Task {
	t := &Task{
		ID: r.TaskID, ParentID: r.ParentTaskID, SubtaskIDs: nonNil(r.SubtaskIDList),
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
		ClaimedBy: deref(r.ClaimedBy), ClaimedAt: utcPtr(r.ClaimedAt),
	}
	return t
}

func tasksFromRows(rows []*db.Tasks) []*Task {
	out := make([]*Task, len(rows))
	for i, r := range rows {
		out[i] = taskFromRow(r)
	}
	return out
}

// CreateTask creates one task. See CreateTasks.
func (s *Store) CreateTask(ctx context.Context, nt NewTask) (*Task, error) {
	tasks, err := s.CreateTasks(ctx, nt)
	if err != nil {
		return nil, err
	}
	return tasks[0], nil
}

// CreateSubtask creates a task under parent and records it in the parent's
// subtask list in the same statement: the two never disagree.
func (s *Store) CreateSubtask(ctx context.Context, parent uuid.UUID, nt NewTask) (*Task, error) {
	nt.ParentID = &parent
	return s.CreateTask(ctx, nt)
}

// CreateTasks creates many tasks in one statement (one round trip) and
// returns them in the order given. A subtask's parent may be an existing
// task or one earlier in the same batch. A missing parent fails the whole
// batch with ErrNotFound; a taken id with ErrConflict; nothing is written.
func (s *Store) CreateTasks(ctx context.Context, tasks ...NewTask) ([]*Task, error) {
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
	rows, err := s.q.InsertTasks(ctx, s.conn, p)
	if err != nil {
		return nil, mapError("create tasks", err)
	}
	byID := make(map[uuid.UUID]*Task, len(rows))
	for _, r := range rows {
		row := db.Tasks(*r)
		byID[r.TaskID] = taskFromRow(&row)
	}
	out := make([]*Task, len(tasks))
	for i, id := range p.TaskIds {
		if out[i] = byID[id]; out[i] == nil {
			return nil, fmt.Errorf("statestore: create tasks: task %s missing from the database's answer", id)
		}
	}
	return out, nil
}

// GetTask reads one task with all its messages in order (two queries).
// A missing task is ErrNotFound.
func (s *Store) GetTask(ctx context.Context, id uuid.UUID) (*Task, error) {
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
	Statuses      []TaskStatus
	Actions       []string
	ParentID      *uuid.UUID
	CreatedAfter  *time.Time
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
	Tasks []*Task
	// Next is the cursor of the following page; empty on the last page.
	Next string
}

// ListTasks lists tasks newest first, filtered, one page at a time (keyset
// pagination: pages stay stable while tasks are added). It costs one query,
// two with WithMessages, whatever the page size.
func (s *Store) ListTasks(ctx context.Context, f TaskFilter) (*TaskPage, error) {
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
	rows, err := s.q.ListTasks(ctx, s.conn, p)
	if err != nil {
		return nil, mapError("list tasks", err)
	}
	page := &TaskPage{}
	if len(rows) > limit {
		rows = rows[:limit]
		last := rows[limit-1]
		page.Next = encodeCursor(last.CreatedAt, last.TaskID)
	}
	page.Tasks = tasksFromRows(rows)
	if f.WithMessages {
		if err := s.attachMessages(ctx, page.Tasks); err != nil {
			return nil, err
		}
	}
	return page, nil
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
func (s *Store) ListSubtasks(ctx context.Context, parent uuid.UUID, set SubtaskSet) ([]*Task, error) {
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
	Status         *TaskStatus
	DesignRef      *string
	NodeFilter     json.RawMessage
	RequestContext json.RawMessage
	Retry          *int
	Terminate      *bool
	TerminatedBy   *string
	ResultStatus   *ResultStatus
	ResultMessage  *string
	ResultReason   *string
	Successes      []string // nil: unchanged; empty: cleared
	Failures       []string // nil: unchanged; empty: cleared
	Links          json.RawMessage
}

// UpdateTask changes the given fields of task id if its version is still
// expectedVersion, and returns the task as written (with a new version).
// A stale version is ErrConflict and a missing task ErrNotFound; a status
// change the lifecycle does not allow is an *InvalidInputError on "status".
// In every failure nothing is written. Messages appended concurrently are
// never lost: the update touches only the named fields.
func (s *Store) UpdateTask(ctx context.Context, id uuid.UUID, expectedVersion int64, u TaskUpdate) (*Task, error) {
	if err := validateUpdate(u); err != nil {
		return nil, err
	}
	p := db.UpdateTaskParams{
		TaskID: id, ExpectedVersion: expectedVersion, AllowedFrom: []string{},
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
		return taskFromRow(r), nil
	}
	mapped := mapError("update task "+id.String(), err)
	if !isNotFound(mapped) {
		return nil, mapped
	}
	// No row: find out which condition failed, for a precise error.
	cur, gerr := s.q.GetTask(ctx, s.conn, id)
	if gerr != nil {
		return nil, mapError("update task "+id.String(), gerr)
	}
	if cur.Version != expectedVersion {
		return nil, fmt.Errorf("update task %s: %w: version is %d, not %d", id, ErrConflict, cur.Version, expectedVersion)
	}
	return nil, fmt.Errorf("update task %s: %w", id,
		invalid("status", "cannot change from %s to %s", cur.Status, *u.Status))
}

// ClaimTasks atomically takes up to max of the oldest queued tasks, only
// of the given actions when any are given, marks them running and records
// claimer and claim time. Concurrent claimers never get the same task (rows
// another claimer holds are skipped, not waited for). An empty result means
// no work: see WaitForQueued.
func (s *Store) ClaimTasks(ctx context.Context, claimer string, max int, actions ...string) ([]*Task, error) {
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
	var rows []*db.Tasks
	err := s.leaderOnly(ctx, func(ctx context.Context, s *Store) (err error) {
		rows, err = s.q.ClaimTasks(ctx, s.conn, db.ClaimTasksParams{
			ClaimedBy: claimer, Actions: nonNil(actions), MaxTasks: int32(max),
		})
		return mapError("claim tasks", err)
	})
	if err != nil {
		return nil, err
	}
	return tasksFromRows(rows), nil
}

// WaitForQueued blocks until a task of one of actions (of any action when
// none are given) may have been queued (a notification), the poll interval
// passes, or ctx ends (then it returns ctx's error). Pair it with
// ClaimTasks, or use ClaimTasksWait.
func (s *Store) WaitForQueued(ctx context.Context, actions ...string) error {
	sub := s.wake.subscribe(channelTaskQueued, actions...)
	defer s.wake.unsubscribe(sub)
	return wait(ctx, sub.ch, s.poll)
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
func (s *Store) ClaimTasksWait(ctx context.Context, claimer string, max int, actions ...string) ([]*Task, error) {
	var retry time.Duration
	for {
		// Subscribe before claiming so a task queued in between wakes us.
		sub := s.wake.subscribe(channelTaskQueued, actions...)
		tasks, err := s.claimOrWait(ctx, sub, &retry, claimer, max, actions)
		s.wake.unsubscribe(sub)
		if err != nil || len(tasks) > 0 {
			return tasks, err
		}
	}
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

// RequeueTasksOfClaimer puts every running task of claimer back in the
// queue (retry + 1): the leader's recovery when an instance is gone.
func (s *Store) RequeueTasksOfClaimer(ctx context.Context, claimer string) ([]*Task, error) {
	if err := validateClaimer(claimer); err != nil {
		return nil, err
	}
	var rows []*db.Tasks
	err := s.leaderOnly(ctx, func(ctx context.Context, s *Store) (err error) {
		rows, err = s.q.RequeueTasksOfClaimer(ctx, s.conn, claimer)
		return mapError("requeue tasks of "+claimer, err)
	})
	if err != nil {
		return nil, err
	}
	return tasksFromRows(rows), nil
}

// RequeueStaleTasks puts back in the queue (retry + 1) every running task
// claimed before claimedBefore, whoever claimed it.
func (s *Store) RequeueStaleTasks(ctx context.Context, claimedBefore time.Time) ([]*Task, error) {
	var rows []*db.Tasks
	err := s.leaderOnly(ctx, func(ctx context.Context, s *Store) (err error) {
		rows, err = s.q.RequeueStaleTasks(ctx, s.conn, claimedBefore)
		return mapError("requeue stale tasks", err)
	})
	if err != nil {
		return nil, err
	}
	return tasksFromRows(rows), nil
}

// TerminateTask marks task id and all its descendants, in one statement:
// tasks not yet running become terminated, running ones terminating (their
// workers finish the job), final ones are left alone. by is recorded as
// terminated_by. It returns the tasks it changed; a missing task is
// ErrNotFound.
func (s *Store) TerminateTask(ctx context.Context, id uuid.UUID, by string) ([]*Task, error) {
	if err := validateText(by, "by", 256); err != nil {
		return nil, err
	}
	var rows []*db.Tasks
	err := s.leaderOnly(ctx, func(ctx context.Context, s *Store) (err error) {
		rows, err = s.q.TerminateTaskTree(ctx, s.conn, db.TerminateTaskTreeParams{TaskID: id, TerminatedBy: by})
		if err != nil {
			return mapError("terminate task "+id.String(), err)
		}
		if len(rows) == 0 {
			_, err = s.q.GetTask(ctx, s.conn, id)
			return mapError("terminate task "+id.String(), err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return tasksFromRows(rows), nil
}

// RetentionResult counts what DeleteTasksCreatedBefore removed.
type RetentionResult struct {
	Tasks    int64
	Messages int64
	Batches  int
}

// DeleteTasksCreatedBefore deletes every top-level task created before
// cutoff with all its subtasks and messages, batchSize trees per statement
// (default 500) so no table is locked for long, and never VACUUM FULL.
// Build data and boot actions are never touched. It stops at ctx's end,
// returning what was deleted so far with the error.
func (s *Store) DeleteTasksCreatedBefore(ctx context.Context, cutoff time.Time, batchSize int) (RetentionResult, error) {
	var res RetentionResult
	if batchSize == 0 {
		batchSize = 500
	}
	if batchSize < 1 || batchSize > 100000 {
		return res, invalid("batchSize", "must be between 1 and 100000, got %d", batchSize)
	}
	for {
		n, err := s.DeleteTaskTreesBatch(ctx, cutoff, batchSize)
		if err != nil {
			return res, err
		}
		if n.Tasks == 0 {
			return res, nil
		}
		res.Tasks += n.Tasks
		res.Messages += n.Messages
		res.Batches++
		s.logger.DebugContext(ctx, "statestore: retention batch", "tasks", n.Tasks, "messages", n.Messages)
	}
}

// DeleteTaskTreesBatch is one step of DeleteTasksCreatedBefore: it deletes
// up to maxTrees top-level tasks created before cutoff, with their subtasks
// and messages, in one statement, and says how much went (0 tasks: done).
// Use it to report progress of a large purge.
func (s *Store) DeleteTaskTreesBatch(ctx context.Context, cutoff time.Time, maxTrees int) (RetentionResult, error) {
	if maxTrees < 1 || maxTrees > 100000 {
		return RetentionResult{}, invalid("maxTrees", "must be between 1 and 100000, got %d", maxTrees)
	}
	var n *db.DeleteTaskTreesCreatedBeforeRow
	err := s.leaderOnly(ctx, func(ctx context.Context, s *Store) (err error) {
		n, err = s.q.DeleteTaskTreesCreatedBefore(ctx, s.conn, db.DeleteTaskTreesCreatedBeforeParams{
			CreatedBefore: cutoff, MaxRoots: int32(maxTrees),
		})
		return mapError("delete old tasks", err)
	})
	if err != nil {
		return RetentionResult{}, err
	}
	res := RetentionResult{Tasks: n.Tasks, Messages: n.Messages}
	if n.Tasks > 0 {
		res.Batches = 1
	}
	return res, nil
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

// CompleteTasks marks running tasks complete with result status rs, in one
// statement, but only tasks still claimed by claimer: a task requeued and
// claimed by another instance in the meantime is left alone (and not
// returned). Use it to finish a claimed batch in one round trip; use
// UpdateTask to set more of the result.
func (s *Store) CompleteTasks(ctx context.Context, claimer string, rs ResultStatus, ids ...uuid.UUID) ([]*Task, error) {
	if err := validateClaimer(claimer); err != nil {
		return nil, err
	}
	if err := validateResultStatus(rs, "result status"); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return []*Task{}, nil
	}
	rows, err := s.q.CompleteTasks(ctx, s.conn, db.CompleteTasksParams{
		TaskIds: ids, ClaimedBy: claimer, ResultStatus: string(rs)})
	if err != nil {
		return nil, mapError("complete tasks", err)
	}
	return tasksFromRows(rows), nil
}
