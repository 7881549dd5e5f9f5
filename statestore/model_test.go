package statestore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// The model-based concurrency test of the task lifecycle.
//
// Two "processes" (two *statestore.Store, each with its own pgx pool, so
// their statements interleave on separate connections exactly as two
// orchestrator instances would; not two OS processes) run three workers
// each. Every worker runs random calls — create (sometimes in a
// transaction that pauses before committing, with the new id already known
// to the others), create-subtask (likewise), claim, complete, fail, requeue-stale,
// requeue-by-claimer, requeue-by-owner, terminate, update, append, get —
// against the same database, acting on purpose with old claims and old
// versions. A statement hook pauses at random at the statement boundaries
// of multi-statement calls, and a third connection keeps taking row locks
// (FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE) on random tasks and
// holding them for a while.
//
// Every call and its return are recorded and checked:
//   - per task, the history must be linearizable (porcupine) against a
//     model of the lifecycle: statuses and their allowed changes, the
//     version bumped by every change, the attempt bumped by every claim,
//     the claim a write must name, the errors each state allows;
//   - after the run: every running or terminating task has a claim; after
//     each TerminateTask returned, no task of its tree was left requested,
//     queued or running (a complete one must have been completed before);
//   - recovery then leaves no task running or terminating.
//
// STATEMGMT_MODEL=2m runs it for two minutes instead of a few seconds.
func TestTaskLifecycleModel(t *testing.T) {
	dur := 4 * time.Second
	if v := os.Getenv("STATEMGMT_MODEL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("STATEMGMT_MODEL=%q: %v", v, err)
		}
		dur = d
	}
	db := statetest.New(t)
	procs := []*modelProc{}
	for _, name := range []string{"orch-A", "orch-B"} {
		procs = append(procs, &modelProc{name: name, s: statestore.New(storePool(t, db), statestore.Options{DisableListen: true})})
	}
	lockPool := storePool(t, db)
	m := &modelRun{t: t, start: time.Now(), version: map[uuid.UUID]int64{}, claims: map[string][]statestore.Claim{}, stats: map[string]int{},
		inflight: map[uuid.UUID]int{}, pending: map[uuid.UUID]bool{}}

	defer statestore.SetStatementHook(func(ctx context.Context, where string) {
		if rand.IntN(2) == 0 || strings.HasPrefix(where, "UpdateTask") {
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		}
	})()

	ctx := context.Background()
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	client := 0
	for _, p := range procs {
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func(p *modelProc, client int) {
				defer wg.Done()
				for time.Now().Before(deadline) && !t.Failed() {
					m.randomOp(ctx, p, procs, client)
				}
			}(p, client)
			client++
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for time.Now().Before(deadline) && !t.Failed() {
			m.holdLocks(ctx, lockPool)
		}
	}()
	wg.Wait()
	if t.Failed() {
		return
	}
	m.checkFinalState(ctx, lockPool)
	m.checkLinearizable()
	// Recovery of everything: no task is left running or terminating.
	if _, err := procs[0].s.RequeueStaleTasks(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, lockPool, "SELECT count(*) FROM tasks WHERE status IN ('running', 'terminating')"); n != 0 {
		t.Errorf("%d tasks running or terminating after recovering every claim", n)
	}
	keys := make([]string, 0, len(m.stats))
	for k := range m.stats {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%d", k, m.stats[k])
	}
	t.Logf("%s: %d calls on %d tasks, %d porcupine partitions checked; outcomes:%s",
		dur, len(m.history), len(m.ids), len(m.partitions()), b.String())
}

type modelProc struct {
	name string
	s    *statestore.Store
}

// mTask is the model's state of one task.
type mTask struct {
	Exists  bool
	Status  statestore.TaskStatus
	Version int64
	Attempt int64
	Claimed bool
}

func taskState(t *statestore.Task) mTask {
	return mTask{Exists: true, Status: t.Status, Version: t.Version, Attempt: t.Attempt, Claimed: t.ClaimedBy != ""}
}

type opKind int

