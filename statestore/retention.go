package statestore

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/gen/db"
)

// RetentionResult counts what DeleteTasksCreatedBefore removed.
type RetentionResult struct {
	// Tasks and Messages count the rows really deleted (every task of a
	// deleted tree is locked first, so none escapes the count).
	Tasks int64
	// Messages counts the messages deleted with those tasks.
	Messages int64
	// Batches counts the batches (one transaction each) that looked at
	// trees.
	Batches int
	// TreesKept counts the trees old enough but left in place because a
	// task in them is not complete or terminated (never with
	// IncludeActive).
	TreesKept int64
	// TreesBusy counts the trees old enough but not looked at because
	// another transaction held their top-level task (a worker updating
	// it, appending a message, adding a subtask): they were left in place;
	// a later purge takes them.
	TreesBusy int64
}

// add accumulates n into r.
func (r *RetentionResult) add(n RetentionResult) {
	r.Tasks += n.Tasks
	r.Messages += n.Messages
	r.TreesKept += n.TreesKept
	r.TreesBusy += n.TreesBusy
	r.Batches += n.Batches
}

// RetentionOptions tune DeleteTasksCreatedBefore.
type RetentionOptions struct {
	// BatchSize is the number of trees per transaction (default 500), so
	// no table is locked for long.
	BatchSize int
	// IncludeActive also deletes trees in which a task is still requested,
	// queued, running or terminating: work other instances may be doing.
	// Off by default: only trees whose every task is complete or
	// terminated go.
	IncludeActive bool
	// OnBatch, when set, is called after each batch (each committed
	// transaction) with the totals so far: progress for a large purge.
	OnBatch func(soFar RetentionResult)
}

// DeleteTasksCreatedBefore deletes every top-level task created before
// cutoff with all its subtasks and messages, when every task of the tree is
// complete or terminated (unless opts.IncludeActive), batch by batch, and
// never VACUUM FULL. Build data and boot actions are never touched. It
// stops at ctx's end, returning what was deleted so far with the error.
//
// Each batch locks its top-level tasks, then locks every task of their
// trees until a fresh walk finds no task it had not locked (subtask
// creation share-locks the parent, so no subtask can appear under a locked
// task), and only then checks the statuses and deletes: the check and the
// counts are those of the rows deleted. Trees whose top-level task another
// transaction holds are skipped and counted in TreesBusy.
func (s *Store) DeleteTasksCreatedBefore(ctx context.Context, cutoff time.Time, opts RetentionOptions) (_ RetentionResult, err error) {
	ctx, span := s.start(ctx, "statestore.DeleteTasksCreatedBefore")
	defer finish(span, &err)
	var res RetentionResult
	it := s.newRetention(cutoff, opts)
	for {
		n, err := it.next(ctx)
		if err != nil {
			return res, err
		}
		if n.Batches == 0 {
			return res, nil
		}
		res.add(n)
		if opts.OnBatch != nil {
			opts.OnBatch(res)
		}
		s.logger.DebugContext(ctx, "statestore: retention batch", "tasks", n.Tasks, "messages", n.Messages,
			"trees_kept", n.TreesKept, "trees_busy", n.TreesBusy)
	}
}

// retention deletes old task trees one batch at a time (see
// DeleteTasksCreatedBefore).
type retention struct {
	s       *Store
	cutoff  time.Time
	opts    RetentionOptions
	after   time.Time
	afterID uuid.UUID
	err     error
}

// newRetention starts a batch-by-batch purge of the trees created before
// cutoff. Call next until it returns a result with no batch.
func (s *Store) newRetention(cutoff time.Time, opts RetentionOptions) *retention {
	r := &retention{s: s, cutoff: cutoff, opts: opts, after: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)}
	if opts.BatchSize == 0 {
		r.opts.BatchSize = 500
	}
	if r.opts.BatchSize < 1 || r.opts.BatchSize > 100000 {
		r.err = invalid("opts.BatchSize", "must be between 1 and 100000, got %d", opts.BatchSize)
	}
	return r
}

// next runs one batch, in one transaction: up to BatchSize trees older than
// the cutoff, after those of earlier batches. Batches is 0 when no tree was
// left to look at.
func (r *retention) next(ctx context.Context) (RetentionResult, error) {
	if r.err != nil {
		return RetentionResult{}, r.err
	}
	var res RetentionResult
	var last *db.LockRetentionRootsRow
	// Trees are locked root first, then level by level, so a transaction
	// locking a subtask and then its parent can deadlock with a batch:
	// PostgreSQL aborts one; the batch is retried.
	err := r.s.leaderTxRetryingDeadlocks(ctx, func(ctx context.Context, tx *Store) (err error) {
		res, last, err = tx.retentionBatch(ctx, r)
		return err
	})
	if err != nil {
		return RetentionResult{}, err
	}
	if last == nil {
		return RetentionResult{}, nil
	}
	r.after, r.afterID = last.CreatedAt, last.TaskID
	res.Batches = 1
	return res, nil
}

