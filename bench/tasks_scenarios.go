package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/statestore"
)

// walOf runs fn in a transaction of its own and returns the WAL bytes
// that transaction wrote, records and full-page images, read back with
// pg_walinspect by transaction id: other sessions' writes do not count.
func walOf(ctx context.Context, pool *pgxpool.Pool, s *statestore.Store, fn func(s *statestore.Store) error) (float64, error) {
	var before, xid string
	if err := pool.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&before); err != nil {
		return 0, err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit: a no-op
	if err := tx.QueryRow(ctx, "SELECT (pg_current_xact_id()::text::numeric % 4294967296)::text").Scan(&xid); err != nil {
		return 0, err
	}
	if err := fn(s.WithTx(tx)); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	var bytes float64
	err = pool.QueryRow(ctx, `SELECT coalesce(sum(record_length), 0)::float8
		FROM pg_get_wal_records_info($1::pg_lsn, pg_current_wal_flush_lsn()) WHERE xid::text = $2`, before, xid).Scan(&bytes)
	return bytes, err
}

// fanout: 10 000 CreateSubtask calls on one parent; the WAL each append's
// transaction writes around the 100th and around the 10 000th (median of
// 50 calls each, so a checkpoint's full-page images do not decide), and
// the table's size at the end. Linear fan-out: the two are about equal.
func fanout(ctx context.Context, cfg *config, b *bench) error {
	n := 10000
	if cfg.small {
		n = 2000
	}
	s, pool, closeAll, err := quietStore(ctx, cfg, statestore.Options{Logger: quiet, DisableListen: true})
	if err != nil {
		return err
	}
	defer closeAll()
	parent, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_nodes", Status: statestore.StatusRequested})
	if err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_walinspect"); err != nil {
		return fmt.Errorf("fanout measures WAL with pg_walinspect (superuser): %w", err)
	}
	var early, late []float64
	start := time.Now()
	for i := 1; i <= n; i++ {
		add := func(s *statestore.Store) error {
			_, err := s.CreateSubtask(ctx, parent.ID, statestore.NewTask{Action: "deploy_node"})
			return err
		}
		switch {
		case i > 75 && i <= 125, i > n-50:
			w, err := walOf(ctx, pool, s, add)
			if err != nil {
				return err
			}
			if i <= 125 {
				early = append(early, w)
			} else {
				late = append(late, w)
			}
		default:
			if err := add(s); err != nil {
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
// at each size. The sizes take turns, round after round, so a load that
// changes over the run (a shared machine) weighs on all of them alike;
// each size reports the median and the best of its rounds. Linear batches:
// the same per-task cost at every size.
func batchScenario(ctx context.Context, cfg *config, b *bench) error {
	sizes, rounds := []int{500, 1000, 2000, 5000, 10000}, 8
	if cfg.small {
		sizes, rounds = []int{500, 2000}, 2
	}
	s, _, closeAll, err := quietStore(ctx, cfg, statestore.Options{Logger: quiet, DisableListen: true})
	if err != nil {
		return err
	}
	defer closeAll()
	perItem := map[int][]float64{}
	for round := 0; round <= rounds; round++ { // round 0 warms up
		for _, size := range sizes {
			batch := make([]statestore.NewTask, size)
			for i := range batch {
				batch[i] = statestore.NewTask{Action: "noop", DesignRef: "deckhand+https://deckhand/site", CreatedBy: "bench",
					RequestContext: []byte(`{"node": "n01"}`)}
			}
			start := time.Now()
			if _, err := s.CreateTasks(ctx, batch...); err != nil {
				return err
			}
			if round > 0 {
				perItem[size] = append(perItem[size], float64(time.Since(start).Microseconds())/float64(size))
			}
		}
	}
	best := func(xs []float64) float64 {
		m := xs[0]
		for _, x := range xs {
			m = min(m, x)
		}
		return m
	}
	for _, size := range sizes {
		p := map[string]any{"batch": size, "rounds": rounds}
		b.emit(record{Scenario: "batch", System: "statemgmt", Metric: fmt.Sprintf("CreateTasks @%d median", size),
			Value: median(perItem[size]), Unit: "µs/task", Params: p})
		b.emit(record{Scenario: "batch", System: "statemgmt", Metric: fmt.Sprintf("CreateTasks @%d best", size),
			Value: best(perItem[size]), Unit: "µs/task", Params: p})
	}
	first, last := sizes[0], sizes[len(sizes)-1]
	b.emit(record{Scenario: "batch", System: "statemgmt", Metric: fmt.Sprintf("median @%d / @%d", last, first),
		Value: median(perItem[last]) / median(perItem[first]), Unit: "x (≤ 1.5 wanted)"})
	b.emit(record{Scenario: "batch", System: "statemgmt", Metric: fmt.Sprintf("best @%d / @%d", last, first),
		Value: best(perItem[last]) / best(perItem[first]), Unit: "x (≤ 1.5 wanted)"})
	return nil
}
