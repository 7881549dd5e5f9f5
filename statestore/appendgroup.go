package statestore

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/gen/db"
)

// groupAppends turns appendGroups on; tests and benchmarks compare it off.
var groupAppends = true

// maxGroupedMessages bounds the messages one grouped append statement
// carries; calls beyond it wait for the next statement.
const maxGroupedMessages = 10000

// appendGroups lets concurrent AppendMessages calls of one Store to the SAME
// task share a statement (outside transactions). Appends to one task
// serialise on its row lock, held until each statement's commit is flushed:
// eight writers of one task mostly wait for each other's flushes. So while a
// statement for a task is under way, later calls for that task queue here,
// and when it ends they all go in ONE statement (one lock, one commit), in
// the order they came. Each call still gets its own messages numbered in its
// own order, as one block with no other call's numbers in between, as if it
// had run alone right after the calls before it. Calls to different tasks
// never wait for each other.
type appendGroups struct {
	mu     sync.Mutex
	queued map[uuid.UUID][]*appendCall // present: a statement for the task is under way
}

// appendCall is one AppendMessages call waiting for its statement.
type appendCall struct {
	ctx  context.Context
	p    db.AppendResultMessagesParams
	n    int
	done chan struct{}
	rows []*db.AppendResultMessagesRow // its own, in sequence order
	err  error
}

func newAppendGroups() *appendGroups {
	return &appendGroups{queued: map[uuid.UUID][]*appendCall{}}
}

// appendGrouped runs call's append, alone or with others queued for the same
// task, and returns its rows in sequence order. A call whose ctx ends while
// it waits for another statement to finish returns ctx's error and is left
// out of later statements; once it has been taken into a statement
// (takeQueued), the call's messages may be written though it returned the
// error (as with any call cancelled after its statement reached the
// server): the statement runs on while any of its calls' contexts lives.
func (s *Store) appendGrouped(ctx context.Context, id uuid.UUID, call *appendCall) ([]*db.AppendResultMessagesRow, error) {
	g := s.groups
	g.mu.Lock()
	if _, busy := g.queued[id]; busy {
		g.queued[id] = append(g.queued[id], call)
		g.mu.Unlock()
		select {
		case <-call.done:
			return call.rows, call.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	g.queued[id] = nil // a statement is under way: later calls queue
	g.mu.Unlock()
	s.runAppends(ctx, id, []*appendCall{call})
	if next := s.takeQueued(id); next != nil {
		go s.serveQueued(id, next) // this call returns now; the queue is served meanwhile
	}
	return call.rows, call.err
}

// takeQueued returns (and removes) the calls queued for task id whose
// context is still live, at most maxGroupedMessages messages of them (and
// always at least one); when none is queued it ends the task's turn, so the
// next call runs its own statement.
func (s *Store) takeQueued(id uuid.UUID) []*appendCall {
	g := s.groups
	g.mu.Lock()
	defer g.mu.Unlock()
	var take []*appendCall
	total := 0
	rest := g.queued[id]
	for len(rest) > 0 {
		c := rest[0]
		if c.ctx.Err() != nil { // its caller has gone
			rest = rest[1:]
			continue
		}
		if len(take) > 0 && total+c.n > maxGroupedMessages {
			break
		}
		take, total, rest = append(take, c), total+c.n, rest[1:]
	}
	if len(take) == 0 {
		delete(g.queued, id)
		return nil
	}
	// The turn stays held (the entry stays, with what is left): callers
	// arriving now still queue.
	g.queued[id] = append([]*appendCall(nil), rest...)
	return take
}

// serveQueued runs the statements of the calls queued for task id, one
// grouped statement at a time, until none is queued.
func (s *Store) serveQueued(id uuid.UUID, calls []*appendCall) {
	for len(calls) > 0 {
		ctx, release := anyLive(calls)
		s.runAppends(ctx, id, calls)
		release()
		calls = s.takeQueued(id)
	}
}

// anyLive returns a context that ends when every call's context has ended
// (one caller giving up does not cancel the others' statement), carrying
// the first call's values.
func anyLive(calls []*appendCall) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(calls[0].ctx))
	var left atomic.Int64
	left.Store(int64(len(calls)))
	stops := make([]func() bool, len(calls))
	for i, c := range calls {
		stops[i] = context.AfterFunc(c.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// runAppends writes the messages of calls in one statement, in call order,
// and hands each call its rows (or the statement's error), then closes
// each call's done.
func (s *Store) runAppends(ctx context.Context, id uuid.UUID, calls []*appendCall) {
	p := calls[0].p
	if len(calls) > 1 {
		total := 0
		for _, c := range calls {
			total += c.n
		}
		p = db.AppendResultMessagesParams{TaskID: id,
			Messages: make([]string, 0, total), Errors: make([]bool, 0, total), Contexts: make([]string, 0, total),
			ContextTypes: make([]string, 0, total), HasTs: make([]bool, 0, total), Tss: make([]time.Time, 0, total),
			Extras: make([]json.RawMessage, 0, total)}
		for _, c := range calls {
			p.Messages = append(p.Messages, c.p.Messages...)
			p.Errors = append(p.Errors, c.p.Errors...)
			p.Contexts = append(p.Contexts, c.p.Contexts...)
			p.ContextTypes = append(p.ContextTypes, c.p.ContextTypes...)
			p.HasTs = append(p.HasTs, c.p.HasTs...)
			p.Tss = append(p.Tss, c.p.Tss...)
			p.Extras = append(p.Extras, c.p.Extras...)
		}
	}
	rows, err := s.q.AppendResultMessages(ctx, s.conn, p)
	if err == nil {
		// The numbers follow the input order: sorted, row k is message k.
		sort.Slice(rows, func(i, j int) bool { return rows[i].Sequence < rows[j].Sequence })
	}
	off := 0
	for _, c := range calls {
		switch {
		case err != nil:
			c.err = err
		case len(rows) == 0:
			c.rows = nil // no such task: the caller reports ErrNotFound
		case len(rows) >= off+c.n:
			c.rows = rows[off : off+c.n : off+c.n]
		default:
			c.rows = rows[off:] // short: the caller reports the count
		}
		off += c.n
		close(c.done)
	}
}
