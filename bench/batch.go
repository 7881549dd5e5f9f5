package main

import (
	"context"
	"fmt"
	"time"

	"github.com/drydock-go/statemgmt/statestore"
)

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
