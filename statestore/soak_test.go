//go:build linux

package statestore_test

// The soak: 4 processes × 4 workers claim and complete tasks and append
// messages while the leader's backend is killed every few seconds and every
// worker process's connections are cut at random. Afterwards every task is
// complete, was claimed exactly once per attempt, has a gap-free message
// sequence, and no two leadership intervals overlap.
//
// make test runs it briefly (3 000 tasks). For the long run:
//
//	STATEMGMT_SOAK=10m go test -timeout 40m -run TestSoak -v ./statestore/   # 100 000 tasks, up to 20 min

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

const (
	soakProcesses        = 4
	soakWorkersPerProc   = 4
	soakMessagesPerTask  = 3
	soakStaleClaimCutoff = 2 * time.Second
)

const soakSchema = `
CREATE TABLE soak_claim (task_id uuid NOT NULL, attempt integer NOT NULL, claimer text NOT NULL);
CREATE INDEX soak_claim_task ON soak_claim (task_id, attempt);
CREATE TABLE soak_interval (term bigint PRIMARY KEY, started_at timestamptz NOT NULL, last_write_at timestamptz NOT NULL);
CREATE TABLE soak_stat (proc text PRIMARY KEY, cuts bigint NOT NULL);
`

func TestSoak(t *testing.T) {
	if os.Getenv("SOAK_WORKER_DB") != "" {
		t.Skip("worker process")
	}
	if viaPgBouncer {
		t.Skip("the soak runs direct (its electors need session locks)")
	}
	tasks, deadline := 3000, 2*time.Minute
	if d := os.Getenv("STATEMGMT_SOAK"); d != "" {
		dur, err := time.ParseDuration(d)
		if err != nil {
			t.Fatalf("STATEMGMT_SOAK=%q: %v", d, err)
		}
		tasks, deadline = 100000, 2*dur // faults for the whole run; the deadline is a safety net
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline+time.Minute)
	defer cancel()
	db := statetest.New(t)
	pool, err := pgxpool.New(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, soakSchema+soakLeaderSchema); err != nil {
		t.Fatal(err)
	}
	s := statestore.New(pool, statestore.Options{DisableListen: true})
	defer s.Close()
	for left := tasks; left > 0; left -= 1000 {
		batch := make([]statestore.NewTask, min(left, 1000))
		for i := range batch {
			batch[i] = statestore.NewTask{Action: "noop"}
		}
		if _, err := s.CreateTasks(ctx, batch...); err != nil {
			t.Fatal(err)
		}
	}

	start := time.Now()
	var procs []*exec.Cmd
	for p := 0; p < soakProcesses; p++ {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestSoakWorker$", "-test.count", "1")
		cmd.Env = append(os.Environ(), "SOAK_WORKER_DB="+db.URL, "SOAK_PROC="+strconv.Itoa(p),
			"SOAK_DEADLINE="+start.Add(deadline).Format(time.RFC3339Nano))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
	}

	// Kill the leader's backend every 1-3 s until the work is done.
	kills := 0
	done := make(chan error, len(procs))
	for _, p := range procs {
		go func() { done <- p.Wait() }()
	}
	rng := rand.New(rand.NewPCG(7, 11))
	exited := 0
	for exited < len(procs) {
		select {
		case err := <-done:
			exited++
			if err != nil {
				t.Errorf("worker process failed: %v", err)
			}
			continue
		case <-time.After(time.Second + time.Duration(rng.IntN(2000))*time.Millisecond):
		}
		if l, err := s.Leader(ctx); err == nil && l.LockHeld {
			var ok bool
			if err := pool.QueryRow(ctx, "SELECT pg_terminate_backend($1)", l.BackendPID).Scan(&ok); err == nil && ok {
				kills++
			}
		}
	}
	elapsed := time.Since(start)

	// Every task complete.
	if n := count(t, pool, "SELECT count(*) FROM tasks WHERE status <> 'complete'"); n != 0 {
		t.Errorf("%d of %d tasks not complete after %v", n, tasks, elapsed)
	}
	// Claimed exactly once per attempt: attempts 0..retry, one claim each.
	if n := count(t, pool, `SELECT count(*) FROM (SELECT task_id, attempt FROM soak_claim
		GROUP BY task_id, attempt HAVING count(*) > 1) dup`); n != 0 {
		t.Errorf("%d (task, attempt) pairs claimed more than once", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM tasks t
		LEFT JOIN (SELECT task_id, count(*) AS claims FROM soak_claim GROUP BY task_id) c USING (task_id)
		WHERE coalesce(c.claims, 0) <> t.retry + 1`); n != 0 {
		t.Errorf("%d tasks whose claims do not match their attempts", n)
	}
	// Gap-free sequences.
	if n := count(t, pool, `SELECT count(*) FROM tasks t
		LEFT JOIN (SELECT task_id, count(*) AS n, max(sequence) AS top FROM result_message GROUP BY task_id) m USING (task_id)
		WHERE t.last_message_seq <> coalesce(m.n, 0) OR t.last_message_seq <> coalesce(m.top, 0)`); n != 0 {
		t.Errorf("%d tasks with gaps or duplicates in their message sequence", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM tasks WHERE last_message_seq < $1", soakMessagesPerTask); n != 0 {
		t.Errorf("%d completed tasks without their messages", n)
	}
	// Leadership intervals never overlap.
	if n := count(t, pool, `SELECT count(*) FROM soak_interval a JOIN soak_interval b ON b.term > a.term
		WHERE b.started_at <= a.last_write_at`); n != 0 {
		t.Errorf("%d pairs of overlapping leadership intervals", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM soak_stat"); n != soakProcesses {
		t.Fatalf("%d of %d worker processes reported", n, soakProcesses)
	}
	claims := count(t, pool, "SELECT count(*) FROM soak_claim")
	requeues := count(t, pool, "SELECT coalesce(sum(retry), 0) FROM tasks")
	messages := count(t, pool, "SELECT count(*) FROM result_message")
	terms := count(t, pool, "SELECT count(*) FROM soak_interval")
	cuts := count(t, pool, "SELECT coalesce(sum(cuts), 0) FROM soak_stat")
	t.Log(checkSoakLeaderFaults(t, pool))
	t.Logf("soak: %d tasks by %d workers in %d processes in %v (%.0f tasks/s): %d claims, %d requeues, %d messages, "+
		"%d leader terms, %d leader kills, %d connection cuts; all complete, claims once per attempt, sequences gap-free, no overlapping leaders",
		tasks, soakProcesses*soakWorkersPerProc, soakProcesses, elapsed.Round(time.Millisecond), float64(tasks)/elapsed.Seconds(),
		claims, requeues, messages, terms, kills, cuts)
}

// TestSoakWorker is one soak process: an elector and four workers whose
// connections go through a fault proxy that cuts them at random.
func TestSoakWorker(t *testing.T) {
	url := os.Getenv("SOAK_WORKER_DB")
	if url == "" {
		t.Skip("run by TestSoak")
	}
	proc := os.Getenv("SOAK_PROC")
	deadline, err := time.Parse(time.RFC3339Nano, os.Getenv("SOAK_DEADLINE"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	proxy, via := proxyFor(t, url)
	cfg, err := pgxpool.ParseConfig(via)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = soakWorkersPerProc + 2
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s := statestore.New(pool, statestore.Options{DisableListen: true, PollInterval: 20 * time.Millisecond})
	defer s.Close()
	direct, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()

	var cuts atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // cut this process's connections at random
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(200+rand.IntN(800)) * time.Millisecond):
				proxy.CutAll()
				cuts.Add(1)
			}
		}
	}()

	// The elector's leader requeues stale claims and records its interval,
	// all with fenced writes, under the leadership faults of soak_leader_test.go.
	leaderStats := soakLeader(ctx, t, &wg, url, direct)

	for w := 0; w < soakWorkersPerProc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			soakWorker(ctx, s, fmt.Sprintf("p%s-w%d", proc, w))
		}()
	}
	// Done when no task is left to do (or at the deadline).
	for ctx.Err() == nil {
		var open int
		if err := direct.QueryRow(ctx, "SELECT count(*) FROM tasks WHERE status <> 'complete'").Scan(&open); err == nil && open == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if _, err := direct.Exec(context.Background(), "INSERT INTO soak_stat VALUES ($1, $2)", proc, cuts.Load()); err != nil {
		t.Fatal(err)
	}
	leaderStats.save(t, direct, proc)
}

// soakWorker claims, logs and completes tasks until ctx ends, riding out
// cut connections: a failed call is simply retried; a claim whose answer
// was lost is requeued by the leader.
func soakWorker(ctx context.Context, s *statestore.Store, name string) {
	for ctx.Err() == nil {
		var claimed []*statestore.Task
		err := s.InTx(ctx, func(ctx context.Context, tx *statestore.Store) error {
			var err error
			if claimed, err = tx.ClaimTasks(ctx, name, 5); err != nil {
				return err
			}
			for _, c := range claimed {
				if err := tx.ExecForTest(ctx, "INSERT INTO soak_claim VALUES ($1, $2, $3)", c.ID, c.Retry, name); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			continue
		}
		if len(claimed) == 0 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		var ids []statestore.Claim
		for _, c := range claimed {
			ok := true
			for i := 0; i < soakMessagesPerTask && ok; i++ {
				_, err := s.AppendMessage(ctx, c.ID, statestore.NewMessage{Message: fmt.Sprintf("%s step %d", name, i)})
				ok = err == nil
			}
			if ok {
				ids = append(ids, c.Claim())
			}
		}
		if len(ids) > 0 {
			_, _ = s.CompleteTasks(ctx, statestore.ResultSuccess, ids...) // lost answers or stale attempts: requeued and redone
		}
	}
}
