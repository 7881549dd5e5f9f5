package main

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

type noopArgs struct {
	EnqueuedAt time.Time `json:"enqueued_at"`
}

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	worked func(job *river.Job[noopArgs])
}

// riverClient builds a River client tuned for low latency: the minimum
// fetch cooldown, and LISTEN-driven fetches (the pgx driver).
func riverClient(pool *pgxpool.Pool, maxWorkers int, worked func(*river.Job[noopArgs])) (*river.Client[pgxTx], error) {
	return riverClientFetch(pool, maxWorkers, river.FetchCooldownMin, 50*time.Millisecond, worked)
}

// riverClientFetch builds a River client with the given fetch cooldown and
// poll interval (`river bench` uses 2 ms and 20 ms for throughput).
func riverClientFetch(pool *pgxpool.Pool, maxWorkers int, cooldown, poll time.Duration, worked func(*river.Job[noopArgs])) (*river.Client[pgxTx], error) {
	workers := river.NewWorkers()
	river.AddWorker(workers, &noopWorker{worked: worked})
	return river.NewClient(riverpgxv5.New(pool), &river.Config{
		Logger:            quiet,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: maxWorkers}},
		Workers:           workers,
		FetchCooldown:     cooldown,
		FetchPollInterval: poll,
	})
}

// ---- burn ----

// Kind names the job kind for River.
func (noopArgs) Kind() string { return "noop" }

// Work does nothing but report the job.
func (w *noopWorker) Work(_ context.Context, job *river.Job[noopArgs]) error {
	if w.worked != nil {
		w.worked(job)
	}
	return nil
}
