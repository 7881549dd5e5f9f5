package statetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// EnvSpares sets how many databases TakeDatabase keeps cloned ahead of time
// (default 2; 0 clones each database when it is asked for, as
// CreateDatabase does).
const EnvSpares = "STATEMGMT_TEST_SPARES"

const (
	defaultSpares = 2
	maxSpares     = 16
)

// spares is a server's stock of databases cloned ahead of time and its
// queue of databases being dropped in the background. Every spare is a
// fresh clone of the template that no session has connected to, held only
// in this process's memory: no other process (another test binary) can be
// handed it, and a process that dies leaves its spares to the StaleAfter
// sweep, like any other leftover, never to another run.
type spares struct {
	initOnce sync.Once
	initErr  error
	n        int // how many to keep; 0: none

	mu       sync.Mutex
	closed   bool
	inflight int              // clones under way
	ready    chan spareResult // finished clones (cap n)
	ctx      context.Context  // ends at Close: clones under way stop
	cancel   context.CancelFunc
	clones   sync.WaitGroup
	cloned   []string // every background clone's name, for tests

	drops    sync.WaitGroup
	dropSem  chan struct{} // one background drop at a time
	dropMu   sync.Mutex
	dropErrs []error
}

// spareResult is one background clone: a database, or why there is none.
type spareResult struct {
	db  *Database
	err error
}

// parseSpares reads EnvSpares.
func parseSpares(v string) (int, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return defaultSpares, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxSpares {
		return 0, fmt.Errorf("statetest: %s=%q: want a whole number from 0 to %d", EnvSpares, v, maxSpares)
	}
	return n, nil
}

func (s *Server) sparesInit() (*spares, error) {
	sp := &s.spares
	sp.initOnce.Do(func() {
		sp.n, sp.initErr = parseSpares(os.Getenv(EnvSpares))
		sp.ready = make(chan spareResult, max(sp.n, 1))
		sp.ctx, sp.cancel = context.WithCancel(context.Background())
		sp.dropSem = make(chan struct{}, 1)
	})
	return sp, sp.initErr
}

// TakeDatabase is CreateDatabase for tests: it hands out a database cloned
// ahead of time in the background (EnvSpares of them are kept ready) and
// starts cloning its replacement, so a test rarely waits for a clone. The
// database is a fresh clone of the template that nothing has connected to
// and that no one else is given. The caller drops it with DropDatabase or
// DropDatabaseLater. Close drops the spares nobody took.
func (s *Server) TakeDatabase(ctx context.Context) (*Database, error) {
	sp, err := s.sparesInit()
	if err != nil {
		return nil, err
	}
	tpl, err := s.ensureTemplate(ctx)
	if err != nil {
		return nil, err
	}
	if sp.n == 0 || !s.refill(tpl) {
		return s.CreateDatabase(ctx)
	}
	select {
	case r := <-sp.ready:
		s.refill(tpl)
		if r.err != nil {
			return nil, r.err
		}
		return r.db, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("statetest: wait for a cloned database: %w", ctx.Err())
	}
}

// refill starts background clones until finished and unfinished ones make
// up the stock. It reports false once the server is closed.
func (s *Server) refill(tpl string) bool {
	sp := &s.spares
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.closed {
		return false
	}
	for len(sp.ready)+sp.inflight < sp.n {
		sp.inflight++
		sp.clones.Add(1)
		go func() {
			defer sp.clones.Done()
			ctx, cancel := context.WithTimeout(sp.ctx, setupTimeout)
			db, err := s.clone(ctx, tpl)
			cancel()
			if db != nil {
				sp.mu.Lock()
				sp.cloned = append(sp.cloned, db.Name)
				sp.mu.Unlock()
			}
			// Never blocks: ready holds at most n, and this clone was
			// counted in inflight until now.
			sp.ready <- spareResult{db: db, err: err}
			sp.mu.Lock()
			sp.inflight--
			sp.mu.Unlock()
		}()
	}
	return true
}

// DropDatabaseLater drops database name in the background, one drop at a
// time, so that a test's cleanup does not wait for it. Close waits for
// every such drop and returns their errors.
func (s *Server) DropDatabaseLater(name string) {
	sp, _ := s.sparesInit() // a bad EnvSpares does not matter to dropping
	sp.mu.Lock()
	if sp.closed {
		sp.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s.recordDropErr(s.DropDatabase(ctx, name))
		return
	}
	sp.drops.Add(1)
	sp.mu.Unlock()
	go func() {
		defer sp.drops.Done()
		sp.dropSem <- struct{}{}
		defer func() { <-sp.dropSem }()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s.recordDropErr(s.DropDatabase(ctx, name))
	}()
}

func (s *Server) recordDropErr(err error) {
	if err == nil {
		return
	}
	sp := &s.spares
	sp.dropMu.Lock()
	sp.dropErrs = append(sp.dropErrs, err)
	sp.dropMu.Unlock()
}

// waitDrops waits for the background drops started so far and returns (and
// forgets) the errors of those that failed.
func (s *Server) waitDrops() error {
	sp := &s.spares
	sp.drops.Wait()
	sp.dropMu.Lock()
	defer sp.dropMu.Unlock()
	err := errors.Join(sp.dropErrs...)
	sp.dropErrs = nil
	return err
}

// closeSpares stops cloning, drops the spares nobody took and waits for the
// background drops; it returns the drops' errors.
func (s *Server) closeSpares(ctx context.Context) error {
	sp, _ := s.sparesInit()
	sp.mu.Lock()
	sp.closed = true
	sp.mu.Unlock()
	sp.cancel()
	sp.clones.Wait()
	var errs []error
	for {
		select {
		case r := <-sp.ready:
			if r.db != nil {
				errs = append(errs, s.DropDatabase(ctx, r.db.Name))
			}
			continue
		default:
		}
		break
	}
	errs = append(errs, s.waitDrops())
	return errors.Join(errs...)
}
