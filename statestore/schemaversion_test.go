package statestore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// ReadSchemaVersion only reads: 0 on a database never migrated, without
// creating tern's version table there; then each version as migrations go
// up and down.
func TestReadSchemaVersionOnlyReads(t *testing.T) {
	ctx := context.Background()
	db := statetest.NewEmpty(t)
	s := statestore.New(storePool(t, db), statestore.Options{})
	t.Cleanup(s.Close)
	conn := connect(t, db.URL)
	if v, err := s.ReadSchemaVersion(ctx); err != nil || v != 0 {
		t.Fatalf("ReadSchemaVersion on an empty database = %d, %v; want 0", v, err)
	}
	var table *string
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1)::text", statestore.SchemaVersionTable).Scan(&table); err != nil {
		t.Fatal(err)
	}
	if table != nil {
		t.Fatalf("ReadSchemaVersion created %s", *table)
	}
	latest := statestore.LatestSchemaVersion()
	for _, target := range []int32{latest, latest - 1, 0} {
		if _, err := statestore.MigrateTo(ctx, conn, target, nil); err != nil {
			t.Fatal(err)
		}
		if v, err := s.ReadSchemaVersion(ctx); err != nil || v != target {
			t.Fatalf("after MigrateTo(%d): ReadSchemaVersion = %d, %v", target, v, err)
		}
	}
}

// ValidateAction applies CreateTasks' rule for action names.
func TestValidateAction(t *testing.T) {
	for _, a := range []string{"deploy_nodes", "a", "x1_2"} {
		if err := statestore.ValidateAction(a); err != nil {
			t.Errorf("ValidateAction(%q) = %v", a, err)
		}
	}
	for _, a := range []string{"", "Bad Action", "1st", "deploy-nodes", "a" + string(make([]byte, 64))} {
		err := statestore.ValidateAction(a)
		var ie *statestore.InvalidInputError
		if !errors.Is(err, statestore.ErrInvalidInput) || !errors.As(err, &ie) || ie.Field != "action" {
			t.Errorf("ValidateAction(%q) = %v, want an invalid action", a, err)
		}
	}
}
