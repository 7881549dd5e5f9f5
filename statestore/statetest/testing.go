package statetest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// setupTimeout bounds finding a server and cloning a database for one test.
// Starting a container or a cluster the first time is the slow part.
const setupTimeout = 3 * time.Minute

// Main runs the tests of a package and then stops any server this package
// started. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(statetest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := Shutdown(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// New gives the test a fresh, fully migrated database of its own, cloned
// ahead of time (see TakeDatabase). It is dropped in the background when the
// test ends (Main waits for that drop; without Main a drop cut short by the
// process's exit leaves the database to the StaleAfter sweep), unless the
// test failed: then it is kept and its
// connection string (password redacted) is logged, for inspection. On a
// server of your own it is kept until a run StaleAfter later drops it; in a
// throwaway cluster the cluster's directory is kept with it (and the end of
// the run says how to start it); in a Docker container it lasts only until
// the run ends, and the log says so.
func New(t testing.TB) *Database {
	t.Helper()
	return newDatabase(t, (*Server).TakeDatabase)
}

// NewEmpty gives the test a fresh database with no schema (for migration
// tests), dropped like New's.
func NewEmpty(t testing.TB) *Database {
	t.Helper()
	return newDatabase(t, (*Server).CreateEmptyDatabase)
}

func newDatabase(t testing.TB, create func(*Server, context.Context) (*Database, error)) *Database {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	srv, err := DefaultServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db, err := create(srv, ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropUnlessFailed(t, srv, db) })
	return db
}

// NewPool gives the test a pool connected to a fresh database of its own
// (see New). The pool is closed before the database is dropped.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	db := New(t)
	pool, err := pgxpool.New(context.Background(), db.URL)
	if err != nil {
		t.Fatalf("statetest: connect to %s: %v", db.Name, err)
	}
	t.Cleanup(pool.Close) // runs before New's cleanup: cleanups run last-in first-out
	return pool
}

func dropUnlessFailed(t testing.TB, srv *Server, db *Database) {
	if t.Failed() {
		t.Log(srv.keep(db.Name, t.Name(), db.URL))
		return
	}
	// Dropped in the background: Main (through Shutdown and Close) waits
	// for it and fails the run if it fails.
	srv.DropDatabaseLater(db.Name)
}
