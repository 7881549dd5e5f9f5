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

func latency(ctx context.Context, cfg *config, b *bench) error {
	n := int(cfg.rate * cfg.duration.Seconds())
	interval := time.Duration(float64(time.Second) / cfg.rate)
	params := map[string]any{"rate_per_s": cfg.rate, "tasks": n, "claimers": cfg.workers}

	// Ours: idle claimers in ClaimTasksWait (LISTEN/NOTIFY wake-ups).
	url, cleanup, err := database(ctx, cfg)
	if err != nil {
		return err
	}
	pool, err := newPool(ctx, url, int32(cfg.workers+4))
	if err != nil {
		return err
	}
	s := statestore.New(pool, statestore.Options{Logger: quiet})
	var mu sync.Mutex
	enqueued := map[uuid.UUID]time.Time{}
	var lat []time.Duration
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
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
					lat = append(lat, now.Sub(enqueued[t.ID]))
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // claimers idle and listening
	stopProgress := progress("statemgmt latency", func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("%d/%d claimed", len(lat), n)
	})
	tick := time.NewTicker(interval)
	for i := 0; i < n; i++ {
		<-tick.C
		id := uuid.Must(uuid.NewV7())
		mu.Lock()
		enqueued[id] = time.Now()
		mu.Unlock()
		if _, err := s.CreateTask(ctx, statestore.NewTask{ID: id, Action: "noop"}); err != nil {
			cancel()
			return err
		}
	}
	tick.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got := len(lat)
		mu.Unlock()
		if got >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	stopProgress()
	wg.Wait()
	s.Close()
	pool.Close()
	cleanup()
	if len(lat) < n {
		return fmt.Errorf("statemgmt: %d of %d tasks claimed", len(lat), n)
	}
	ours := lat

	// River: idle workers, LISTEN-driven fetches, one job at a time.
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
	var rl []time.Duration
	client, err := riverClient(rpool, cfg.workers, func(job *river.Job[noopArgs]) {
		d := time.Since(job.Args.EnqueuedAt)
		mu.Lock()
		rl = append(rl, d)
		mu.Unlock()
	})
	if err != nil {
		return err
	}
	if err := client.Start(ctx); err != nil {
		return err
	}
	time.Sleep(time.Second) // leadership, LISTEN and queues settle
	stopProgress = progress("river latency", func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("%d/%d worked", len(rl), n)
	})
	defer stopProgress()
	tick = time.NewTicker(interval)
	for i := 0; i < n; i++ {
		<-tick.C
		if _, err := client.Insert(ctx, noopArgs{EnqueuedAt: time.Now()}, nil); err != nil {
			return err
		}
	}
	tick.Stop()
	deadline = time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got := len(rl)
		mu.Unlock()
		if got >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	_ = client.Stop(sctx)
	mu.Lock()
	theirs := append([]time.Duration(nil), rl...)
	mu.Unlock()
	for _, p := range []struct {
		name string
		q    float64
	}{{"p50", .5}, {"p90", .9}, {"p99", .99}} {
		b.emit(record{Scenario: "latency", System: "statemgmt", Metric: "enqueue→claim " + p.name, Value: ms(percentile(ours, p.q)), Unit: "ms", Params: params})
		b.emit(record{Scenario: "latency", System: "river", Metric: "enqueue→work " + p.name, Value: ms(percentile(theirs, p.q)), Unit: "ms", Params: params})
	}
	b.ratio("latency", "p99", ms(percentile(ours, .99)), ms(percentile(theirs, .99)), "lower is better")
	return nil
}

// ---- append ----