const (
	opCreate       opKind = iota // this task was created
	opChildCreate                // a subtask of this task was created or refused
	opClaimed                    // a claim returned this task
	opComplete                   // CompleteTasks (success or failure) naming a claim of this task
	opRequeueOwn                 // RequeueTasks naming a claim of this task
	opRecovered                  // RequeueStaleTasks / RequeueTasksOfClaimer returned this task
	opMarked                     // TerminateTask returned this task as changed
	opRootUnmarked               // TerminateTask of this task changed nothing (or failed)
	opUpdate                     // UpdateTask
	opGet                        // GetTask
	opAppend                     // AppendMessage
)

var opNames = []string{"create", "child-create", "claimed", "complete", "requeue-own", "recovered", "marked",
	"root-unmarked", "update", "get", "append"}

type errKind int

const (
	errNone errKind = iota
	errStale
	errParentClosed
	errNotFound
	errInvalidStatus
	errAny // a conflict with no effect: no state required
)

var errNames = []string{"ok", "stale", "parent-closed", "not-found", "invalid-status", "conflict"}

type mIn struct {
	Kind    opKind
	Status  statestore.TaskStatus // create: initial status; update: new status ("": unchanged)
	Attempt int64
	Version int64
}

type mOut struct {
	Err  errKind
	Task mTask // for ok results that return the task
}

type modelEvent struct {
	task      uuid.UUID
	in        mIn
	out       mOut
	call, ret int64
	client    int
}

type modelRun struct {
	t     *testing.T
	start time.Time

	mu        sync.Mutex
	ids       []uuid.UUID
	version   map[uuid.UUID]int64
	claims    map[string][]statestore.Claim // by process
	history   []modelEvent
	terminate []terminateCall
	completed map[uuid.UUID]int64 // earliest call time of a successful completion
	inflight  map[uuid.UUID]int   // parents with a CreateSubtask call in flight
	pending   map[uuid.UUID]bool  // tasks with a CreateTask call in flight
	stats     map[string]int
}

type terminateCall struct {
	root      uuid.UUID
	call, ret int64
}

func (m *modelRun) now() int64 { return int64(time.Since(m.start)) }

func (m *modelRun) record(task uuid.UUID, in mIn, out mOut, call, ret int64, client int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.history = append(m.history, modelEvent{task, in, out, call, ret, client})
	m.stats[opNames[in.Kind]+":"+errNames[out.Err]]++
	if out.Err == errNone && out.Task.Exists {
		if out.Task.Version > m.version[task] {
			m.version[task] = out.Task.Version
		}
		if out.Task.Status == statestore.StatusComplete && (in.Kind == opComplete || in.Kind == opUpdate) {
			if m.completed == nil {
				m.completed = map[uuid.UUID]int64{}
			}
			if c, ok := m.completed[task]; !ok || call < c {
				m.completed[task] = call
			}
		}
	}
}

// classify maps a call's error to the model's outcomes; an error the
// model does not expect fails the test.
func (m *modelRun) classify(op string, err error) errKind {
	var inv *statestore.InvalidInputError
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return errNone
	case errors.Is(err, statestore.ErrStaleAttempt):
		return errStale
	case errors.Is(err, statestore.ErrParentClosed):
		return errParentClosed
	case errors.Is(err, statestore.ErrNotFound):
		return errNotFound
	case errors.As(err, &inv) && inv.Field == "status":
		return errInvalidStatus
	case errors.Is(err, statestore.ErrConflict):
		return errAny
	case errors.As(err, &pgErr) && pgErr.Code == "40P01":
		return errAny
	}
	m.t.Errorf("%s: unexpected error: %v", op, err)
	return errAny
}

func (m *modelRun) pick(r *rand.Rand) (uuid.UUID, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.ids) == 0 {
		return uuid.Nil, false
	}
	// Favour recent tasks: they are the ones still moving.
	n := len(m.ids)
	if n > 40 && r.IntN(4) != 0 {
		return m.ids[n-1-r.IntN(40)], true
	}
	return m.ids[r.IntN(n)], true
}

