package statetest

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

func TestParseSpares(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"", defaultSpares, false},
		{"0", 0, false},
		{" 3 ", 3, false},
		{"16", 16, false},
		{"17", 0, true},
		{"-1", 0, true},
		{"two", 0, true},
	}
	for _, tc := range tests {
		got, err := parseSpares(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseSpares(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !containsAll(err.Error(), EnvSpares, strconv.Quote(tc.in)) {
			t.Errorf("parseSpares(%q): error %q does not name the variable and the value", tc.in, err)
		}
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// countAndWriteTask returns how many rows database url's tasks table
// holds, and writes one more, as a test would.
func countAndWriteTask(t *testing.T, url string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM tasks").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO tasks (action) VALUES ('noop')"); err != nil {
		t.Fatal(err)
	}
	return n
}

// Two servers on one PostgreSQL stand for two test binaries: each takes
// databases from its own spares, writes to each and drops it in the
// background, concurrently. Every database handed out is empty (it never
// holds a row another test wrote), no name is handed out twice, in one
// process or across both, and Close leaves none of the spares behind.
func TestSparesAreFreshPrivateAndCleanedUp(t *testing.T) {
	ctx := context.Background()
	def, err := DefaultServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const perServer = 6
	var (
		mu    sync.Mutex
		given []string
		wg    sync.WaitGroup
	)
	servers := []*Server{{Source: def.Source, AdminURL: def.AdminURL}, {Source: def.Source, AdminURL: def.AdminURL}}
	for _, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perServer {
				db, err := srv.TakeDatabase(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if n := countAndWriteTask(t, db.URL); n != 0 {
					t.Errorf("database %s handed out with %d rows in tasks", db.Name, n)
				}
				mu.Lock()
				given = append(given, db.Name)
				mu.Unlock()
				srv.DropDatabaseLater(db.Name)
			}
		}()
	}
	wg.Wait()
	var cloned []string
	for _, srv := range servers {
		if err := srv.Close(ctx); err != nil {
			t.Fatal(err)
		}
		cloned = append(cloned, srv.spares.cloned...)
	}
	if t.Failed() {
		return
	}
	if len(given) != 2*perServer {
		t.Fatalf("handed out %d databases, want %d", len(given), 2*perServer)
	}
	unique := slices.Compact(slices.Sorted(slices.Values(given)))
	if diff := cmp.Diff(len(given), len(unique)); diff != "" {
		t.Fatalf("a database was handed out twice: %v", given)
	}
	for _, name := range given {
		if !slices.Contains(cloned, name) {
			t.Errorf("database %s was not cloned ahead of time", name)
		}
	}
	for _, name := range cloned {
		if databaseExists(t, name) {
			t.Errorf("database %s (a spare, or one dropped later) outlived Close", name)
		}
	}
}

// A process that dies with spares cloned leaves them on the server; a later
// run never hands them out (they are swept after StaleAfter like any
// leftover).
func TestSparesOfADeadProcessAreNeverHandedOut(t *testing.T) {
	ctx := context.Background()
	def, err := DefaultServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dead := &Server{Source: def.Source, AdminURL: def.AdminURL}
	db, err := dead.TakeDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	countAndWriteTask(t, db.URL)
	// The "dead" process's spares: wait for its clones to finish without
	// closing it (closing would drop them, which a crash does not).
	dead.spares.clones.Wait()
	dead.spares.mu.Lock()
	left := slices.Clone(dead.spares.cloned)
	dead.spares.mu.Unlock()
	defer func() {
		if err := dead.DropDatabase(ctx, db.Name); err != nil {
			t.Error(err)
		}
		if err := dead.Close(ctx); err != nil {
			t.Error(err)
		}
	}()

	next := &Server{Source: def.Source, AdminURL: def.AdminURL}
	defer next.Close(ctx) //nolint:errcheck // checked in the other tests
	for range 3 {
		got, err := next.TakeDatabase(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(left, got.Name) {
			t.Fatalf("the next run was handed %s, a spare of the dead one", got.Name)
		}
		if n := countAndWriteTask(t, got.URL); n != 0 {
			t.Fatalf("database %s handed out with %d rows", got.Name, n)
		}
		next.DropDatabaseLater(got.Name)
	}
}
