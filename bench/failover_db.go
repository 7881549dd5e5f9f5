package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/internal/hapg"
	"github.com/drydock-go/statemgmt/statestore"
)

// failoverDB measures a database failover under load on a pg_auto_failover
// formation (monitor + two nodes, internal/hapg): a producer creates tasks,
// a worker claims them fenced by the current term; then the primary's host
// "dies" (SIGKILL to its keeper and PostgreSQL). Figures: kill → first
// successful claim on the new primary (the write outage), promotion (the
// monitor reports the new primary writable) → the store's first success,
// promotion → a new leader running; with
// pg_auto_failover's default timing and with hapg.TunedTiming.
func failoverDB(ctx context.Context, cfg *config, b *bench) error {
	type variant struct {
		name   string
		timing hapg.Timing
		trials int
	}
	variants := []variant{{"defaults", hapg.Timing{}, min(cfg.trials, 3)}, {"tuned", hapg.TunedTiming, min(cfg.trials, 3)}}
	if cfg.small {
		variants = []variant{{"tuned", hapg.TunedTiming, 1}}
	}
	for _, v := range variants {
		var outage, toStore, toLeader []time.Duration
		for i := 0; i < v.trials; i++ {
			fmt.Fprintf(os.Stderr, "failover-db: %s, trial %d of %d\n", v.name, i+1, v.trials)
			o, s, l, err := failoverDBTrial(ctx, v.timing)
			if errors.Is(err, hapg.ErrNoAutoFailover) {
				fmt.Fprintf(os.Stderr, "failover-db: SKIPPED: %v\n", err)
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			outage, toStore, toLeader = append(outage, o), append(toStore, s), append(toLeader, l)
		}
		params := map[string]any{"timing": v.name, "trials": v.trials, "elector_check_interval": "200ms"}
		for _, m := range []struct {
			metric string
			ds     []time.Duration
		}{{"kill → first claim on the new primary (median)", outage},
			{"writes enabled (monitor: wait_primary) → store's first success (median)", toStore},
			{"writes enabled (monitor: wait_primary) → new leader running (median)", toLeader}} {
			b.emit(record{Scenario: "failover-db", System: "statemgmt", Metric: m.metric,
				Value: ms(percentile(m.ds, 0.5)), Unit: "ms", Params: params})
			b.emit(record{Scenario: "failover-db", System: "statemgmt", Metric: m.metric[:len(m.metric)-len("(median)")] + "(max)",
				Value: ms(percentile(m.ds, 1)), Unit: "ms", Params: params})
		}
	}
	return nil
}

// failoverDBTrial runs one formation, kill and failover.
func failoverDBTrial(ctx context.Context, timing hapg.Timing) (outage, toStore, toLeader time.Duration, err error) {
	f, err := hapg.StartFormation(ctx, timing)
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.Close()
	const dbName = "statemgmt_bench"
	if err := createAndMigrate(ctx, f.Nodes[0].NodeURL("postgres"), f.Nodes[0].NodeURL(dbName), dbName); err != nil {
		return 0, 0, 0, err
	}
	pcfg, err := pgxpool.ParseConfig(f.URL(dbName))
	if err != nil {
		return 0, 0, 0, err
	}
	statestore.ConfigureForFailover(pcfg)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return 0, 0, 0, err
	}
	defer pool.Close()
	store := statestore.New(pool, statestore.Options{Logger: quiet, FailoverAware: true})
	defer store.Close()
	el, err := statestore.NewElector(statestore.ElectorConfig{ConnString: f.URL(dbName), FailoverAware: true,
		CheckInterval: 200 * time.Millisecond, Logger: quiet})
	if err != nil {
		return 0, 0, 0, err
	}
	defer el.Close()

	var term atomic.Int64
	var leaderAt, firstCreate, firstClaim atomic.Int64 // unix ns, after the kill
	var killed atomic.Int64
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	wg.Add(3)
	go func() {
		defer wg.Done()
		_ = el.Run(runCtx, func(ctx context.Context, tm int64) error {
			term.Store(tm)
			if killed.Load() != 0 {
				leaderAt.CompareAndSwap(0, time.Now().UnixNano())
			}
			<-ctx.Done()
			return nil
		})
	}()
	go func() { // the producer
		defer wg.Done()
		for runCtx.Err() == nil {
			cctx, cancel := context.WithTimeout(runCtx, time.Second)
			_, err := store.CreateTask(cctx, statestore.NewTask{ID: uuid.New(), Action: "deploy_node"})
			cancel()
			if err == nil && killed.Load() != 0 {
				firstCreate.CompareAndSwap(0, time.Now().UnixNano())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	go func() { // the worker
		defer wg.Done()
		for runCtx.Err() == nil {
			tm := term.Load()
			if tm == 0 {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			cctx, cancel := context.WithTimeout(runCtx, time.Second)
			tasks, err := store.AsLeader(tm).ClaimTasks(cctx, "bench-worker", 5, "deploy_node")
			if err == nil && len(tasks) > 0 {
				if killed.Load() != 0 {
					firstClaim.CompareAndSwap(0, time.Now().UnixNano())
				}
				claims := make([]statestore.Claim, len(tasks))
				for i, t := range tasks {
					claims[i] = t.Claim()
				}
				_, _ = store.CompleteTasks(cctx, statestore.ResultSuccess, claims...) // measured: claims only
			}
			cancel()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	// Steady state first: claims flowing under a leader.
	deadline := time.Now().Add(time.Minute)
	for term.Load() == 0 || count(ctx, pool, "SELECT count(*) FROM tasks WHERE status = 'complete'") < 20 {
		if time.Now().After(deadline) {
			return 0, 0, 0, errors.New("no steady state within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	oldTerm := term.Load()
	start := time.Now()
	killed.Store(start.UnixNano())
	if err := f.Nodes[0].Kill(); err != nil {
		return 0, 0, 0, err
	}
	promoted, err := waitPromoted(ctx, f.Nodes[1].NodeURL("postgres"))
	if err != nil {
		return 0, 0, 0, err
	}
	// pg_auto_failover promotes the standby (out of recovery) in
	// stop_replication, where it still blocks writes until the old primary
	// has had primary_demote_timeout to demote itself; writes are enabled
	// when the monitor reports it wait_primary. That is "the promotion"
	// the figures count from.
	writable, err := waitWritable(ctx, f)
	if err != nil {
		return 0, 0, 0, err
	}
	fmt.Fprintf(os.Stderr, "failover-db: kill → out of recovery %v, → writes enabled (monitor: wait_primary) %v\n",
		promoted.Sub(start).Round(time.Millisecond), writable.Sub(start).Round(time.Millisecond))
	promoted = writable
	deadline = time.Now().Add(2 * time.Minute)
	for firstClaim.Load() == 0 || firstCreate.Load() == 0 || term.Load() <= oldTerm || leaderAt.Load() == 0 {
		if time.Now().After(deadline) {
			return 0, 0, 0, fmt.Errorf("store or leader not back within 2 min of the promotion (term %d → %d)", oldTerm, term.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	at := func(v *atomic.Int64) time.Time { return time.Unix(0, v.Load()) }
	storeBack := at(&firstCreate)
	if c := at(&firstClaim); c.Before(storeBack) {
		storeBack = c
	}
	return at(&firstClaim).Sub(start), storeBack.Sub(promoted), at(&leaderAt).Sub(promoted), nil
}

// waitPromoted polls the standby until it is out of recovery and returns
// when it saw that (within 20 ms of the promotion).
func waitPromoted(ctx context.Context, url string) (time.Time, error) {
	deadline := time.Now().Add(3 * time.Minute)
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.WithoutCancel(ctx))
		}
	}()
	for time.Now().Before(deadline) {
		if conn == nil || conn.IsClosed() {
			conn, _ = pgx.Connect(ctx, url) // retried below
		}
		if conn != nil {
			var inRecovery bool
			if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err == nil && !inRecovery {
				return time.Now(), nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Time{}, errors.New("the standby was not promoted within 3 min")
}

// waitWritable polls the monitor until it reports node2 as the primary
// (wait_primary or primary) and returns when it saw that.
func waitWritable(ctx context.Context, f *hapg.Formation) (time.Time, error) {
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if n, err := f.Primary(ctx); err == nil && n == f.Nodes[1] {
			return time.Now(), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Time{}, errors.New("the monitor did not report node2 primary within 3 min")
}

// createAndMigrate creates database dbName through adminURL and migrates it.
func createAndMigrate(ctx context.Context, adminURL, dbURL, dbName string) error {
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	_, err = admin.Exec(ctx, "CREATE DATABASE "+dbName)
	admin.Close(ctx)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = statestore.Migrate(ctx, conn, quiet)
	return err
}

// count runs a counting query; -1 on error (the caller polls).
func count(ctx context.Context, pool *pgxpool.Pool, sql string) int {
	var n int
	if err := pool.QueryRow(ctx, sql).Scan(&n); err != nil {
		return -1
	}
	return n
}
