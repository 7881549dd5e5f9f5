package main

import (
	"context"
	"fmt"
	"time"

	"github.com/drydock-go/statemgmt/statestore"
)

// appendBatch measures AppendMessages' cost per message by batch size (one
// writer, one statement per batch, a fresh task per batch): the per-message
// cost at 10 000 should stay within 1.5× of that at 500.
func appendBatch(ctx context.Context, cfg *config, b *bench) error {
	s, _, closeAll, err := quietStore(ctx, cfg, statestore.Options{Logger: quiet, DisableListen: true, DisableNotify: true})
	if err != nil {
		return err
	}
	defer closeAll()
	sizes := []int{500, 2000, 10000}
	total := 100000
	if cfg.small {
		total = 20000
	}
	perMsg := map[int]float64{}
	for _, size := range sizes {
		msgs := make([]statestore.NewMessage, size)
		for i := range msgs {
			msgs[i] = statestore.NewMessage{Message: fmt.Sprintf("progress %d", i), Context: "node01", ContextType: "node"}
		}
		rounds := max(3, total/size)
		var ds []time.Duration
		for range rounds {
			task, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
			if err != nil {
				return err
			}
			start := time.Now()
			if _, err := s.AppendMessages(ctx, task.ID, msgs...); err != nil {
				return fmt.Errorf("batch of %d: %w", size, err)
			}
			ds = append(ds, time.Since(start))
		}
		us := float64(percentile(ds, .5).Microseconds()) / float64(size)
		perMsg[size] = us
		b.emit(record{Scenario: "appendbatch", System: "statemgmt", Metric: fmt.Sprintf("batch of %d", size),
			Value: us, Unit: "µs/message (median batch)", Params: map[string]any{"batches": rounds}})
	}
	b.ratio("appendbatch", "per-message cost 10000 vs 500", perMsg[10000], perMsg[500], "lower is better; target ≤ 1.5")
	return nil
}