func (m *modelRun) pickClaim(r *rand.Rand, proc string) (statestore.Claim, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cs := m.claims[proc]
	if len(cs) == 0 {
		return statestore.Claim{}, false
	}
	if len(cs) > 30 && r.IntN(3) != 0 {
		return cs[len(cs)-1-r.IntN(30)], true
	}
	return cs[r.IntN(len(cs))], true
}

func (m *modelRun) addID(id uuid.UUID) {
	m.mu.Lock()
	m.ids = append(m.ids, id)
	m.mu.Unlock()
}

// call runs fn, turning a panic into a test failure that ends the worker
// (its call has no return to record).
func (m *modelRun) call(op string, fn func()) {
	defer func() {
		if p := recover(); p != nil {
			m.t.Errorf("%s panicked: %v", op, p)
			runtime.Goexit()
		}
	}()
	fn()
}

var allStatuses = []statestore.TaskStatus{statestore.StatusRequested, statestore.StatusQueued, statestore.StatusRunning,
	statestore.StatusTerminating, statestore.StatusTerminated, statestore.StatusComplete}

func (m *modelRun) randomOp(ctx context.Context, p *modelProc, procs []*modelProc, client int) {
	r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	s := p.s
	switch k := r.IntN(100); {
	case k < 10: // create, sometimes in a transaction that pauses before committing
		id, _ := uuid.NewV7()
		st := statestore.StatusQueued
		if r.IntN(4) == 0 {
			st = statestore.StatusRequested
		}
		m.addID(id) // known to the others before it commits
		m.mu.Lock()
		m.pending[id] = true
		m.mu.Unlock()
		defer func() {
			m.mu.Lock()
			delete(m.pending, id)
			m.mu.Unlock()
		}()
		call := m.now()
		var task *statestore.Task
		var err error
		m.call("CreateTask", func() {
			if r.IntN(2) == 0 {
				task, err = s.CreateTask(ctx, statestore.NewTask{ID: id, Action: "noop", Status: st})
				return
			}
			err = s.InTx(ctx, func(ctx context.Context, tx *statestore.Store) (err error) {
				task, err = tx.CreateTask(ctx, statestore.NewTask{ID: id, Action: "noop", Status: st})
				time.Sleep(time.Duration(r.IntN(5000)) * time.Microsecond)
				return err
			})
		})
		out := mOut{Err: m.classify("CreateTask", err)}
		if err == nil {
			out.Task = taskState(task)
		}
		m.record(id, mIn{Kind: opCreate, Status: st}, out, call, m.now(), client)
	case k < 22: // create-subtask
		parent, ok := m.pick(r)
		if !ok {
			return
		}
		id, _ := uuid.NewV7()
		m.addID(id)
		m.mu.Lock()
		m.inflight[parent]++
		m.mu.Unlock()
		defer func() {
			m.mu.Lock()
			if m.inflight[parent]--; m.inflight[parent] == 0 {
				delete(m.inflight, parent)
			}
			m.mu.Unlock()
		}()
		call := m.now()
		var task *statestore.Task
		var err error
		m.call("CreateSubtask", func() {
			if r.IntN(2) == 0 {
				task, err = s.CreateSubtask(ctx, parent, statestore.NewTask{ID: id, Action: "noop"})
				return
			}
			// In a transaction that pauses before committing: the parent
			// stays share-locked meanwhile, racing terminations.
			err = s.InTx(ctx, func(ctx context.Context, tx *statestore.Store) (err error) {
				task, err = tx.CreateSubtask(ctx, parent, statestore.NewTask{ID: id, Action: "noop"})
				time.Sleep(time.Duration(r.IntN(5000)) * time.Microsecond)
				return err
			})
		})
		ret := m.now()
		out := mOut{Err: m.classify("CreateSubtask", err)}
		if err == nil {
			out.Task = taskState(task)
		}
		m.record(id, mIn{Kind: opCreate, Status: statestore.StatusQueued}, out, call, ret, client)
		m.record(parent, mIn{Kind: opChildCreate}, mOut{Err: out.Err}, call, ret, client)
	case k < 40: // claim
		call := m.now()
		var tasks []*statestore.Task
		var err error
		m.call("ClaimTasks", func() { tasks, err = s.ClaimTasks(ctx, p.name, 1+r.IntN(3)) })
		ret := m.now()
		if e := m.classify("ClaimTasks", err); e != errNone && e != errAny {
			m.t.Errorf("ClaimTasks: %v", err)
		}
		for _, task := range tasks {
			m.mu.Lock()
			m.claims[p.name] = append(m.claims[p.name], task.Claim())
			m.mu.Unlock()
			m.record(task.ID, mIn{Kind: opClaimed}, mOut{Task: taskState(task)}, call, ret, client)
		}
	case k < 52: // complete or fail, with a claim of this process (maybe stale)
		c, ok := m.pickClaim(r, p.name)
		if !ok {
			return
		}
		rs := statestore.ResultSuccess
		if r.IntN(3) == 0 {
			rs = statestore.ResultFailure
		}
		call := m.now()
		var tasks []*statestore.Task
		var err error
		m.call("CompleteTasks", func() { tasks, err = s.CompleteTasks(ctx, rs, c) })
		out := mOut{Err: m.classify("CompleteTasks", err)}
		if err == nil {
			out.Task = taskState(tasks[0])
		}
		m.record(c.TaskID, mIn{Kind: opComplete, Attempt: c.Attempt}, out, call, m.now(), client)
	case k < 57: // requeue by owner
		c, ok := m.pickClaim(r, p.name)
		if !ok {
			return
		}
		call := m.now()
		var tasks []*statestore.Task
		var err error
		m.call("RequeueTasks", func() { tasks, err = s.RequeueTasks(ctx, c) })
		out := mOut{Err: m.classify("RequeueTasks", err)}
		if err == nil {
			out.Task = taskState(tasks[0])
		}
		m.record(c.TaskID, mIn{Kind: opRequeueOwn, Attempt: c.Attempt}, out, call, m.now(), client)
	case k < 62: // recovery: stale claims, or every claim of a process (alive: its late writes must be stale)
		call := m.now()
		var tasks []*statestore.Task
		var err error
		if r.IntN(2) == 0 {
			m.call("RequeueStaleTasks", func() {
				tasks, err = s.RequeueStaleTasks(ctx, time.Now().Add(-time.Duration(r.IntN(30))*time.Millisecond))
			})
		} else {
			victim := procs[r.IntN(len(procs))].name
			m.call("RequeueTasksOfClaimer", func() { tasks, err = s.RequeueTasksOfClaimer(ctx, victim) })
		}
		ret := m.now()
		if e := m.classify("recovery", err); e != errNone && e != errAny {
			m.t.Errorf("recovery: %v", err)
		}
		for _, task := range tasks {
			m.record(task.ID, mIn{Kind: opRecovered}, mOut{Task: taskState(task)}, call, ret, client)
		}
	case k < 68: // terminate, often a task under which a subtask is being created
		root, ok := m.pick(r)
		if !ok {
			return
		}
		m.mu.Lock()
		for p := range m.inflight {
			if r.IntN(3) != 0 {
				root = p
			}
			break
		}
		m.mu.Unlock()
		call := m.now()
		var tasks []*statestore.Task
		var err error
		m.call("TerminateTask", func() { tasks, err = s.TerminateTask(ctx, root, p.name) })
		ret := m.now()
		e := m.classify("TerminateTask", err)
		rootMarked := false
		for _, task := range tasks {
			rootMarked = rootMarked || task.ID == root
			m.record(task.ID, mIn{Kind: opMarked}, mOut{Task: taskState(task)}, call, ret, client)
		}
		if !rootMarked {
			m.record(root, mIn{Kind: opRootUnmarked}, mOut{Err: e}, call, ret, client)
		}
		if err == nil {
			m.mu.Lock()
			m.terminate = append(m.terminate, terminateCall{root, call, ret})
			m.mu.Unlock()
		}
	case k < 88: // update: random status (or none), known or stale version, own claim's attempt or none
		id, ok := m.pick(r)
		if !ok {
			return
		}
		in := mIn{Kind: opUpdate}
		m.mu.Lock()
		for p := range m.pending { // often a task whose creation has not committed yet
			if r.IntN(2) == 0 {
				id = p
			}
			break
		}
		in.Version = m.version[id]
		for _, c := range m.claims[p.name] {
			if c.TaskID == id && (in.Attempt == 0 || r.IntN(2) == 0) {
				in.Attempt = c.Attempt
			}
		}
		m.mu.Unlock()
		switch r.IntN(5) {
		case 0:
			in.Version++
		case 1:
			in.Version = max(in.Version-1, 1)
		}
		if in.Version == 0 {
			in.Version = 1 // a task being created: its first version
		}
		if r.IntN(4) == 0 {
			in.Attempt = int64(r.IntN(3))
		}
		u := statestore.TaskUpdate{Attempt: in.Attempt}
		if r.IntN(3) != 0 {
			in.Status = allStatuses[r.IntN(len(allStatuses))]
			st := in.Status
			u.Status = &st
		}
		if r.IntN(2) == 0 {
			msg := "model"
			u.ResultMessage = &msg
		}
		if in.Status == statestore.StatusComplete {
			rs := statestore.ResultFailure
			u.ResultStatus = &rs
		}
		call := m.now()
		var task *statestore.Task
		var err error
		m.call("UpdateTask", func() { task, err = s.UpdateTask(ctx, id, in.Version, u) })
		out := mOut{Err: m.classify("UpdateTask", err)}
		if err == nil {
			out.Task = taskState(task)
		}
		m.record(id, in, out, call, m.now(), client)
	case k < 93: // append
		id, ok := m.pick(r)
		if !ok {
			return
		}
		call := m.now()
		var err error
		m.call("AppendMessage", func() { _, err = s.AppendMessage(ctx, id, statestore.NewMessage{Message: "m"}) })
		m.record(id, mIn{Kind: opAppend}, mOut{Err: m.classify("AppendMessage", err)}, call, m.now(), client)
	default: // get
		id, ok := m.pick(r)
		if !ok {
			return
		}
		call := m.now()
		var task *statestore.Task
		var err error
		m.call("GetTask", func() { task, err = s.GetTask(ctx, id) })
		out := mOut{Err: m.classify("GetTask", err)}
		if err == nil {
			out.Task = taskState(task)
		}
		m.record(id, mIn{Kind: opGet}, out, call, m.now(), client)
	}
}

