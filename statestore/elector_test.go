package statestore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// election is a test harness: candidates over one database, each recording
// when its leader function starts and ends.
type election struct {
	t     *testing.T
	url   string
	pool  *pgxpool.Pool
	store *statestore.Store

	mu      sync.Mutex
	started map[int64]time.Time // term → when its leader function began
	leaders map[int64]*statestore.Elector
	cond    *sync.Cond
}

func newElection(t *testing.T) *election {
	db := statetest.New(t)
	pool, err := pgxpool.New(context.Background(), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := statestore.New(pool, statestore.Options{})
	t.Cleanup(s.Close)
	e := &election{t: t, url: db.URL, pool: pool, store: s,
		started: map[int64]time.Time{}, leaders: map[int64]*statestore.Elector{}}
	e.cond = sync.NewCond(&e.mu)
	return e
}

// candidate starts an elector running lead (or a default that waits) until
// the test ends.
func (e *election) candidate(cfg statestore.ElectorConfig, lead statestore.LeaderFunc) *statestore.Elector {
	e.t.Helper()
	if cfg.ConnString == "" {
		cfg.ConnString = e.url
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger
	}
	el, err := statestore.NewElector(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = el.Run(ctx, func(ctx context.Context, term int64) error {
			e.mu.Lock()
			e.started[term] = time.Now()
			e.leaders[term] = el
			e.cond.Broadcast()
			e.mu.Unlock()
			if lead != nil {
				return lead(ctx, term)
			}
			<-ctx.Done()
			return nil
		})
	}()
	e.t.Cleanup(func() { cancel(); <-done })
	return el
}

// waitTerm waits until a leader function for a term above after has started.
func (e *election) waitTerm(after int64, timeout time.Duration) (int64, time.Time, *statestore.Elector) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() { e.mu.Lock(); e.cond.Broadcast(); e.mu.Unlock() })
	defer timer.Stop()
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		var best int64
		for term := range e.started {
			if term > after && (best == 0 || term < best) {
				best = term
			}
		}
		if best != 0 {
			return best, e.started[best], e.leaders[best]
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no leader with a term above %d within %v", after, timeout)
		}
		e.cond.Wait()
	}
}

