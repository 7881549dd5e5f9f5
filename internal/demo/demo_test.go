package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

func TestMain(m *testing.M) { os.Exit(statetest.Main(m)) }

func TestDemoOnAGivenDatabase(t *testing.T) {
	var out bytes.Buffer
	db := statetest.New(t)
	if err := Run(context.Background(), Config{DatabaseURL: db.URL, Nodes: 6, Out: &out}); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{"elected leader, term 1", "created deploy_nodes", "KILLED the leader",
		"failover:", "not the current leader", "invariants hold"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}

// The leader is killed at a point in the work, not in time: with any number
// of nodes, however fast the workers, it dies with half the nodes (rounded
// up) complete, a new leader finishes, and the deposed term is fenced.
func TestDemoPassesForAnyNodeCount(t *testing.T) {
	for _, nodes := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("nodes=%d", nodes), func(t *testing.T) {
			var out bytes.Buffer
			db := statetest.New(t)
			if err := Run(context.Background(), Config{DatabaseURL: db.URL, Nodes: nodes, Out: &out}); err != nil {
				t.Fatalf("demo failed: %v\n%s", err, out.String())
			}
			for _, want := range []string{
				fmt.Sprintf("created deploy_nodes %s with %d deploy_node subtasks", deployTaskID, nodes),
				// The term killed is usually 1; a loaded machine may have
				// changed leaders before (the demo is robust to that too).
				fmt.Sprintf(") with %d of %d nodes complete", (nodes+1)/2, nodes),
				"failover:", "fenced write with the old term", "not the current leader",
				fmt.Sprintf("tasks: %d (%d complete)", nodes+1, nodes+1),
				"invariants hold",
			} {
				if !strings.Contains(out.String(), want) {
					t.Fatalf("demo output lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

// fingerprint is every row of every table of the database, hashed per
// table, with the schema version: equal fingerprints mean nothing was
// written.
func fingerprint(t *testing.T, url string) map[string]string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	fp := map[string]string{}
	for _, table := range tables {
		var sum string
		if err := conn.QueryRow(ctx, "SELECT count(*)::text || ' rows ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM "+
			pgx.Identifier{table}.Sanitize()+" t").Scan(&sum); err != nil {
			t.Fatal(err)
		}
		fp[table] = sum
	}
	return fp
}

// A database in use (a real queued task, a node's boot action key) is
// refused with a clear error, and nothing in it is written.
func TestDemoRefusesADatabaseInUse(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		setup func(t *testing.T, s *statestore.Store) (check func(t *testing.T))
		want  string
	}{
		{name: "a queued task", want: "1 task(s)", setup: func(t *testing.T, s *statestore.Store) func(t *testing.T) {
			tasks, err := s.CreateTasks(ctx, statestore.NewTask{Action: "deploy_node", DesignRef: "http://designs/site.yaml",
				CreatedBy: "ops", RequestContext: []byte(`{"node": "node01"}`)})
			if err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) {
				got, err := s.GetTask(ctx, tasks[0].ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != tasks[0].Status || got.Version != tasks[0].Version {
					t.Errorf("the real task changed: status %s version %d, was %s %d", got.Status, got.Version, tasks[0].Status, tasks[0].Version)
				}
			}
		}},
		{name: "a boot action key", want: "1 boot action context(s)", setup: func(t *testing.T, s *statestore.Store) func(t *testing.T) {
			_, key, err := s.CreateBootActionContext(ctx, "node01", uuid.New())
			if err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) {
				if _, err := s.VerifyBootActionKey(ctx, "node01", key.Reveal()); err != nil {
					t.Errorf("node01's real key no longer verifies: %v", err)
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := statetest.New(t)
			pool, err := pgxpool.New(ctx, db.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			s := statestore.New(pool, statestore.Options{})
			defer s.Close()
			check := tc.setup(t, s)
			before := fingerprint(t, db.URL)

			var out bytes.Buffer
			err = Run(ctx, Config{DatabaseURL: db.URL, Nodes: 2, Out: &out})
			if !errors.Is(err, ErrDatabaseInUse) {
				t.Fatalf("Run on a database in use: %v, want ErrDatabaseInUse\n%s", err, out.String())
			}
			for _, want := range []string{tc.want, "omit --database-url", "nothing was written"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if diff := cmp.Diff(before, fingerprint(t, db.URL)); diff != "" {
				t.Errorf("the refused database was written to (-before +after):\n%s", diff)
			}
			check(t)
		})
	}
}

// Ctrl-C mid-run (the context cancelled) is reported as an interruption,
// not as a run that "did not finish in time".
func TestDemoInterruptedSaysSo(t *testing.T) {
	db := statetest.New(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &cancelOn{text: "created deploy_nodes", cancel: cancel}
	err := Run(ctx, Config{DatabaseURL: db.URL, Nodes: 12, Out: out})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted") || strings.Contains(err.Error(), "in time") {
		t.Fatalf("demo cancelled mid-run: %v, want an error saying it was interrupted\n%s", err, out.String())
	}
}

// cancelOn is the demo's output; it calls cancel once text is written.
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	text   string
	cancel context.CancelFunc
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.buf.Write(p)
	if strings.Contains(c.buf.String(), c.text) {
		c.cancel()
	}
	return n, err
}

func (c *cancelOn) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}
