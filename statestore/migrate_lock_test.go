package statestore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// TestMigrateWaitingForAnotherMigratorHonoursCancel: while another session
// holds tern's migration lock, Migrate polls for it and gives up when its
// context ends, with the context's error, having applied nothing; once the
// lock is free it migrates.
func TestMigrateWaitingForAnotherMigratorHonoursCancel(t *testing.T) {
	db := statetest.NewEmpty(t)
	holder := connect(t, db.URL)
	ctx := context.Background()
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_lock(9628173550095224)"); err != nil { // tern's lock number
		t.Fatal(err)
	}
	conn := connect(t, db.URL)
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	res, err := statestore.Migrate(wctx, conn, quietLogger)
	if !errors.Is(err, context.DeadlineExceeded) || len(res.Applied) != 0 {
		t.Fatalf("Migrate while another migrator holds the lock = %+v, %v; want nothing applied and context.DeadlineExceeded", res, err)
	}
	if v, err := statestore.SchemaVersion(ctx, conn); err != nil || v != 0 {
		t.Fatalf("schema version after the cancelled wait = %d, %v; want 0", v, err)
	}
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_unlock(9628173550095224)"); err != nil {
		t.Fatal(err)
	}
	res, err = statestore.Migrate(ctx, conn, quietLogger)
	if err != nil || res.To != statestore.LatestSchemaVersion() {
		t.Fatalf("Migrate once the lock is free = %+v, %v", res, err)
	}
}
