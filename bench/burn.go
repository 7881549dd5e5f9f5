package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"

	"github.com/drydock-go/statemgmt/statestore"
)

func burn(ctx context.Context, cfg *config, b *bench) error {
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
				tasks, err := s.ClaimTasks(ctx, name, 100)
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
	s.Close()
	pool.Close()
	cleanup()
	select {
	case err := <-errs:
		return err
	default:
	}
	if done.Load() != int64(cfg.tasks) {
		return fmt.Errorf("statemgmt completed %d of %d", done.Load(), cfg.tasks)
	}
	b.emit(record{Scenario: "burn", System: "statemgmt", Metric: "throughput", Value: ours, Unit: "tasks/s",
		Params: map[string]any{"tasks": cfg.tasks, "workers": cfg.workers, "claim_batch": 100, "completion": "CompleteTasks per batch"}})

	// River: the same number of no-op jobs, its own throughput settings.
	url, cleanup, err = database(ctx, cfg)
	if err != nil {
		return err
	}
	defer cleanup()
	rpool, err := newPool(ctx, url, int32(cfg.workers+10))
	if err != nil {
		return err
	}
	defer rpool.Close()
	maxWorkers := 100
	client, err := riverClient(rpool, maxWorkers, nil)
	if err != nil {
		return err
	}
	for left := cfg.tasks; left > 0; left -= 1000 {
		batch := make([]river.InsertManyParams, min(left, 1000))
		for i := range batch {
			batch[i] = river.InsertManyParams{Args: noopArgs{}}
		}
		if _, err := client.InsertManyFast(ctx, batch); err != nil {
			return err
		}
	}
	// Completions are counted in the database (what River has persisted as
	// completed), polled every 20 ms: its event subscription may drop events
	// under load.
	var rdone atomic.Int64
	stop = progress("river burn", func() string { return fmt.Sprintf("%d/%d", rdone.Load(), cfg.tasks) })
	start = time.Now()
	if err := client.Start(ctx); err != nil {
		return err
	}
	stalled := time.Now().Add(120 * time.Second)
	for rdone.Load() < int64(cfg.tasks) {
		var n int64
		if err := rpool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE state = 'completed'").Scan(&n); err != nil {
			return err
		}
		rdone.Store(n)
		if n >= int64(cfg.tasks) {
			break
		}
		if time.Now().After(stalled) || ctx.Err() != nil {
			return fmt.Errorf("river stalled at %d of %d", n, cfg.tasks)
		}
		time.Sleep(20 * time.Millisecond)
	}
	theirs := float64(cfg.tasks) / time.Since(start).Seconds()
	stop()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	_ = client.Stop(sctx)
	b.emit(record{Scenario: "burn", System: "river", Metric: "throughput", Value: theirs, Unit: "jobs/s",
		Params: map[string]any{"jobs": cfg.tasks, "max_workers": maxWorkers, "fetch_cooldown": "1ms", "completion": "River's batched completer"}})
	b.ratio("burn", "throughput", ours, theirs, "higher is better")
	return nil
}

// ---- latency ----
