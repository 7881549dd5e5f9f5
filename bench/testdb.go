package main

import (
	"context"
	"time"

	"github.com/drydock-go/statemgmt/statestore/statetest"
)

func testdb(ctx context.Context, cfg *config, b *bench) error {
	srv, err := statetest.DefaultServer(ctx)
	if err != nil {
		return err
	}
	var create, drop []time.Duration
	for i := 0; i < cfg.trials; i++ {
		start := time.Now()
		db, err := srv.CreateDatabase(ctx)
		if err != nil {
			return err
		}
		mid := time.Now()
		if err := srv.DropDatabase(ctx, db.Name); err != nil {
			return err
		}
		create = append(create, mid.Sub(start))
		drop = append(drop, time.Since(mid))
	}
	params := map[string]any{"trials": cfg.trials, "server": string(srv.Source)}
	b.emit(record{Scenario: "testdb", System: "statemgmt", Metric: "clone template p50", Value: ms(percentile(create, .5)), Unit: "ms", Params: params})
	b.emit(record{Scenario: "testdb", System: "statemgmt", Metric: "drop p50", Value: ms(percentile(drop, .5)), Unit: "ms", Params: params})
	return nil
}
