package statestore_test

// Adversarial leadership tests (issue 13): a healthy leader keeps leadership
// however slow its fenced work is; a leader that stops answering is replaced
// whatever the network does; the term is the single truth.

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/statestore"
)

// A fenced call that waits 10 × CheckInterval behind another transaction's
// row lock must not cost the leader its leadership: the heartbeat never
// contends with fencing.
func TestSlowFencedCallKeepsLeadership(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	e := newElection(t)
	const check = 300 * time.Millisecond // each heartbeat must answer within this, even on a loaded machine
	causes := make(chan error, 1)
	leader := e.candidate(statestore.ElectorConfig{CheckInterval: check}, func(ctx context.Context, term int64) error {
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return nil
	})
	term, _, _ := e.waitTerm(0, 10*time.Second)

	// A running task, row-locked by a "worker" transaction.
	created, err := e.store.CreateTasks(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.ClaimTasks(ctx, "w", 1); err != nil {
		t.Fatal(err)
	}
	worker, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Rollback(context.Background()) //nolint:errcheck // released below
	if _, err := worker.Exec(ctx, "SELECT 1 FROM tasks WHERE task_id = $1 FOR UPDATE", created[0].ID); err != nil {
		t.Fatal(err)
	}

	// The leader's fenced requeue waits behind the worker's lock.
	fenced := make(chan error, 1)
	go func() {
		_, err := e.store.AsLeader(term).RequeueStaleTasks(ctx, time.Now().Add(time.Hour))
		fenced <- err
	}()
	blockedFor := 10 * check
	deadline := time.Now().Add(blockedFor)
	for time.Now().Before(deadline) {
		select {
		case err := <-fenced:
			t.Fatalf("fenced call returned %v while the row was still locked", err)
		case cause := <-causes:
			t.Fatalf("leader lost leadership while its fenced call waited: %v", cause)
		case <-time.After(check):
		}
	}
	if err := worker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-fenced:
		if err != nil {
			t.Fatalf("fenced call after the lock was released: %v", err)
		}
	case cause := <-causes:
		t.Fatalf("leader lost leadership: %v", cause)
	case <-time.After(30 * time.Second):
		t.Fatal("fenced call never finished")
	}
	// Several heartbeats later it still leads the same term.
	time.Sleep(3 * check)
	if cur, ok := leader.Leading(); !ok || cur != term {
		t.Fatalf("Leading() = %d, %v; want %d, true", cur, ok, term)
	}
	select {
	case cause := <-causes:
		t.Fatalf("leader lost leadership: %v", cause)
	default:
	}
	if err := e.store.CheckLeader(ctx, term); err != nil {
		t.Fatalf("CheckLeader(term) = %v", err)
	}
	// Operators still see the heartbeat (now kept in leader_term).
	info, err := e.store.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !info.LastPing.After(info.ElectedAt) {
		t.Fatalf("Leader().LastPing %v not after ElectedAt %v: the heartbeat is not visible", info.LastPing, info.ElectedAt)
	}
}

