package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/drydock-go/statemgmt/statestore"
)

type elected struct {
	term int64
	at   time.Time
	el   *statestore.Elector
}

// partitionFailover adds a candidate with default settings behind a fault
// proxy, makes it the leader (resigning the others), partitions its proxy
// and returns how long until the next leader runs.
func partitionFailover(ctx context.Context, url string, events chan elected, wg *sync.WaitGroup, cur *elected,
	next func(int64) (elected, error)) (time.Duration, error) {
	proxy, via, err := proxyTo(url)
	if err != nil {
		return 0, err
	}
	defer proxy.Close()
	el, err := statestore.NewElector(statestore.ElectorConfig{ConnString: via, Logger: quiet})
	if err != nil {
		return 0, err
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = el.Run(pctx, func(ctx context.Context, term int64) error {
			events <- elected{term, time.Now(), el}
			<-ctx.Done()
			return nil
		})
	}()
	time.Sleep(100 * time.Millisecond) // in the lock queue
	for cur.el != el {
		time.Sleep(20 * time.Millisecond)
		cur.el.Resign()
		if *cur, err = next(cur.term); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	proxy.SetPartition(true)
	if *cur, err = next(cur.term); err != nil {
		return 0, err
	}
	return cur.at.Sub(start), nil
}

func failover(ctx context.Context, cfg *config, b *bench) error {
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
	events := make(chan elected, 64)
	ectx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		el, err := statestore.NewElector(statestore.ElectorConfig{ConnString: url, CheckInterval: 100 * time.Millisecond, Logger: quiet})
		if err != nil {
			cancel()
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = el.Run(ectx, func(ctx context.Context, term int64) error {
				events <- elected{term, time.Now(), el}
				<-ctx.Done()
				return nil
			})
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	next := func(after int64) (elected, error) {
		for {
			select {
			case e := <-events:
				if e.term > after {
					return e, nil
				}
			case <-time.After(10 * time.Second):
				return elected{}, errors.New("no new leader within 10 s")
			}
		}
	}
	cur, err := next(0)
	if err != nil {
		return err
	}
	var crash, resign []time.Duration
	for i := 0; i < cfg.trials; i++ {
		time.Sleep(50 * time.Millisecond)
		start := time.Now()
		if _, err := pool.Exec(ctx, "SELECT pg_terminate_backend($1)", int32(cur.el.BackendPID())); err != nil {
			return err
		}
		if cur, err = next(cur.term); err != nil {
			return err
		}
		crash = append(crash, cur.at.Sub(start))
	}
	for i := 0; i < cfg.trials; i++ {
		time.Sleep(50 * time.Millisecond)
		start := time.Now()
		cur.el.Resign()
		if cur, err = next(cur.term); err != nil {
			return err
		}
		resign = append(resign, cur.at.Sub(start))
	}
	// A leader behind a TCP proxy whose network is cut without a FIN (the
	// proxy keeps the server's socket open): with default settings the
	// server ends its silent session after SessionTimeout (2 s).
	var partition []time.Duration
	for i := 0; i < max(1, cfg.trials/4); i++ {
		d, err := partitionFailover(ectx, url, events, &wg, &cur, next)
		if err != nil {
			return err
		}
		partition = append(partition, d)
	}
	b.emit(record{Scenario: "failover", System: "statemgmt", Metric: "partition behind a proxy, FIN lost (max)",
		Value: ms(percentile(partition, 1)), Unit: "ms", Params: map[string]any{"trials": len(partition), "session_timeout": "2s (default)"}})
	params := map[string]any{"candidates": 3, "trials": cfg.trials, "check_interval": "100ms"}
	for _, p := range []struct {
		name string
		q    float64
	}{{"p50", .5}, {"p99", .99}} {
		b.emit(record{Scenario: "failover", System: "statemgmt", Metric: "crash " + p.name, Value: ms(percentile(crash, p.q)), Unit: "ms", Params: params})
		b.emit(record{Scenario: "failover", System: "statemgmt", Metric: "resign " + p.name, Value: ms(percentile(resign, p.q)), Unit: "ms", Params: params})
	}
	// The original waited out a 300 s grace period after a crash.
	b.emit(record{Scenario: "failover", System: "baseline", Metric: "crash (grace period)", Value: 300000, Unit: "ms"})
	b.ratio("failover", "crash p99", ms(percentile(crash, .99)), 300000, "lower is better")
	return nil
}

// ---- testdb ----
