package statetest_test

// The second Go snippet of docs/testing.md is the region marked
// "snippet:start statetest-server" below, copied by go generate
// (internal/doccheck keeps them equal).

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// ExampleServer_CreateDatabase gets a fresh migrated database without a
// testing.T (in an Example, a benchmark harness or a program of its own)
// and drops it afterwards.
func ExampleServer_CreateDatabase() {
	run := func() error {
		// snippet:start statetest-server
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		srv, err := statetest.DefaultServer(ctx) // found as for tests; statetest.Shutdown stops one it started
		if err != nil {
			return err
		}
		db, err := srv.CreateDatabase(ctx) // a clone of the migrated template: milliseconds
		if err != nil {
			return err
		}
		defer func() {
			if err := srv.DropDatabase(context.WithoutCancel(ctx), db.Name); err != nil {
				slog.Error("drop test database", "err", err)
			}
		}()
		pool, err := pgxpool.New(ctx, db.URL)
		if err != nil {
			return err
		}
		defer pool.Close()
		store := statestore.New(pool, statestore.Options{})
		defer store.Close()
		task, err := store.CreateTask(ctx, statestore.NewTask{Action: "deploy_nodes"})
		if err != nil {
			return err
		}
		fmt.Println(task.Action, task.Status)
		// snippet:end statetest-server
		return nil
	}
	if err := run(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// deploy_nodes queued
}