// A leader behind a TCP proxy whose network is cut without a FIN (the proxy
// keeps the server-side socket open and answers the server's keepalives):
// the deposed leader notices (its context ends with ErrLeadershipLost), a
// new leader is elected (default settings: about SessionTimeout, 2 s), and
// the old term's fenced writes fail having written nothing.
func TestBlackholeBehindProxyElectsNewLeader(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	e := newElection(t)
	proxy, via := proxyFor(t, e.url)
	causes := make(chan error, 1)
	a := e.candidate(statestore.ElectorConfig{ConnString: via, Hostname: "a"}, func(ctx context.Context, term int64) error {
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return nil
	})
	termA, _, first := e.waitTerm(0, 10*time.Second)
	if first != a {
		t.Fatal("A was not the first leader")
	}
	e.candidate(statestore.ElectorConfig{Hostname: "b"}, nil)
	if _, err := e.store.CreateTasks(ctx, statestore.NewTask{Action: "noop"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // B is waiting in the lock queue

	proxy.SetPartition(true) // bytes and closes vanish; the server-side socket stays open
	cut := time.Now()
	termB, at, _ := e.waitTerm(termA, 20*time.Second)
	t.Logf("blackhole behind a proxy: new leader (term %d) after %v", termB, at.Sub(cut).Round(time.Millisecond))
	select {
	case cause := <-causes:
		if !errors.Is(cause, statestore.ErrLeadershipLost) {
			t.Fatalf("deposed leader's context ended with %v, want ErrLeadershipLost", cause)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the blackholed leader never noticed")
	}
	if _, ok := a.Leading(); ok {
		t.Fatal("A still says it leads")
	}
	if err := fencedWrite(ctx, e.store, termA); !errors.Is(err, statestore.ErrNotLeader) {
		t.Fatalf("deposed leader's fenced write = %v, want ErrNotLeader", err)
	}
	if n := count(t, e.pool, "SELECT count(*) FROM tasks WHERE status = 'running'"); n != 0 {
		t.Fatalf("%d running tasks: the deposed leader's claim was written", n)
	}
	if err := fencedWrite(ctx, e.store, termB); err != nil {
		t.Fatalf("new leader's fenced write: %v", err)
	}
	proxy.SetPartition(false)
}

// Claim by the current holder changes nothing: same term, no second lock, so
// one Abdicate frees the lock for the next candidate.
func TestClaimByHolderIsIdempotent(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	e := newElection(t)
	a := newClaimElector(t, e, 0)
	b := newClaimElector(t, e, 0)
	term, ok, err := a.Claim(ctx)
	if err != nil || !ok {
		t.Fatalf("a.Claim = %d, %v, %v", term, ok, err)
	}
	for i := 0; i < 3; i++ {
		again, ok, err := a.Claim(ctx)
		if err != nil || !ok || again != term {
			t.Fatalf("repeated a.Claim = %d, %v, %v; want %d, true, nil", again, ok, err, term)
		}
	}
	if err := fencedWrite(ctx, e.store, term); err != nil {
		t.Fatalf("fenced write with the (unchanged) term after repeated claims: %v", err)
	}
	if n := count(t, e.pool, "SELECT count(*) FROM leader_term"); n != 1 {
		t.Fatalf("%d terms recorded, want 1", n)
	}
	if err := a.Abdicate(ctx, term); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Leading(); ok {
		t.Fatal("Leading() after Abdicate")
	}
	term2, ok, err := b.Claim(ctx)
	if err != nil || !ok || term2 != term+1 {
		t.Fatalf("b.Claim after a's abdication = %d, %v, %v; want %d, true", term2, ok, err, term+1)
	}
}

// Only the holder of the current term can end it: Abdicate by anyone else
// (an elector that lost the claim, one that never connected, the leader
// naming another term) changes nothing and says ErrNotLeader.
func TestAbdicateByNonLeaderChangesNothing(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	e := newElection(t)
	a := newClaimElector(t, e, 0)
	b := newClaimElector(t, e, 0)
	fresh := newClaimElector(t, e, 0)
	term, ok, err := a.Claim(ctx)
	if err != nil || !ok {
		t.Fatalf("a.Claim = %d, %v, %v", term, ok, err)
	}
	if _, ok, err := b.Claim(ctx); err != nil || ok {
		t.Fatalf("b.Claim while a leads = %v, %v", ok, err)
	}
	for _, c := range []struct {
		name string
		el   *statestore.Elector
		term int64
	}{
		{"loser of the claim", b, term},
		{"never connected", fresh, term},
		{"leader naming a future term", a, term + 1},
		{"leader naming a past term", a, term - 1},
	} {
		err := c.el.Abdicate(ctx, c.term)
		if !errors.Is(err, statestore.ErrNotLeader) {
			t.Errorf("%s: Abdicate(%d) = %v, want ErrNotLeader", c.name, c.term, err)
		}
	}
	info, err := e.store.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Term != term || info.ResignedAt != nil || !info.LockHeld {
		t.Fatalf("after the non-leaders' abdications Leader() = %+v, want term %d running", info, term)
	}
	if err := e.store.CheckLeader(ctx, term); err != nil {
		t.Fatalf("the real leader is fenced off: %v", err)
	}
	if err := a.Maintain(ctx, term); err != nil {
		t.Fatalf("the real leader's Maintain: %v", err)
	}
	if cur, ok := a.Leading(); !ok || cur != term {
		t.Fatalf("a.Leading() = %d, %v", cur, ok)
	}
	history, err := e.store.LeaderHistory(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != 1 || history[0].EndReason != "" {
		t.Fatalf("history = %+v, want one running term", history)
	}
}

// Store.Leader reports LockHeld for the key the electors use.
func TestLeaderLockHeldWithCustomKey(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	e := newElection(t)
	a := newClaimElector(t, e, 424242)
	term, ok, err := a.Claim(ctx)
	if err != nil || !ok {
		t.Fatalf("a.Claim = %d, %v, %v", term, ok, err)
	}
	info, err := e.store.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Term != term || !info.LockHeld {
		t.Fatalf("Leader() = %+v, want term %d with the lock held", info, term)
	}
	a.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := e.store.Leader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !info.LockHeld {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("LockHeld stays true after the leader's session closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Leading is true right after a successful Claim, and false as soon as the
// leader's context is cancelled, even while the leader function is still
// returning.
func TestLeadingFollowsClaimAndContext(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	e := newElection(t)
	a := newClaimElector(t, e, 0)
	term, ok, err := a.Claim(ctx)
	if err != nil || !ok {
		t.Fatalf("a.Claim = %d, %v, %v", term, ok, err)
	}
	if cur, ok := a.Leading(); !ok || cur != term {
		t.Fatalf("Leading() after Claim = %d, %v; want %d, true", cur, ok, term)
	}
	if err := a.Abdicate(ctx, term); err != nil {
		t.Fatal(err)
	}
	a.Close()

	cancelled := make(chan struct{})
	release := make(chan struct{})
	r := e.candidate(statestore.ElectorConfig{}, func(ctx context.Context, term int64) error {
		<-ctx.Done()
		close(cancelled)
		<-release // slow to return
		return nil
	})
	e.waitTerm(term, 10*time.Second)
	if _, ok := r.Leading(); !ok {
		t.Fatal("Leading() false while leading")
	}
	r.Resign()
	<-cancelled
	_, stillLeading := r.Leading()
	close(release)
	if stillLeading {
		t.Fatal("Leading() true after the leader's context was cancelled")
	}
}

// When recording the term fails after the lock was taken, Claim gives the
// lock back: another candidate can be elected.
func TestClaimReleasesLockWhenRecordFails(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	e := newElection(t)
	// Recording a term fails while this trigger exists.
	if _, err := e.pool.Exec(ctx, `
		CREATE FUNCTION test_refuse_leader() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'refused by test'; END $$;
		CREATE TRIGGER test_refuse_leader BEFORE INSERT OR UPDATE ON leader_term
		FOR EACH ROW EXECUTE FUNCTION test_refuse_leader();`); err != nil {
		t.Fatal(err)
	}
	a := newClaimElector(t, e, 0)
	b := newClaimElector(t, e, 0)
	if _, ok, err := a.Claim(ctx); err == nil || ok {
		t.Fatalf("a.Claim with recording refused = %v, %v; want an error", ok, err)
	}
	if _, ok := a.Leading(); ok {
		t.Fatal("Leading() after a failed Claim")
	}
	if _, err := e.pool.Exec(ctx, "DROP TRIGGER test_refuse_leader ON leader_term"); err != nil {
		t.Fatal(err)
	}
	term, ok, err := b.Claim(ctx)
	if err != nil || !ok {
		t.Fatalf("b.Claim after a's failed claim = %d, %v, %v: a kept the lock", term, ok, err)
	}
}

// A database failover grants the (unreplicated) advisory lock anew on the
// promoted server while the old leader may still hold it on the old one.
// Two electors on different lock keys model that: both hold "the lock", and
// the term row alone decides who may write.
func TestTwoLockHoldersOnlyNewestTermWrites(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	e := newElection(t)
	old := newClaimElector(t, e, 1001)
	// A long CheckInterval: the new leader waits that long for the old term's
	// fenced transaction before ending it, and this test commits it first.
	promoted, err := statestore.NewElector(statestore.ElectorConfig{ConnString: e.url, LockKey: 1002,
		CheckInterval: 5 * time.Second, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(promoted.Close)
	term1, ok, err := old.Claim(ctx)
	if err != nil || !ok {
		t.Fatalf("old.Claim = %d, %v, %v", term1, ok, err)
	}
	if _, err := e.store.CreateTasks(ctx, statestore.NewTask{Action: "noop"}, statestore.NewTask{Action: "noop"}); err != nil {
		t.Fatal(err)
	}
	// The old leader is inside a fenced transaction when the new one is
	// elected: the election waits for it, so the write lands in the old term.
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.WithTx(tx).CheckLeader(ctx, term1); err != nil {
		t.Fatal(err)
	}
	type claimed struct {
		term int64
		ok   bool
		err  error
	}
	elected := make(chan claimed, 1)
	go func() {
		term, ok, err := promoted.Claim(ctx)
		elected <- claimed{term, ok, err}
	}()
	select {
	case c := <-elected:
		t.Fatalf("new term %+v recorded while the old term's fenced transaction was open", c)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := e.store.WithTx(tx).ClaimTasks(ctx, "old", 1); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	c := <-elected
	if c.err != nil || !c.ok || c.term != term1+1 {
		t.Fatalf("promoted.Claim = %+v, want term %d", c, term1+1)
	}
	// Both hold a lock; only the new term can write.
	if err := fencedWrite(ctx, e.store, term1); !errors.Is(err, statestore.ErrNotLeader) {
		t.Fatalf("old term's fenced write = %v, want ErrNotLeader", err)
	}
	if err := old.Maintain(ctx, term1); err == nil {
		t.Fatal("old leader's Maintain succeeded after a newer term began")
	}
	if _, ok := old.Leading(); ok {
		t.Fatal("old leader still says it leads after a failed Maintain")
	}
	if err := fencedWrite(ctx, e.store, c.term); err != nil {
		t.Fatalf("new term's fenced write: %v", err)
	}
	if n := count(t, e.pool, "SELECT count(*) FROM tasks WHERE status = 'running'"); n != 2 {
		t.Fatalf("%d running tasks, want 2 (one per term)", n)
	}
}

func newClaimElector(t *testing.T, e *election, key int64) *statestore.Elector {
	t.Helper()
	el, err := statestore.NewElector(statestore.ElectorConfig{ConnString: e.url, LockKey: key, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(el.Close)
	return el
}

// A leader host that vanishes in the middle of a fenced transaction (its
// store connection and its elector connection both behind a proxy that
// loses the FIN) does not hold up the next election: the transaction holds
// the term, but may not sit idle beyond FencedIdleTimeout.
func TestLeaderVanishingMidFencedTxIsReplaced(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	e := newElection(t)
	proxy, via := proxyFor(t, e.url)
	a := e.candidate(statestore.ElectorConfig{ConnString: via, Hostname: "a"}, nil)
	termA, _, first := e.waitTerm(0, 10*time.Second)
	if first != a {
		t.Fatal("A was not the first leader")
	}
	e.candidate(statestore.ElectorConfig{Hostname: "b"}, nil)
	aPool, err := pgxpool.New(ctx, via)
	if err != nil {
		t.Fatal(err)
	}
	defer aPool.Close()
	aStore := statestore.New(aPool, statestore.Options{DisableListen: true})
	defer aStore.Close()
	tx, err := aPool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // its connection is dead by then
	if err := aStore.WithTx(tx).CheckLeader(ctx, termA); err != nil {
		t.Fatal(err)
	}
	proxy.SetPartition(true) // A's host is gone mid-transaction
	cut := time.Now()
	termB, at, _ := e.waitTerm(termA, 30*time.Second)
	t.Logf("leader gone mid fenced transaction: term %d elected after %v", termB, at.Sub(cut).Round(time.Millisecond))
	if err := fencedWrite(ctx, e.store, termA); !errors.Is(err, statestore.ErrNotLeader) {
		t.Fatalf("deposed term's fenced write = %v, want ErrNotLeader", err)
	}
	proxy.SetPartition(false)
	proxy.CutAll()
}

// Through Claim, SessionTimeout is the contract: a leader that calls
// Maintain in time keeps leading; one that falls silent for longer loses
// the lock to the next Claim; an idle non-leader's next Claim or Abdicate
// works on a fresh session (no error from the one the server ended).
func TestClaimModeSessionTimeout(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	e := newElection(t)
	cfg := statestore.ElectorConfig{ConnString: e.url, CheckInterval: 200 * time.Millisecond,
		SessionTimeout: time.Second, Logger: quietLogger}
	a, err := statestore.NewElector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := statestore.NewElector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	term, ok, err := a.Claim(ctx)
	if err != nil || !ok {
		t.Fatalf("a.Claim = %d, %v, %v", term, ok, err)
	}
	if _, ok, err := b.Claim(ctx); err != nil || ok {
		t.Fatalf("b.Claim while a leads = %v, %v", ok, err)
	}
	for i := 0; i < 10; i++ { // 2 s of a leader calling Maintain in time
		time.Sleep(200 * time.Millisecond)
		if err := a.Maintain(ctx, term); err != nil {
			t.Fatalf("Maintain %d: %v", i, err)
		}
	}
	// b sat idle past SessionTimeout: its session is gone, its calls still work.
	if err := b.Abdicate(ctx, term); !errors.Is(err, statestore.ErrNotLeader) {
		t.Fatalf("b.Abdicate after its session timed out = %v, want ErrNotLeader", err)
	}
	if _, ok, err := b.Claim(ctx); err != nil || ok {
		t.Fatalf("b.Claim after its session timed out = %v, %v; want false, nil", ok, err)
	}
	// a falls silent: the server ends its session and b can be elected.
	time.Sleep(2500 * time.Millisecond)
	term2, ok, err := b.Claim(ctx)
	if err != nil || !ok || term2 <= term {
		t.Fatalf("b.Claim after a fell silent = %d, %v, %v", term2, ok, err)
	}
	if err := a.Maintain(ctx, term); err == nil {
		t.Fatal("a's Maintain succeeded after its session was ended")
	}
	if _, ok := a.Leading(); ok {
		t.Fatal("a still says it leads")
	}
}
