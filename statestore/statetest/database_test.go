package statetest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	ctx := context.Background()
	srv, err := DefaultServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := srv.adminPool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	return exists
}

func TestDatabasesAreIsolatedAndMigrated(t *testing.T) {
	ctx := context.Background()
	a, b := NewPool(t), NewPool(t)

	for _, p := range []*pgxpool.Pool{a, b} {
		var n int
		if err := p.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = 'tasks'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("tasks table missing in a fresh test database")
		}
	}
	if _, err := a.Exec(ctx, "INSERT INTO tasks (action) VALUES ('noop')"); err != nil {
		t.Fatal(err)
	}
	var inA, inB int
	if err := a.QueryRow(ctx, "SELECT count(*) FROM tasks").Scan(&inA); err != nil {
		t.Fatal(err)
	}
	if err := b.QueryRow(ctx, "SELECT count(*) FROM tasks").Scan(&inB); err != nil {
		t.Fatal(err)
	}
	if inA != 1 || inB != 0 {
		t.Fatalf("rows: database A has %d (want 1), database B has %d (want 0)", inA, inB)
	}
	var nameA, nameB string
	a.QueryRow(ctx, "SELECT current_database()").Scan(&nameA) //nolint:errcheck // compared below
	b.QueryRow(ctx, "SELECT current_database()").Scan(&nameB) //nolint:errcheck
	if nameA == nameB || nameA == "" {
		t.Fatalf("two tests share database %q / %q", nameA, nameB)
	}
}

func TestDatabaseDroppedAfterPassingTest(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		name = New(t).Name
		if !databaseExists(t, name) {
			t.Fatalf("database %s does not exist during the test", name)
		}
	})
	srv, err := DefaultServer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.waitDrops(); err != nil { // the drop runs in the background
		t.Fatal(err)
	}
	if databaseExists(t, name) {
		t.Fatalf("database %s still exists after its test passed", name)
	}
}

func TestDatabaseKeptAfterFailingTest(t *testing.T) {
	// A failing subtest would fail this test too, so drive the cleanup
	// directly with a recorder standing in for the failed test.
	ctx := context.Background()
	srv, err := DefaultServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db, err := srv.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.DropDatabase(ctx, db.Name) //nolint:errcheck // checked by the assertion below on the happy path
	rec := &failedTB{TB: t}
	dropUnlessFailed(rec, srv, db)
	if !databaseExists(t, db.Name) {
		t.Fatalf("database of a failed test was dropped")
	}
	if len(rec.logs) != 1 {
		t.Fatalf("want one log line naming the kept database, got %q", rec.logs)
	}
}

// failedTB reports itself failed and records what is logged.
type failedTB struct {
	testing.TB
	logs []string
}

func (f *failedTB) Failed() bool { return true }
func (f *failedTB) Logf(format string, args ...any) {
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}
func (f *failedTB) Log(args ...any) { f.logs = append(f.logs, fmt.Sprint(args...)) }

// What a failed test's log says about its database must be true of each
// source: kept on a server of one's own, kept with a throwaway cluster's
// directory, not kept past the run in a Docker container.
func TestKeptDatabaseLogSaysWhatHappens(t *testing.T) {
	tests := []struct {
		source  Source
		want    []string
		wantNot string
	}{
		{SourceURL, []string{"kept database statemgmt_test_x", "TestX", "drops it"}, "NOT"},
		{SourceLibpq, []string{"kept database statemgmt_test_x", "TestX"}, "NOT"},
		{SourceCluster, []string{"kept database statemgmt_test_x", "/tmp/statemgmt-pg-1", "directory", "is kept"}, "NOT"},
		{SourceDocker, []string{"statemgmt_test_x", "is NOT kept", "removed", EnvDatabaseURL}, "xxsecret"},
	}
	for _, tc := range tests {
		t.Run(string(tc.source), func(t *testing.T) {
			srv := &Server{Source: tc.source, clusterDir: "/tmp/statemgmt-pg-1"}
			got := srv.keep("statemgmt_test_x", "TestX", "postgres://u:xxsecret@h/statemgmt_test_x")
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("note %q lacks %q", got, w)
				}
			}
			if strings.Contains(got, tc.wantNot) || strings.Contains(got, "xxsecret") {
				t.Errorf("note %q holds %q or the password", got, tc.wantNot)
			}
			if diff := cmp.Diff([]string{"statemgmt_test_x"}, srv.kept); diff != "" {
				t.Errorf("kept (-want +got):\n%s", diff)
			}
		})
	}
}

