package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/drydock-go/statemgmt/statestore"
)

// latency enqueues cfg.rate tasks a second to idle claimers, ours and
// River's, and times enqueue → claim (River: enqueue → work). Both systems
// are set up side by side, each on its own database, and the run alternates
// between them in rounds (ours, River, ours, ...), so that a machine whose
// load changes during the run weighs on both alike.
func latency(ctx context.Context, cfg *config, b *bench) error {
	const rounds = 4
	n := int(cfg.rate*cfg.duration.Seconds()) / rounds * rounds
	interval := time.Duration(float64(time.Second) / cfg.rate)
	params := map[string]any{"rate_per_s": cfg.rate, "tasks": n, "claimers": cfg.workers, "rounds": rounds}

	// Ours: idle claimers in ClaimTasksWait (LISTEN/NOTIFY wake-ups).
	url, cleanup, err := database(ctx, cfg)
	if err != nil {
		return err
	}
	defer cleanup()
	pool, err := newPool(ctx, url, int32(cfg.workers+4))
	if err != nil {
		return err
	}
	defer pool.Close()
	s := statestore.New(pool, statestore.Options{Logger: quiet})
	defer s.Close()
	var mu sync.Mutex
	enqueued := map[uuid.UUID]time.Time{}
	var ours, theirs []time.Duration
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel: deferred calls run last-in first-out
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for w := 0; w < cfg.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				tasks, err := s.ClaimTasksWait(cctx, fmt.Sprintf("c%d", w), 1)
				if err != nil {
					return
				}
				now := time.Now()
				mu.Lock()
				for _, t := range tasks {
					ours = append(ours, now.Sub(enqueued[t.ID]))
				}
				mu.Unlock()
			}
		}()
	}

	// River: idle workers, LISTEN-driven fetches, one job at a time.
	rurl, rcleanup, err := database(ctx, cfg)
	if err != nil {
		return err
	}
	defer rcleanup()
	rpool, err := newPool(ctx, rurl, int32(cfg.workers+10))
	if err != nil {
		return err
	}
	defer rpool.Close()
	client, err := riverClient(rpool, cfg.workers, func(job *river.Job[noopArgs]) {
		d := time.Since(job.Args.EnqueuedAt)
		mu.Lock()
		theirs = append(theirs, d)
		mu.Unlock()
	})
	if err != nil {
		return err
	}
	if err := client.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = client.Stop(sctx)
	}()
	time.Sleep(time.Second) // claimers idle and listening; River's leadership, LISTEN and queues settle
	stopProgress := progress("latency", func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("ours %d/%d claimed, River %d/%d worked", len(ours), n, len(theirs), n)
	})
	defer stopProgress()

	// waitFor waits until *got reaches want (or 10 s pass).
	waitFor := func(got *[]time.Duration, want int) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			have := len(*got)
			mu.Unlock()
			if have >= want || time.Now().After(deadline) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for r := 1; r <= rounds; r++ {
		tick := time.NewTicker(interval)
		for i := 0; i < n/rounds; i++ {
			<-tick.C
			id := uuid.Must(uuid.NewV7())
			mu.Lock()
			enqueued[id] = time.Now()
			mu.Unlock()
			if _, err := s.CreateTask(ctx, statestore.NewTask{ID: id, Action: "noop"}); err != nil {
				tick.Stop()
				return err
			}
		}
		tick.Stop()
		waitFor(&ours, r*n/rounds)
		tick = time.NewTicker(interval)
		for i := 0; i < n/rounds; i++ {
			<-tick.C
			if _, err := client.Insert(ctx, noopArgs{EnqueuedAt: time.Now()}, nil); err != nil {
				tick.Stop()
				return err
			}
		}
		tick.Stop()
		waitFor(&theirs, r*n/rounds)
	}
	mu.Lock()
	oursAll, theirsAll := append([]time.Duration(nil), ours...), append([]time.Duration(nil), theirs...)
	mu.Unlock()
	if len(oursAll) < n || len(theirsAll) < n {
		return fmt.Errorf("latency: statemgmt claimed %d, River worked %d, of %d each", len(oursAll), len(theirsAll), n)
	}
	for _, p := range []struct {
		name string
		q    float64
	}{{"p50", .5}, {"p90", .9}, {"p99", .99}} {
		b.emit(record{Scenario: "latency", System: "statemgmt", Metric: "enqueue→claim " + p.name, Value: ms(percentile(oursAll, p.q)), Unit: "ms", Params: params})
		b.emit(record{Scenario: "latency", System: "river", Metric: "enqueue→work " + p.name, Value: ms(percentile(theirsAll, p.q)), Unit: "ms", Params: params})
	}
	b.ratio("latency", "p50", ms(percentile(oursAll, .5)), ms(percentile(theirsAll, .5)), "lower is better")
	b.ratio("latency", "p99", ms(percentile(oursAll, .99)), ms(percentile(theirsAll, .99)), "lower is better")
	return nil
}

// ---- append ----
