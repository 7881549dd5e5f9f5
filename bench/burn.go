package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/drydock-go/statemgmt/statestore"
)

func burn(ctx context.Context, cfg *config, b *bench) error {
	sweep, err := riverBurnWorkers(cfg)
	if err != nil {
		return err
	}
	// Ours: K workers, claim 100 at a time, complete each batch in one statement.
	url, cleanup, err := database(ctx, cfg)
	if err != nil {
		return err
	}
	pool, err := newPool(ctx, url, int32(cfg.workers+2))
	if err != nil {
		return err
	}
	s := statestore.New(pool, statestore.Options{Logger: quiet, DisableListen: true})
	for left := cfg.tasks; left > 0; left -= 1000 {
		batch := make([]statestore.NewTask, min(left, 1000))
		for i := range batch {
			batch[i] = statestore.NewTask{Action: "noop"}
		}
		if _, err := s.CreateTasks(ctx, batch...); err != nil {
			return err
		}
	}
	var done atomic.Int64
	stop := progress("statemgmt burn", func() string { return fmt.Sprintf("%d/%d", done.Load(), cfg.tasks) })
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, cfg.workers)
	for w := 0; w < cfg.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("w%d", w)
			for {
				tasks, err := s.ClaimTasks(ctx, name, cfg.claim)
				if err != nil {
					errs <- err
					return
				}
				if len(tasks) == 0 {
					return
				}
				ids := make([]statestore.Claim, len(tasks))
				for i, t := range tasks {
					ids[i] = t.Claim()
				}
				if _, err := s.CompleteTasks(ctx, statestore.ResultSuccess, ids...); err != nil {
					errs <- err
					return
				}
				done.Add(int64(len(ids)))
			}
		}()
	}
	wg.Wait()
	ours := float64(cfg.tasks) / time.Since(start).Seconds()
	stop()
	select {
	case err := <-errs:
		return err
	default:
	}
	if done.Load() != int64(cfg.tasks) {
		return fmt.Errorf("statemgmt completed %d of %d", done.Load(), cfg.tasks)
	}
	b.emit(record{Scenario: "burn", System: "statemgmt", Metric: "throughput", Value: ours, Unit: "tasks/s",
		Params: map[string]any{"tasks": cfg.tasks, "workers": cfg.workers, "claim_batch": cfg.claim, "completion": "CompleteTasks per batch"}})
	if err := burnCosts(ctx, pool, s, b); err != nil {
		return err
	}
	s.Close()
	pool.Close()
	cleanup()

	// River: the same number of no-op jobs with `river bench`'s fetch
	// settings, at each MaxWorkers of the sweep, each on a fresh database;
	// the ratio is against River's best point.
	best := 0.0
	for _, maxWorkers := range sweep {
		theirs, err := riverBurn(ctx, cfg, maxWorkers)
		if err != nil {
			return err
		}
		b.emit(record{Scenario: "burn", System: "river", Metric: fmt.Sprintf("throughput MaxWorkers=%d", maxWorkers), Value: theirs, Unit: "jobs/s",
			Params: map[string]any{"jobs": cfg.tasks, "max_workers": maxWorkers, "fetch_cooldown": "2ms", "fetch_poll": "20ms", "completion": "River's batched completer"}})
		b.ratio("burn", fmt.Sprintf("throughput vs River MaxWorkers=%d", maxWorkers), ours, theirs, "higher is better")
		best = max(best, theirs)
	}
	if best > 0 {
		b.ratio("burn", "throughput vs River's best", ours, best, "higher is better")
	}
	return nil
}

