package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/drydock-go/statemgmt/statestore"
)

func read(ctx context.Context, cfg *config, b *bench) error {
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
	nts := make([]statestore.NewTask, cfg.readTasks)
	for i := range nts {
		nts[i] = statestore.NewTask{Action: "noop"}
	}
	tasks, err := s.CreateTasks(ctx, nts...)
	if err != nil {
		return err
	}
	ten := make([]statestore.NewMessage, 10)
	for i := range ten {
		ten[i] = statestore.NewMessage{Message: fmt.Sprintf("message %d", i)}
	}
	for _, t := range tasks {
		if _, err := s.AppendMessages(ctx, t.ID, ten...); err != nil {
			return err
		}
	}
	timeIt := func(f func() error) (time.Duration, error) {
		var ds []time.Duration
		for i := 0; i < 5; i++ {
			start := time.Now()
			if err := f(); err != nil {
				return 0, err
			}
			ds = append(ds, time.Since(start))
		}
		return percentile(ds, .5), nil
	}
	measure := func(s *statestore.Store) (ours, baseline time.Duration, err error) {
		ours, err = timeIt(func() error {
			page, err := s.ListTasks(ctx, statestore.TaskFilter{Limit: cfg.readTasks, WithMessages: true})
			if err == nil && (len(page.Tasks) != cfg.readTasks || len(page.Tasks[0].Messages) != 10) {
				err = errors.New("wrong page")
			}
			return err
		})
		if err != nil {
			return 0, 0, err
		}
		baseline, err = timeIt(func() error {
			page, err := s.ListTasks(ctx, statestore.TaskFilter{Limit: cfg.readTasks})
			if err != nil {
				return err
			}
			for _, t := range page.Tasks {
				if _, err := s.Messages(ctx, t.ID, 0, 100); err != nil {
					return err
				}
			}
			return nil
		})
		return ours, baseline, err
	}
	ours, baseline, err := measure(s)
	if err != nil {
		return err
	}
	params := map[string]any{"tasks": cfg.readTasks, "messages_per_task": 10, "runs": 5, "statistic": "median", "network": "local socket"}
	b.emit(record{Scenario: "read", System: "statemgmt", Metric: "list with messages (2 queries)", Value: ms(ours), Unit: "ms", Params: params})
	b.emit(record{Scenario: "read", System: "baseline", Metric: "one query per task", Value: ms(baseline), Unit: "ms", Params: params})
	b.ratio("read", "time", ms(ours), ms(baseline), "lower is better; target ≤ 0.1")

	// The same through a TCP proxy adding 0.25 ms each way (0.5 ms round
	// trip, a modest data-centre network): the original's N+1 pays it per task.
	proxy, via, err := proxyTo(url)
	if err != nil {
		return err
	}
	defer proxy.Close()
	proxy.SetLatency(250 * time.Microsecond)
	npool, err := newPool(ctx, via, 4)
	if err != nil {
		return err
	}
	defer npool.Close()
	ns := statestore.New(npool, statestore.Options{Logger: quiet, DisableListen: true})
	defer ns.Close()
	ours, baseline, err = measure(ns)
	if err != nil {
		return err
	}
	params = map[string]any{"tasks": cfg.readTasks, "messages_per_task": 10, "runs": 5, "statistic": "median", "network": "0.5 ms round trip"}
	b.emit(record{Scenario: "read", System: "statemgmt", Metric: "list with messages, 0.5ms RTT", Value: ms(ours), Unit: "ms", Params: params})
	b.emit(record{Scenario: "read", System: "baseline", Metric: "query per task, 0.5ms RTT", Value: ms(baseline), Unit: "ms", Params: params})
	b.ratio("read", "time at 0.5 ms RTT", ms(ours), ms(baseline), "lower is better; target ≤ 0.1")
	return nil
}

// ---- failover ----