func TestThrowawayCluster(t *testing.T) {
	dir, err := findBinaries()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must exercise the throwaway cluster: %v", err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	srv, err := startCluster(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster from %s ready in %v", dir, time.Since(start).Round(time.Millisecond))
	clusterDir := srv.AdminURL
	db, err := srv.CreateDatabase(ctx)
	if err != nil {
		srv.Close(ctx) //nolint:errcheck // already failing
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM tasks").Scan(&n); err != nil {
		t.Fatalf("query migrated cluster database: %v", err)
	}
	conn.Close(ctx)
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := checkAdmin(ctx, clusterDir); err == nil {
		t.Fatal("cluster still answers after Close")
	}
}

// BenchmarkCreateDatabase measures what one test database costs. "clone":
// clone the template and drop it, waiting for both (CreateDatabase and
// DropDatabase). "take": what New does for a test (TakeDatabase from the
// spares, then DropDatabaseLater), with a minimal test body in between
// (connect, one query); wait-p50-ms and wait-p99-ms are how long
// TakeDatabase kept the test waiting.
func BenchmarkCreateDatabase(b *testing.B) {
	ctx := context.Background()
	srv, err := DefaultServer(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := srv.ensureTemplate(ctx); err != nil {
		b.Fatal(err)
	}
	b.Run("clone", func(b *testing.B) {
		for b.Loop() {
			db, err := srv.CreateDatabase(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if err := srv.DropDatabase(ctx, db.Name); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("take", func(b *testing.B) {
		var waits []time.Duration
		for b.Loop() {
			start := time.Now()
			db, err := srv.TakeDatabase(ctx)
			if err != nil {
				b.Fatal(err)
			}
			waits = append(waits, time.Since(start))
			conn, err := pgx.Connect(ctx, db.URL)
			if err != nil {
				b.Fatal(err)
			}
			var n int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM tasks").Scan(&n); err != nil {
				b.Fatal(err)
			}
			if err := conn.Close(ctx); err != nil {
				b.Fatal(err)
			}
			srv.DropDatabaseLater(db.Name)
		}
		slices.Sort(waits)
		b.ReportMetric(float64(waits[len(waits)/2])/1e6, "wait-p50-ms")
		b.ReportMetric(float64(waits[(len(waits)-1)*99/100])/1e6, "wait-p99-ms")
		if err := srv.waitDrops(); err != nil {
			b.Fatal(err)
		}
	})
}

// Two copies run at once, as two test binaries against one server would run
// it: every database a test creates has a name unique to its run.
func TestSweepDropsOnlyStaleDatabases(t *testing.T) {
	ctx := context.Background()
	srv, err := DefaultServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stamp := strconv.FormatInt(time.Now().Add(-StaleAfter-time.Hour).Unix(), 36) // the same second for both
	var created sync.WaitGroup
	created.Add(2)
	for i := range 2 {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			signal := sync.OnceFunc(created.Done)
			defer signal()
			old := staleTestDBName(t, stamp)
			if err := srv.adminExec(ctx, "CREATE DATABASE "+pgx.Identifier{old}.Sanitize()); err != nil {
				t.Fatal(err)
			}
			defer srv.DropDatabase(ctx, old) //nolint:errcheck // already gone when the test passes
			signal()
			created.Wait() // both stale databases exist before either sweeps
			fresh := New(t)
			if err := srv.sweepStale(ctx); err != nil {
				t.Fatal(err)
			}
			if databaseExists(t, old) {
				t.Fatal("stale database survived the sweep")
			}
			if !databaseExists(t, fresh.Name) {
				t.Fatal("the sweep dropped a current database")
			}
		})
	}
}

// staleTestDBName is a test database name stamped with the base-36 time
// stamp, with a random suffix so that no two runs share it.
func staleTestDBName(t *testing.T, stamp string) string {
	return testDBPrefix + stamp + "_" + randomHex(t, 8)
}
