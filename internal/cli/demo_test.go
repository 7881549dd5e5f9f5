package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// statectl demo --database-url on a database in use exits 1 with one line
// saying why, and leaves the database as it was.
func TestDemoCommandRefusesADatabaseInUse(t *testing.T) {
	ctx := context.Background()
	db := statetest.New(t)
	pool, err := pgxpool.New(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s := statestore.New(pool, statestore.Options{})
	defer s.Close()
	tasks, err := s.CreateTasks(ctx, statestore.NewTask{Action: "deploy_node", DesignRef: "http://designs/site.yaml", CreatedBy: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := s.CreateBootActionContext(ctx, "node01", uuid.New())
	if err != nil {
		t.Fatal(err)
	}

	var out, errOut bytes.Buffer
	code := Main(ctx, []string{"demo", "--nodes", "2", "--database-url", db.URL}, strings.NewReader(""), &out, &errOut)
	if code != ExitError {
		t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, ExitError, out.String(), errOut.String())
	}
	msg := strings.TrimSpace(errOut.String())
	if strings.Contains(msg, "\n") {
		t.Fatalf("error is not one line: %q", msg)
	}
	for _, want := range []string{"in use", "1 task(s)", "1 boot action context(s)", "omit --database-url", "nothing was written"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	got, err := s.GetTask(ctx, tasks[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != statestore.StatusQueued || got.Version != tasks[0].Version {
		t.Errorf("the real task was touched: %s, version %d (was %d)", got.Status, got.Version, tasks[0].Version)
	}
	if _, err := s.VerifyBootActionKey(ctx, "node01", key.Reveal()); err != nil {
		t.Errorf("node01's real key no longer verifies: %v", err)
	}
}

// statectl demo passes with a single node (the leader is killed after it
// completes, and a new leader finishes the run).
func TestDemoCommandOneNode(t *testing.T) {
	db := statetest.New(t)
	var out, errOut bytes.Buffer
	code := Main(context.Background(), []string{"demo", "--nodes", "1", "--database-url", db.URL}, strings.NewReader(""), &out, &errOut)
	if code != ExitOK {
		t.Fatalf("exit code %d\nstdout: %s\nstderr: %s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"with 1 of 1 nodes complete", "not the current leader", "invariants hold"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