func (e *election) killBackend(pid uint32) {
	e.t.Helper()
	var ok bool
	if err := e.pool.QueryRow(context.Background(), "SELECT pg_terminate_backend($1)", int32(pid)).Scan(&ok); err != nil || !ok {
		e.t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	idx := int(float64(len(s)-1) * p)
	return s[idx]
}

func TestThreeCandidatesOneLeaderAndCrashFailover(t *testing.T) {
	e := newElection(t)
	var els []*statestore.Elector
	for i := 0; i < 3; i++ {
		els = append(els, e.candidate(statestore.ElectorConfig{Hostname: fmt.Sprintf("orch-%d", i)}, nil))
	}
	term, _, leader := e.waitTerm(0, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // let everyone settle
	leading := 0
	for _, el := range els {
		if _, ok := el.Leading(); ok {
			leading++
		}
	}
	if leading != 1 {
		t.Fatalf("%d candidates lead, want exactly 1", leading)
	}
	info, err := e.store.Leader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Term != term || info.Identity != leader.Identity() || !info.LockHeld || info.ResignedAt != nil {
		t.Fatalf("Leader() = %+v, want term %d of %s holding the lock", info, term, leader.Identity())
	}

	killed := time.Now()
	e.killBackend(leader.BackendPID())
	next, at, nextLeader := e.waitTerm(term, 10*time.Second)
	t.Logf("crash failover: term %d -> %d in %v", term, next, at.Sub(killed))
	if next != term+1 || nextLeader == leader {
		t.Fatalf("after the kill: term %d by the same elector %v", next, nextLeader == leader)
	}
	// The killed leader notices and steps down.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if cur, ok := leader.Leading(); !ok || cur != term {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("killed leader never stepped down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	history, err := e.store.LeaderHistory(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(history) < 2 || history[0].Term != next || history[1].EndReason != "superseded" {
		t.Fatalf("history = %+v", history)
	}
}

// TestFailoverTimes measures crash and resign failover over 20 trials each.
// It reports p50/p99 and fails only if a failover takes seconds (the
// elector would then be polling or waiting out a grace period).
func TestFailoverTimes(t *testing.T) {
	if testing.Short() {
		t.Skip("40 failovers")
	}
	e := newElection(t)
	for i := 0; i < 3; i++ {
		e.candidate(statestore.ElectorConfig{}, nil)
	}
	term, _, leader := e.waitTerm(0, 10*time.Second)
	var crash, resign []time.Duration
	for i := 0; i < 20; i++ {
		start := time.Now()
		e.killBackend(leader.BackendPID())
		var at time.Time
		term, at, leader = e.waitTerm(term, 10*time.Second)
		crash = append(crash, at.Sub(start))
	}
	for i := 0; i < 20; i++ {
		time.Sleep(20 * time.Millisecond)
		start := time.Now()
		leader.Resign()
		var at time.Time
		term, at, leader = e.waitTerm(term, 10*time.Second)
		resign = append(resign, at.Sub(start))
	}
	t.Logf("crash failover over %d trials: p50 %v, p99 %v, max %v", len(crash), percentile(crash, .5), percentile(crash, .99), percentile(crash, 1))
	t.Logf("resign failover over %d trials: p50 %v, p99 %v, max %v", len(resign), percentile(resign, .5), percentile(resign, .99), percentile(resign, 1))
	if p := percentile(crash, .99); p > 3*time.Second {
		t.Errorf("crash failover p99 %v: the elector is not taking over when the lock is released", p)
	}
	if p := percentile(resign, .99); p > 3*time.Second {
		t.Errorf("resign failover p99 %v", p)
	}
}

// fencedWrite makes a leader-only write with term: a claim through AsLeader.
func fencedWrite(ctx context.Context, s *statestore.Store, term int64) error {
	_, err := s.AsLeader(term).ClaimTasks(ctx, "leader", 1)
	return err
}

func TestPartitionedLeaderIsFenced(t *testing.T) {
	ctx := context.Background()
	e := newElection(t)
	proxy, viaProxy := proxyFor(t, e.url)
	// A leads through the proxy and checks rarely: after the cut it keeps
	// believing it leads for a while.
	a := e.candidate(statestore.ElectorConfig{ConnString: viaProxy, CheckInterval: 2 * time.Second, Hostname: "a"}, nil)
	termA, _, leader := e.waitTerm(0, 10*time.Second)
	if leader != a {
		t.Fatal("A was not the first leader")
	}
	e.candidate(statestore.ElectorConfig{Hostname: "b"}, nil)
	e.candidate(statestore.ElectorConfig{Hostname: "c"}, nil)
	if _, err := e.store.CreateTasks(ctx, statestore.NewTask{Action: "noop"}, statestore.NewTask{Action: "noop"}); err != nil {
		t.Fatal(err)
	}
	if err := fencedWrite(ctx, e.store, termA); err != nil {
		t.Fatalf("leader's fenced write before the partition: %v", err)
	}

	proxy.CutAll()
	termB, _, _ := e.waitTerm(termA, 10*time.Second)
	if cur, ok := a.Leading(); !ok || cur != termA {
		t.Log("A noticed the partition before the fenced write; the write must still fail")
	}
	err := fencedWrite(ctx, e.store, termA)
	if !errors.Is(err, statestore.ErrNotLeader) {
		t.Fatalf("deposed leader's fenced write: %v, want ErrNotLeader", err)
	}
	if n := count(t, e.pool, "SELECT count(*) FROM tasks WHERE status = 'running'"); n != 1 {
		t.Fatalf("%d running tasks: the deposed leader's claim was written", n)
	}
	if err := fencedWrite(ctx, e.store, termB); err != nil {
		t.Fatalf("new leader's fenced write: %v", err)
	}
	// A steps down by itself.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := a.Leading(); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("partitioned leader never stepped down")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// 200 elections among 5 candidates with random kills and resigns. Each
// leader records its interval with fenced writes; no two intervals may
// overlap and terms must rise.
func TestElectionChurnNoOverlap(t *testing.T) {
	if testing.Short() {
		t.Skip("200 elections")
	}
	ctx := context.Background()
	e := newElection(t)
	if _, err := e.pool.Exec(ctx, `CREATE TABLE leader_interval (
		term bigint PRIMARY KEY, started_at timestamptz NOT NULL, last_write_at timestamptz NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	fenced := func(ctx context.Context, term int64, sql string) error {
		tx, err := e.pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after commit it is a no-op
		if err := e.store.WithTx(tx).CheckLeader(ctx, term); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, sql, term); err != nil {
			return err
		}
		return tx.Commit(ctx)
	}
	lead := func(ctx context.Context, term int64) error {
		if err := fenced(ctx, term, "INSERT INTO leader_interval VALUES ($1, clock_timestamp(), clock_timestamp())"); err != nil {
			return err
		}
		for ctx.Err() == nil {
			if err := fenced(ctx, term, "UPDATE leader_interval SET last_write_at = clock_timestamp() WHERE term = $1"); err != nil {
				return err
			}
			time.Sleep(2 * time.Millisecond)
		}
		return nil
	}
	for i := 0; i < 5; i++ {
		e.candidate(statestore.ElectorConfig{CheckInterval: 50 * time.Millisecond}, lead)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	term := int64(0)
	var leader *statestore.Elector
	for elections := 0; elections < 200; elections++ {
		term, _, leader = e.waitTerm(term, 15*time.Second)
		// Let it record its interval (outcome, not timing: a loaded machine
		// may take longer than the random pause), then write a little more.
		for waited := 0; waited < 500; waited++ {
			var n int
			if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM leader_interval WHERE term = $1", term).Scan(&n); err != nil || n > 0 {
				break
			}
			if _, ok := leader.Leading(); !ok {
				break // lost it on its own
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(10)) * time.Millisecond)
		if rng.IntN(2) == 0 {
			if pid := leader.BackendPID(); pid != 0 {
				var ok bool
				_ = e.pool.QueryRow(ctx, "SELECT pg_terminate_backend($1)", int32(pid)).Scan(&ok) // it may be gone already
			}
		} else {
			leader.Resign()
		}
	}
	rows, err := e.pool.Query(ctx, "SELECT term, started_at, last_write_at FROM leader_interval ORDER BY started_at")
	if err != nil {
		t.Fatal(err)
	}
	type interval struct {
		term        int64
		start, last time.Time
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (interval, error) {
		var iv interval
		return iv, r.Scan(&iv.term, &iv.start, &iv.last)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 150 {
		t.Fatalf("only %d of ~200 terms recorded an interval", len(got))
	}
	for i := 1; i < len(got); i++ {
		prev, cur := got[i-1], got[i]
		if cur.term <= prev.term {
			t.Fatalf("terms not strictly increasing: %d then %d", prev.term, cur.term)
		}
		if !prev.last.Before(cur.start) {
			t.Fatalf("term %d wrote at %v, after term %d began at %v", prev.term, prev.last, cur.term, cur.start)
		}
	}
	t.Logf("%d elections, %d recorded intervals, none overlapping", 200, len(got))
}

func TestElectorConfigErrors(t *testing.T) {
	_, err := statestore.NewElector(statestore.ElectorConfig{})
	wantInvalid(t, err, "ConnString")
	_, err = statestore.NewElector(statestore.ElectorConfig{ConnString: "postgres://u:s3cret@h:notaport/db"})
	wantInvalid(t, err, "ConnString")
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error leaks the password: %v", err)
	}
	_, err = statestore.NewElector(statestore.ElectorConfig{ConnString: "host=x", CheckInterval: time.Minute})
	wantInvalid(t, err, "CheckInterval")
}

func TestClaimMaintainAbdicateCalls(t *testing.T) {
	ctx := context.Background()
	e := newElection(t)
	a, err := statestore.NewElector(statestore.ElectorConfig{ConnString: e.url})
	if err != nil {
		t.Fatal(err)
	}
	b, err := statestore.NewElector(statestore.ElectorConfig{ConnString: e.url})
	if err != nil {
		t.Fatal(err)
	}
	term, ok, err := a.Claim(ctx)
	if err != nil || !ok || term != 1 {
		t.Fatalf("a.Claim = %d, %v, %v", term, ok, err)
	}
	if _, ok, err := b.Claim(ctx); err != nil || ok {
		t.Fatalf("b.Claim while a leads = %v, %v", ok, err)
	}
	if err := a.Maintain(ctx, term); err != nil {
		t.Fatal(err)
	}
	if err := a.Abdicate(ctx, term); err != nil {
		t.Fatal(err)
	}
	if err := a.Maintain(ctx, term); err == nil {
		t.Fatal("Maintain succeeded after Abdicate")
	}
	term2, ok, err := b.Claim(ctx)
	if err != nil || !ok || term2 != 2 {
		t.Fatalf("b.Claim after abdication = %d, %v, %v", term2, ok, err)
	}
	if err := e.store.CheckLeader(ctx, term); !errors.Is(err, statestore.ErrNotLeader) {
		t.Fatalf("CheckLeader(old term) = %v", err)
	}
	if err := e.store.CheckLeader(ctx, term2); err != nil {
		t.Fatalf("CheckLeader(current) = %v", err)
	}
	a.Close()
	b.Close()
}

// A leader whose connection stops answering (bytes vanish, nothing closes)
// steps down on its own within about two check intervals, with
// ErrLeadershipLost as the cause.
func TestBlackholedLeaderStepsDown(t *testing.T) {
	e := newElection(t)
	proxy, via := proxyFor(t, e.url)
	causes := make(chan error, 1)
	a := e.candidate(statestore.ElectorConfig{ConnString: via, CheckInterval: 200 * time.Millisecond}, func(ctx context.Context, term int64) error {
		<-ctx.Done()
		select {
		case causes <- context.Cause(ctx):
		default:
		}
		return nil
	})
	e.waitTerm(0, 10*time.Second)
	proxy.SetBlackhole(true)
	start := time.Now()
	select {
	case cause := <-causes:
		if !errors.Is(cause, statestore.ErrLeadershipLost) {
			t.Fatalf("leader context ended with %v, want ErrLeadershipLost", cause)
		}
		t.Logf("blackholed leader stepped down after %v", time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("a leader that cannot reach the database kept leading")
	}
	if _, ok := a.Leading(); ok {
		time.Sleep(100 * time.Millisecond)
		if _, ok := a.Leading(); ok {
			t.Fatal("Leading() still true after stepping down")
		}
	}
	proxy.SetBlackhole(false)
	proxy.CutAll() // let the server release the session so cleanup is quick
}
