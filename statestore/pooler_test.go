package statestore_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/internal/pgbouncertest"
	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// startBouncer runs PgBouncer for one test; CI must have it installed.
func startBouncer(t *testing.T, db *statetest.Database) *pgbouncertest.Bouncer {
	t.Helper()
	b, err := pgbouncertest.Start(context.Background(), db.URL)
	if errors.Is(err, pgbouncertest.ErrNotInstalled) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// The elector can tell a transaction pooler from a direct connection (and
// from a plain TCP proxy, which the partition test uses) and refuses it.
func TestElectorRefusesPooler(t *testing.T) {
	db := statetest.New(t)
	b := startBouncer(t, db)
	el, err := statestore.NewElector(statestore.ElectorConfig{ConnString: b.URL(db.Name), Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = el.Run(ctx, func(context.Context, int64) error {
		t.Error("became leader through a pooler")
		return nil
	})
	if !errors.Is(err, statestore.ErrPooledConnection) {
		t.Fatalf("Run through PgBouncer = %v, want ErrPooledConnection", err)
	}
	if _, _, err := el.Claim(ctx); !errors.Is(err, statestore.ErrPooledConnection) {
		t.Fatalf("Claim through PgBouncer = %v", err)
	}
	// A direct connection to the same database is accepted.
	direct, err := statestore.NewElector(statestore.ElectorConfig{ConnString: db.URL, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	if _, ok, err := direct.Claim(ctx); err != nil || !ok {
		t.Fatalf("direct Claim = %v, %v", ok, err)
	}
}

// Through PgBouncer in transaction mode with ConfigureForPooler, the store's
// ordinary work succeeds (the whole suite also runs this way under
// STATEMGMT_TEST_PGBOUNCER=1).
func TestStoreThroughPgBouncer(t *testing.T) {
	ctx := context.Background()
	db := statetest.New(t)
	b := startBouncer(t, db)
	cfg, err := pgxpool.ParseConfig(b.URL(db.Name))
	if err != nil {
		t.Fatal(err)
	}
	statestore.ConfigureForPooler(cfg)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// Really pooled: the pid the client was given is PgBouncer's, not the server's.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var serverPID uint32
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&serverPID); err != nil {
		t.Fatal(err)
	}
	if serverPID == conn.Conn().PgConn().PID() {
		t.Fatal("the pool is not going through PgBouncer")
	}
	conn.Release()

	s := statestore.New(pool, statestore.Options{DisableListen: true, PollInterval: 20 * time.Millisecond})
	defer s.Close()
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ClaimTasksWait(ctx, "w", 1)
	if err != nil || len(got) != 1 || got[0].ID != task.ID {
		t.Fatalf("claim through PgBouncer = %v, %v", got, err)
	}
	if _, err := s.AppendMessages(ctx, task.ID, statestore.NewMessage{Message: "a"}, statestore.NewMessage{Message: "b"}); err != nil {
		t.Fatal(err)
	}
	err = s.InTx(ctx, func(ctx context.Context, tx *statestore.Store) error {
		_, err := tx.CompleteTasks(ctx, statestore.ResultSuccess, got[0].Claim())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.BulkInsertBuildData(ctx, []statestore.NewBuildData{{NodeName: "n1", TaskID: task.ID, Generator: "g", DataFormat: "text/plain", DataElement: "x"}}); err != nil || n != 1 {
		t.Fatalf("COPY through PgBouncer = %d, %v", n, err)
	}
	final, err := s.GetTask(ctx, task.ID)
	if err != nil || final.Status != statestore.StatusComplete || len(final.Messages) != 2 {
		t.Fatalf("final task = %+v, %v", final, err)
	}
}
