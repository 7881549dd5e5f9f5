package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/statestore"
)

func appendScenario(ctx context.Context, cfg *config, b *bench) error {
	url, cleanup, err := database(ctx, cfg)
	if err != nil {
		return err
	}
	defer cleanup()
	pool, err := newPool(ctx, url, int32(cfg.workers+2))
	if err != nil {
		return err
	}
	defer pool.Close()
	s := statestore.New(pool, statestore.Options{Logger: quiet, DisableListen: true})
	defer s.Close()
	const batch = 100
	mkTasks := func(n int) ([]uuid.UUID, error) {
		nts := make([]statestore.NewTask, n)
		for i := range nts {
			nts[i] = statestore.NewTask{Action: "noop"}
		}
		ts, err := s.CreateTasks(ctx, nts...)
		ids := make([]uuid.UUID, len(ts))
		for i, t := range ts {
			ids[i] = t.ID
		}
		return ids, err
	}
	msgs := make([]statestore.NewMessage, batch)
	for i := range msgs {
		msgs[i] = statestore.NewMessage{Message: "progress", Context: "node01", ContextType: "node"}
	}
	// run spreads cfg.messages over the writers, batch rows per statement.
	run := func(label string, do func(w, i int) error) (float64, error) {
		per := cfg.messages / cfg.workers / batch
		var written atomic.Int64
		defer progress("append "+label, func() string { return fmt.Sprintf("%d/%d", written.Load(), per*cfg.workers*batch) })()
		var wg sync.WaitGroup
		errs := make(chan error, cfg.workers)
		start := time.Now()
		for w := 0; w < cfg.workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < per; i++ {
					if err := do(w, i); err != nil {
						errs <- err
						return
					}
					written.Add(batch)
				}
			}()
		}
		wg.Wait()
		select {
		case err := <-errs:
			return 0, fmt.Errorf("%s: %w", label, err)
		default:
		}
		return float64(per*cfg.workers*batch) / time.Since(start).Seconds(), nil
	}
	hot, err := mkTasks(1)
	if err != nil {
		return err
	}
	spread, err := mkTasks(1000)
	if err != nil {
		return err
	}
	params := map[string]any{"messages": cfg.messages, "writers": cfg.workers, "per_statement": batch}
	oursHot, err := run("hot", func(int, int) error { _, err := s.AppendMessages(ctx, hot[0], msgs...); return err })
	if err != nil {
		return err
	}
	oursSpread, err := run("spread", func(w, i int) error {
		_, err := s.AppendMessages(ctx, spread[(w*7919+i)%len(spread)], msgs...)
		return err
	})
	if err != nil {
		return err
	}
	// Baseline: the same rows, sequence numbers made up by the client, a
	// plain INSERT of 100 rows per statement with no per-task counter.
	plainTasks, err := mkTasks(1000)
	if err != nil {
		return err
	}
	var seq atomic.Int64
	texts := make([]string, batch)
	for i := range texts {
		texts[i] = "progress"
	}
	baseline, err := run("baseline", func(w, i int) error {
		task := plainTasks[(w*7919+i)%len(plainTasks)]
		first := seq.Add(batch) - batch + 1
		seqs := make([]int64, batch)
		for j := range seqs {
			seqs[j] = first + int64(j)
		}
		_, err := pool.Exec(ctx, `INSERT INTO result_message (task_id, sequence, message, context, context_type)
			SELECT $1, s, m, 'node01', 'node' FROM unnest($2::bigint[], $3::text[]) AS u(s, m)`, task, seqs, texts)
		return err
	})
	if err != nil {
		return err
	}
	b.emit(record{Scenario: "append", System: "statemgmt", Metric: "one hot task", Value: oursHot, Unit: "messages/s", Params: params})
	b.emit(record{Scenario: "append", System: "statemgmt", Metric: "1000 tasks", Value: oursSpread, Unit: "messages/s", Params: params})
	b.emit(record{Scenario: "append", System: "baseline", Metric: "plain INSERT", Value: baseline, Unit: "messages/s", Params: params})
	b.ratio("append", "1000 tasks vs plain INSERT", oursSpread, baseline, "higher is better; target ≥ 0.8")
	b.ratio("append", "one hot task vs plain INSERT", oursHot, baseline, "higher is better")
	return nil
}

// ---- read ----
