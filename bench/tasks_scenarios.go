package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/statestore"
)

// walOf runs fn and returns the WAL bytes the server wrote meanwhile
// (pg_current_wal_lsn before and after; other sessions' writes count too,
// so callers take a median over many calls).
func walOf(ctx context.Context, pool *pgxpool.Pool, fn func() error) (float64, error) {
	var before string
	if err := pool.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&before); err != nil {
		return 0, err
	}
	if err := fn(); err != nil {
		return 0, err
	}
	var diff float64
	err := pool.QueryRow(ctx, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::float8", before).Scan(&diff)
	return diff, err
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// fanout: 10 000 CreateSubtask calls on one parent; the WAL each append
// writes around the 100th and around the 10 000th (median of 50 calls
// each), and the table's size at the end. Linear fan-out: the two are
// about equal.
func fanout(ctx context.Context, cfg *config, b *bench) error {
	n := 10000
	if cfg.small {
		n = 2000
	}
	url, cleanup, err := database(ctx, cfg)
	if err != nil {
		return err
	}
	defer cleanup()
	pool, err := newPool(ctx, url, 4)
	if err != nil {
		return err
	}
	defer pool.Close()
	s := statestore.New(pool, statestore.Options{Logger: quiet, DisableListen: true})
	defer s.Close()
	parent, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_nodes", Status: statestore.StatusRequested})
	if err != nil {
		return err
	}
	var early, late []float64
	start := time.Now()
	for i := 1; i <= n; i++ {
		add := func() error {
			_, err := s.CreateSubtask(ctx, parent.ID, statestore.NewTask{Action: "deploy_node"})
			return err
		}
		switch {
		case i > 75 && i <= 125, i > n-50:
			w, err := walOf(ctx, pool, add)
			if err != nil {
				return err
			}
			if i <= 125 {
				early = append(early, w)
			} else {
				late = append(late, w)
			}
		default:
			if err := add(); err != nil {
				return err
			}
		}
	}
	elapsed := time.Since(start)
	var size int64
	if err := pool.QueryRow(ctx, "SELECT pg_total_relation_size('tasks')").Scan(&size); err != nil {
		return err
	}
	got, err := s.GetTask(ctx, parent.ID)
	if err != nil {
		return err
	}
	if len(got.SubtaskIDs) != n {
		return fmt.Errorf("parent lists %d subtasks, want %d", len(got.SubtaskIDs), n)
	}
	params := map[string]any{"subtasks": n}
	b.emit(record{Scenario: "fanout", System: "statemgmt", Metric: "WAL/append @100", Value: median(early), Unit: "bytes", Params: params})
	b.emit(record{Scenario: "fanout", System: "statemgmt", Metric: fmt.Sprintf("WAL/append @%d", n), Value: median(late), Unit: "bytes", Params: params})
	b.emit(record{Scenario: "fanout", System: "statemgmt", Metric: "WAL late/early", Value: median(late) / median(early), Unit: "x (≤ 2 wanted)", Params: params})
	b.emit(record{Scenario: "fanout", System: "statemgmt", Metric: "tasks table size", Value: float64(size) / (1 << 20), Unit: "MiB", Params: params})
	b.emit(record{Scenario: "fanout", System: "statemgmt", Metric: "CreateSubtask", Value: float64(elapsed.Microseconds()) / float64(n), Unit: "µs/call", Params: params})
	return nil
}

// batch: CreateTasks with batches of 500 … 10 000 tasks; the time per task
// at each size (median of several batches). Linear batches: the same
// per-task cost at every size.
func batchScenario(ctx context.Context, cfg *config, b *bench) error {
	sizes, perSize := []int{500, 1000, 2000, 5000, 10000}, 40000
	if cfg.small {
		sizes, perSize = []int{500, 2000}, 4000
	}
	url, cleanup, err := database(ctx, cfg)
	if err != nil {
		return err
	}
	defer cleanup()
	pool, err := newPool(ctx, url, 4)
	if err != nil {
		return err
	}
	defer pool.Close()
	s := statestore.New(pool, statestore.Options{Logger: quiet, DisableListen: true})
	defer s.Close()
	perItem := map[int]float64{}
	for round := 0; round < 2; round++ { // round 0 warms up
		for _, size := range sizes {
			var us []float64
			for done := 0; done < perSize; done += size {
				batch := make([]statestore.NewTask, size)
				for i := range batch {
					batch[i] = statestore.NewTask{Action: "noop", DesignRef: "deckhand+https://deckhand/site", CreatedBy: "bench",
						RequestContext: []byte(`{"node": "n01"}`)}
				}
				start := time.Now()
				if _, err := s.CreateTasks(ctx, batch...); err != nil {
					return err
				}
				us = append(us, float64(time.Since(start).Microseconds())/float64(size))
			}
			perItem[size] = median(us)
		}
		if _, err := pool.Exec(ctx, "TRUNCATE tasks CASCADE"); err != nil {
			return err
		}
	}
	for _, size := range sizes {
		b.emit(record{Scenario: "batch", System: "statemgmt", Metric: fmt.Sprintf("CreateTasks @%d", size), Value: perItem[size],
			Unit: "µs/task", Params: map[string]any{"batch": size}})
	}
	last := sizes[len(sizes)-1]
	b.emit(record{Scenario: "batch", System: "statemgmt", Metric: fmt.Sprintf("per task @%d / @%d", last, sizes[0]),
		Value: perItem[last] / perItem[sizes[0]], Unit: "x (≤ 1.5 wanted)"})
	return nil
}
