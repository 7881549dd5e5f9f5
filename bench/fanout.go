package main

import (
	"context"
	"fmt"
	"time"

	"github.com/drydock-go/statemgmt/statestore"
)

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