// holdLocks takes row locks on a few random tasks from a connection of its
// own and holds them for a while.
func (m *modelRun) holdLocks(ctx context.Context, pool *pgxpool.Pool) {
	r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	var ids []uuid.UUID
	for i := 0; i < 1+r.IntN(2); i++ {
		if id, ok := m.pick(r); ok {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		time.Sleep(time.Millisecond)
		return
	}
	mode := []string{"UPDATE", "NO KEY UPDATE", "SHARE", "KEY SHARE"}[r.IntN(4)]
	tx, err := pool.Begin(ctx)
	if err != nil {
		m.t.Error(err)
		return
	}
	defer tx.Rollback(ctx)
	lctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := tx.Exec(lctx, "SELECT task_id FROM tasks WHERE task_id = ANY($1) ORDER BY task_id FOR "+mode, ids); err != nil {
		return // waited too long for someone else's lock: fine
	}
	time.Sleep(time.Duration(r.IntN(8000)) * time.Microsecond)
	_ = tx.Commit(ctx)
}

var closedStatuses = map[statestore.TaskStatus]bool{statestore.StatusTerminating: true,
	statestore.StatusTerminated: true, statestore.StatusComplete: true}

// modelStep is the lifecycle model: may a task in state s see this call
// return out, and what state follows?
func modelStep(s mTask, in mIn, out mOut) (bool, mTask) {
	if out.Err == errAny {
		return true, s
	}
	live := s.Claimed && (s.Status == statestore.StatusRunning || s.Status == statestore.StatusTerminating)
	claimLive := func(attempt int64) bool { return live && s.Attempt == attempt }
	next := s
	next.Version++
	switch in.Kind {
	case opCreate:
		if out.Err != errNone {
			return true, s // nothing created
		}
		n := mTask{Exists: true, Status: in.Status, Version: 1}
		return !s.Exists && out.Task == n, n
	case opChildCreate:
		switch out.Err {
		case errNone:
			return s.Exists && !closedStatuses[s.Status], s
		case errParentClosed:
			return s.Exists && closedStatuses[s.Status], s
		case errNotFound:
			return !s.Exists, s
		}
	case opClaimed:
		next.Status, next.Attempt, next.Claimed = statestore.StatusRunning, s.Attempt+1, true
		return s.Exists && s.Status == statestore.StatusQueued && out.Task == next, next
	case opComplete, opRequeueOwn:
		switch out.Err {
		case errNone:
			if in.Kind == opComplete {
				// A claim already completed under this attempt: a retry,
				// which succeeds and changes nothing (docs/ha.md; the
				// result status must match too, which this model does not
				// track: TestCompleteTasksPerClaim checks it).
				if s.Exists && s.Status == statestore.StatusComplete && s.Claimed && s.Attempt == in.Attempt && out.Task == s {
					return true, s
				}
				next.Status = statestore.StatusComplete
			} else {
				next.Status, next.Claimed = statestore.StatusQueued, false
			}
			return s.Exists && s.Status == statestore.StatusRunning && claimLive(in.Attempt) && out.Task == next, next
		case errStale:
			return s.Exists && !claimLive(in.Attempt), s
		case errNotFound:
			return !s.Exists, s
		}
	case opRecovered:
		switch s.Status {
		case statestore.StatusRunning:
			next.Status, next.Claimed = statestore.StatusQueued, false
		case statestore.StatusTerminating:
			next.Status = statestore.StatusTerminated
		default:
			return false, s
		}
		return s.Exists && out.Task == next, next
	case opMarked:
		switch s.Status {
		case statestore.StatusRequested, statestore.StatusQueued:
			next.Status, next.Claimed = statestore.StatusTerminated, false
		case statestore.StatusRunning:
			next.Status = statestore.StatusTerminating
		default:
			return false, s
		}
		return s.Exists && out.Task == next, next
	case opRootUnmarked:
		switch out.Err {
		case errNone:
			return s.Exists && (s.Status == statestore.StatusComplete || s.Status == statestore.StatusTerminated ||
				s.Status == statestore.StatusTerminating), s
		case errNotFound:
			return !s.Exists, s
		}
	case opUpdate:
		attemptOK := (in.Attempt == 0 && !live) || (in.Attempt != 0 && claimLive(in.Attempt))
		statusOK := in.Status == "" || statestore.CanChange(s.Status, in.Status)
		switch out.Err {
		case errNone:
			if in.Status != "" {
				next.Status = in.Status
				if in.Status == statestore.StatusRequested || in.Status == statestore.StatusQueued {
					next.Claimed = false
				}
			}
			return s.Exists && s.Version == in.Version && attemptOK && statusOK && out.Task == next, next
		case errNotFound:
			return !s.Exists, s
		case errStale:
			// The attempt is checked before the version: a requeued
			// worker's stale version does not hide its stale attempt.
			return s.Exists && !attemptOK, s
		case errInvalidStatus:
			return s.Exists && s.Version == in.Version && attemptOK && !statusOK, s
		}
	case opGet:
		switch out.Err {
		case errNone:
			return out.Task == s, s
		case errNotFound:
			return !s.Exists, s
		}
	case opAppend:
		switch out.Err {
		case errNone:
			return s.Exists, s
		case errNotFound:
			return !s.Exists, s
		}
	}
	return false, s
}

var lifecycleModel = porcupine.Model{
	Init: func() interface{} { return mTask{} },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		return modelStep(state.(mTask), input.(mIn), output.(mOut))
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(mIn), output.(mOut)
		return fmt.Sprintf("%s(status=%q v%d attempt %d) -> %s %+v", opNames[in.Kind], in.Status, in.Version, in.Attempt,
			errNames[out.Err], out.Task)
	},
	DescribeState: func(state interface{}) string { return fmt.Sprintf("%+v", state.(mTask)) },
}