// retentionBatch is one batch of r, run in the transaction of s. It
// returns the last root scanned (nil when none was left).
func (s *Store) retentionBatch(ctx context.Context, r *retention) (RetentionResult, *db.LockRetentionRootsRow, error) {
	const op = "delete old tasks"
	var res RetentionResult
	roots, err := s.q.LockRetentionRoots(ctx, s.conn, db.LockRetentionRootsParams{
		CreatedBefore: r.cutoff, MaxRoots: int32(r.opts.BatchSize),
		AfterCreatedAt: r.after, AfterTaskID: r.afterID,
	})
	if err != nil {
		return res, nil, mapError(op, err)
	}
	if len(roots) == 0 {
		return res, nil, nil
	}
	last := roots[len(roots)-1]
	ids := make([]uuid.UUID, 0, len(roots))
	locked := make(map[uuid.UUID]bool, len(roots))
	for _, root := range roots {
		if root.Locked {
			ids = append(ids, root.TaskID)
			locked[root.TaskID] = true
		} else {
			res.TreesBusy++
		}
	}
	if len(ids) == 0 {
		return res, last, nil
	}
	// Every root is locked now; each round walks the trees in a fresh
	// snapshot and locks what it finds. A walk is trusted only when every
	// task it found was locked before it began: then no subtask can be on
	// its way under any of them (subtask creation share-locks the parent).
	var tree []*db.LockRetentionTreesRow
	for round := 0; ; round++ {
		if round == maxTerminateRounds {
			return res, nil, fmt.Errorf("%s: %w: subtasks kept appearing under the trees", op, ErrConflict)
		}
		statementBoundary(ctx, "Retention: before a lock-and-walk round")
		tree, err = s.q.LockRetentionTrees(ctx, s.conn, ids)
		if err != nil {
			return res, nil, mapError(op, err)
		}
		grew := false
		for _, t := range tree {
			if !locked[t.TaskID] {
				locked[t.TaskID], grew = true, true
			}
		}
		if !grew {
			break
		}
	}
	// Which tree each task belongs to, following parent links (memoised,
	// so linear in the number of tasks).
	parent := make(map[uuid.UUID]*uuid.UUID, len(tree))
	for _, t := range tree {
		parent[t.TaskID] = t.ParentTaskID
	}
	rootOf := make(map[uuid.UUID]uuid.UUID, len(tree))
	var path []uuid.UUID
	find := func(id uuid.UUID) uuid.UUID {
		path = path[:0]
		root := id
		for {
			if r, ok := rootOf[root]; ok {
				root = r
				break
			}
			path = append(path, root)
			p := parent[root]
			if p == nil {
				break
			}
			if _, ok := parent[*p]; !ok {
				break // cannot happen: a walked task's parent was walked
			}
			root = *p
		}
		for _, id := range path {
			rootOf[id] = root
		}
		return root
	}
	active := map[uuid.UUID]bool{}
	for _, t := range tree {
		if !TaskStatus(t.Status).Final() {
			active[find(t.TaskID)] = true
		}
	}
	del := make([]uuid.UUID, 0, len(tree))
	for _, t := range tree {
		if r.opts.IncludeActive || !active[find(t.TaskID)] {
			del = append(del, t.TaskID)
		}
	}
	if !r.opts.IncludeActive {
		res.TreesKept = int64(len(active))
	}
	if len(del) == 0 {
		return res, last, nil
	}
	statementBoundary(ctx, "Retention: trees locked, before deleting")
	n, err := s.q.DeleteTasksByID(ctx, s.conn, del)
	if err != nil {
		return res, nil, mapError(op, err)
	}
	res.Tasks, res.Messages = n.Tasks, n.Messages
	return res, last, nil
}

// RetentionPreview counts, by status, the tasks of the trees whose
// top-level task was created before a cutoff: what a purge would take.
type RetentionPreview struct {
	// Finished counts the tasks of trees whose every task is complete or
	// terminated: these go by default.
	Finished map[TaskStatus]int64
	// Active counts the tasks of the other trees: these go only with
	// RetentionOptions.IncludeActive.
	Active map[TaskStatus]int64
}

// PreviewRetention counts what DeleteTasksCreatedBefore(cutoff) would
// delete, by status, without deleting anything.
func (s *Store) PreviewRetention(ctx context.Context, cutoff time.Time) (_ *RetentionPreview, err error) {
	ctx, span := s.start(ctx, "statestore.PreviewRetention")
	defer finish(span, &err)
	rows, err := s.q.CountTaskTreesCreatedBefore(ctx, s.conn, cutoff)
	if err != nil {
		return nil, mapError("count old tasks", err)
	}
	p := &RetentionPreview{Finished: map[TaskStatus]int64{}, Active: map[TaskStatus]int64{}}
	for _, r := range rows {
		if r.ActiveTree {
			p.Active[TaskStatus(r.Status)] += r.Tasks
		} else {
			p.Finished[TaskStatus(r.Status)] += r.Tasks
		}
	}
	return p, nil
}
