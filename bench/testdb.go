package main

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// testdb measures one test database two ways, in the same run: a clone of
// the template made and dropped while the caller waits (CreateDatabase,
// DropDatabase), and what statetest.New does for a test (TakeDatabase from
// the spares cloned ahead in the background, DropDatabaseLater), with a
// minimal test body in between (connect, one query, close).
func testdb(ctx context.Context, cfg *config, b *bench) error {
	srv, err := statetest.DefaultServer(ctx)
	if err != nil {
		return err
	}
	var create, drop, take, body []time.Duration
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
	for i := 0; i < cfg.trials; i++ {
		start := time.Now()
		db, err := srv.TakeDatabase(ctx)
		if err != nil {
			return err
		}
		mid := time.Now()
		conn, err := pgx.Connect(ctx, db.URL)
		if err != nil {
			return err
		}
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM tasks").Scan(&n); err != nil {
			return err
		}
		if err := conn.Close(ctx); err != nil {
			return err
		}
		srv.DropDatabaseLater(db.Name)
		take = append(take, mid.Sub(start))
		body = append(body, time.Since(mid))
	}
	params := map[string]any{"trials": cfg.trials, "server": string(srv.Source)}
	b.emit(record{Scenario: "testdb", System: "statemgmt", Metric: "clone template p50", Value: ms(percentile(create, .5)), Unit: "ms", Params: params})
	b.emit(record{Scenario: "testdb", System: "statemgmt", Metric: "drop p50", Value: ms(percentile(drop, .5)), Unit: "ms", Params: params})
	b.emit(record{Scenario: "testdb", System: "statemgmt", Metric: "take (New) p50", Value: ms(percentile(take, .5)), Unit: "ms", Params: params})
	b.emit(record{Scenario: "testdb", System: "statemgmt", Metric: "take (New) p90", Value: ms(percentile(take, .9)), Unit: "ms", Params: params})
	b.emit(record{Scenario: "testdb", System: "statemgmt", Metric: "test body p50", Value: ms(percentile(body, .5)), Unit: "ms", Params: params})
	b.ratio("testdb", "New wait p50 vs clone+drop", ms(percentile(take, .5)), ms(percentile(create, .5))+ms(percentile(drop, .5)), "spares / synchronous")
	return nil
}