// partitions splits the history by task.
func (m *modelRun) partitions() map[uuid.UUID][]porcupine.Operation {
	parts := map[uuid.UUID][]porcupine.Operation{}
	for _, e := range m.history {
		parts[e.task] = append(parts[e.task], porcupine.Operation{ClientId: e.client, Input: e.in, Output: e.out,
			Call: e.call, Return: e.ret})
	}
	return parts
}

func (m *modelRun) checkLinearizable() {
	bad := 0
	for id, ops := range m.partitions() {
		res := porcupine.CheckOperationsTimeout(lifecycleModel, ops, 20*time.Second)
		if res == porcupine.Ok {
			continue
		}
		bad++
		if bad > 3 {
			continue
		}
		sort.Slice(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
		var b strings.Builder
		for _, op := range ops {
			fmt.Fprintf(&b, "\n  [%8.3fms %8.3fms] %s", float64(op.Call)/1e6, float64(op.Return)/1e6,
				lifecycleModel.DescribeOperation(op.Input, op.Output))
		}
		m.t.Errorf("task %s: history not linearizable against the lifecycle model (%v):%s", id, res, b.String())
	}
	if bad > 0 {
		m.t.Errorf("%d tasks with histories the model does not allow", bad)
	}
}

// checkFinalState checks what must hold of the tasks at the end: every
// running or terminating task has a claim, and no task of a tree that
// TerminateTask terminated is left requested, queued or running.
func (m *modelRun) checkFinalState(ctx context.Context, pool *pgxpool.Pool) {
	rows, err := pool.Query(ctx, `SELECT task_id, parent_task_id, status, attempt, claimed_by IS NOT NULL AND claimed_at IS NOT NULL FROM tasks`)
	if err != nil {
		m.t.Fatal(err)
	}
	type row struct {
		parent  *uuid.UUID
		status  statestore.TaskStatus
		attempt int64
		claimed bool
	}
	tasks := map[uuid.UUID]row{}
	children := map[uuid.UUID][]uuid.UUID{}
	for rows.Next() {
		var id uuid.UUID
		var r row
		if err := rows.Scan(&id, &r.parent, &r.status, &r.attempt, &r.claimed); err != nil {
			m.t.Fatal(err)
		}
		tasks[id] = r
		if r.parent != nil {
			children[*r.parent] = append(children[*r.parent], id)
		}
	}
	if err := rows.Err(); err != nil {
		m.t.Fatal(err)
	}
	for id, r := range tasks {
		if (r.status == statestore.StatusRunning || r.status == statestore.StatusTerminating) && (!r.claimed || r.attempt < 1) {
			m.t.Errorf("task %s is %s without a claim (attempt %d): recovery cannot find it", id, r.status, r.attempt)
		}
	}
	for _, tc := range m.terminate {
		stack := []uuid.UUID{tc.root}
		for len(stack) > 0 {
			id := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			stack = append(stack, children[id]...)
			r := tasks[id]
			switch r.status {
			case statestore.StatusRequested, statestore.StatusQueued, statestore.StatusRunning:
				m.t.Errorf("task %s under %s is %s at the end, but TerminateTask(%s) returned at %.3fms",
					id, tc.root, r.status, tc.root, float64(tc.ret)/1e6)
			case statestore.StatusComplete:
				if c, ok := m.completed[id]; !ok || c > tc.ret {
					m.t.Errorf("task %s under %s completed after TerminateTask(%s) returned", id, tc.root, tc.root)
				}
			}
		}
	}
}
