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
	// The variants run in rounds (hot, 1000 tasks, baseline, hot, ...), so
	// that a machine whose load changes during the run weighs on all alike;
	// each variant's rate is its messages over its time, all rounds summed.
	const rounds = 3
	// run spreads cfg.messages/rounds over the writers, batch rows per
	// statement, and returns the messages written and the time it took.
	run := func(label string, do func(w, i int) error) (int, time.Duration, error) {
		per := cfg.messages / rounds / cfg.workers / batch
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
			return 0, 0, fmt.Errorf("%s: %w", label, err)
		default:
		}
		return per * cfg.workers * batch, time.Since(start), nil
	}
	hot, err := mkTasks(1)
	if err != nil {
		return err
	}
	spread, err := mkTasks(1000)
	if err != nil {
		return err
	}
	params := map[string]any{"messages": cfg.messages, "writers": cfg.workers, "per_statement": batch, "rounds": rounds}
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
	variants := []struct {
		label string
		do    func(w, i int) error
	}{
		{"hot", func(int, int) error { _, err := s.AppendMessages(ctx, hot[0], msgs...); return err }},
		{"spread", func(w, i int) error {
			_, err := s.AppendMessages(ctx, spread[(w*7919+i)%len(spread)], msgs...)
			return err
		}},
		{"baseline", func(w, i int) error {
			task := plainTasks[(w*7919+i)%len(plainTasks)]
			first := seq.Add(batch) - batch + 1
			seqs := make([]int64, batch)
			for j := range seqs {
				seqs[j] = first + int64(j)
			}
			_, err := pool.Exec(ctx, `INSERT INTO result_message (task_id, sequence, message, context, context_type)
			SELECT $1, s, m, 'node01', 'node' FROM unnest($2::bigint[], $3::text[]) AS u(s, m)`, task, seqs, texts)
			return err
		}},
	}
	written := make([]int, len(variants))
	took := make([]time.Duration, len(variants))
	for range rounds {
		for v, variant := range variants {
			n, d, err := run(variant.label, variant.do)
			if err != nil {
				return err
			}
			written[v] += n
			took[v] += d
		}
	}
	rate := func(v int) float64 { return float64(written[v]) / took[v].Seconds() }
	oursHot, oursSpread, baseline := rate(0), rate(1), rate(2)
	b.emit(record{Scenario: "append", System: "statemgmt", Metric: "one hot task", Value: oursHot, Unit: "messages/s", Params: params})
	b.emit(record{Scenario: "append", System: "statemgmt", Metric: "1000 tasks", Value: oursSpread, Unit: "messages/s", Params: params})
	b.emit(record{Scenario: "append", System: "baseline", Metric: "plain INSERT", Value: baseline, Unit: "messages/s", Params: params})
	b.ratio("append", "1000 tasks vs plain INSERT", oursSpread, baseline, "higher is better; target ≥ 0.8")
	b.ratio("append", "one hot task vs plain INSERT", oursHot, baseline, "higher is better")
	return nil
}

// ---- read ----