// riverBurnWorkers is the sweep of River's MaxWorkers.
func riverBurnWorkers(cfg *config) ([]int, error) {
	if cfg.small {
		return []int{100}, nil
	}
	var out []int
	if cfg.riverSweep == "none" {
		return nil, nil
	}
	for _, f := range strings.Split(cfg.riverSweep, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-river-max-workers: %q is not a positive whole number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// riverBurn works cfg.tasks no-op jobs off with River at maxWorkers and
// returns jobs/s, from Start until River has persisted every completion.
func riverBurn(ctx context.Context, cfg *config, maxWorkers int) (float64, error) {
	url, cleanup, err := database(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer cleanup()
	rpool, err := newPool(ctx, url, int32(cfg.workers+10))
	if err != nil {
		return 0, err
	}
	defer rpool.Close()
	var worked atomic.Int64
	client, err := riverClientFetch(rpool, maxWorkers, 2*time.Millisecond, 20*time.Millisecond,
		func(*river.Job[noopArgs]) { worked.Add(1) })
	if err != nil {
		return 0, err
	}
	for left := cfg.tasks; left > 0; left -= 1000 {
		batch := make([]river.InsertManyParams, min(left, 1000))
		for i := range batch {
			batch[i] = river.InsertManyParams{Args: noopArgs{}}
		}
		if _, err := client.InsertManyFast(ctx, batch); err != nil {
			return 0, err
		}
	}
	// Done when River has persisted every completion: counted in the
	// database (its event subscription may drop events under load), but
	// only once every job was worked, so that the count's scans do not
	// compete with River while it works.
	stop := progress(fmt.Sprintf("river burn MaxWorkers=%d", maxWorkers), func() string {
		return fmt.Sprintf("%d/%d worked", worked.Load(), cfg.tasks)
	})
	defer stop()
	start := time.Now()
	if err := client.Start(ctx); err != nil {
		return 0, err
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = client.Stop(sctx)
	}()
	stalled := time.Now().Add(120 * time.Second)
	for {
		if worked.Load() >= int64(cfg.tasks) {
			var n int64
			if err := rpool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE state = 'completed'").Scan(&n); err != nil {
				return 0, err
			}
			if n >= int64(cfg.tasks) {
				break
			}
		}
		if time.Now().After(stalled) || ctx.Err() != nil {
			return 0, fmt.Errorf("river (MaxWorkers=%d) stalled at %d of %d worked", maxWorkers, worked.Load(), cfg.tasks)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return float64(cfg.tasks) / time.Since(start).Seconds(), nil
}

// ---- latency ----

// burnCosts reports where a burn's work goes on the server: of the tasks
// table's row updates, how many were HOT (no index entries written), and
// the WAL and round trips of one claim-and-complete of 100 tasks.
func burnCosts(ctx context.Context, pool *pgxpool.Pool, s *statestore.Store, b *bench) error {
	time.Sleep(time.Second) // let the backends' statistics reach pg_stat (flushed at most once a second)
	var upd, hot int64
	if err := pool.QueryRow(ctx, "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'tasks'").Scan(&upd, &hot); err != nil {
		return err
	}
	b.emit(record{Scenario: "burn", System: "statemgmt", Metric: "tasks row updates", Value: float64(upd), Unit: "rows"})
	b.emit(record{Scenario: "burn", System: "statemgmt", Metric: "of which HOT", Value: float64(hot), Unit: "rows"})
	if _, err := pool.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_walinspect"); err != nil {
		return fmt.Errorf("burn measures WAL with pg_walinspect (superuser): %w", err)
	}
	batch := make([]statestore.NewTask, 100)
	for i := range batch {
		batch[i] = statestore.NewTask{Action: "noop"}
	}
	if _, err := s.CreateTasks(ctx, batch...); err != nil {
		return err
	}
	wal, err := walOf(ctx, pool, s, func(s *statestore.Store) error {
		tasks, err := s.ClaimTasks(ctx, "wal", 100)
		if err != nil {
			return err
		}
		claims := make([]statestore.Claim, len(tasks))
		for i, t := range tasks {
			claims[i] = t.Claim()
		}
		_, err = s.CompleteTasks(ctx, statestore.ResultSuccess, claims...)
		return err
	})
	if err != nil {
		return err
	}
	b.emit(record{Scenario: "burn", System: "statemgmt", Metric: "WAL per task (claim + complete)", Value: wal / 100, Unit: "bytes"})
	b.emit(record{Scenario: "burn", System: "statemgmt", Metric: "round trips per task", Value: 2.0 / 100, Unit: "statements"})
	return nil
}
