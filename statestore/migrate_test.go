package statestore_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/schema"
	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

var allTables = []string{"active_instance", "boot_action", "boot_action_status", "build_data", "drydock_import", "drydock_import_progress",
	"drydock_import_rejected", "leader_term", "leadership_fence", "result_message", "tasks"}

// keptTables survive every down migration on purpose: leadership_fence keeps
// terms from going back (TestTermsNeverGoBackAcrossMigrations).
var keptTables = []string{"leadership_fence"}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// userTables lists the schema's tables, leaving out tern's version table.
func userTables(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(),
		"SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'schema_version' ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestMigrateUpDownUp(t *testing.T) {
	ctx := context.Background()
	conn := connect(t, statetest.NewEmpty(t).URL)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	latest := statestore.LatestSchemaVersion()

	res, err := statestore.Migrate(ctx, conn, logger)
	if err != nil {
		t.Fatal(err)
	}
	if res.From != 0 || res.To != latest || len(res.Applied) != int(latest) {
		t.Fatalf("first migrate = %+v, want 0 -> %d with %d applied", res, latest, latest)
	}
	if diff := cmp.Diff(allTables, userTables(t, conn)); diff != "" {
		t.Fatalf("tables after up (-want +got):\n%s", diff)
	}
	if !strings.Contains(logs.String(), "schema migrated") || !strings.Contains(logs.String(), "applying migration") {
		t.Errorf("migration was not reported through slog:\n%s", logs.String())
	}

	// Step down one version at a time: every down section must work.
	for v := latest - 1; v >= 0; v-- {
		if _, err := statestore.MigrateTo(ctx, conn, v, logger); err != nil {
			t.Fatalf("migrate down to %d: %v", v, err)
		}
		got, err := statestore.SchemaVersion(ctx, conn)
		if err != nil || got != v {
			t.Fatalf("SchemaVersion() = %d, %v; want %d", got, err, v)
		}
	}
	if diff := cmp.Diff(keptTables, userTables(t, conn)); diff != "" {
		t.Fatalf("tables left after migrating down to 0 (-want +got):\n%s", diff)
	}

	res, err = statestore.Migrate(ctx, conn, logger)
	if err != nil {
		t.Fatal(err)
	}
	if res.From != 0 || res.To != latest {
		t.Fatalf("second migrate = %+v", res)
	}
	if diff := cmp.Diff(allTables, userTables(t, conn)); diff != "" {
		t.Fatalf("tables after up again (-want +got):\n%s", diff)
	}

	// Already at the latest version: nothing applied.
	res, err = statestore.Migrate(ctx, conn, logger)
	if err != nil || len(res.Applied) != 0 {
		t.Fatalf("idempotent migrate = %+v, %v", res, err)
	}
}

func TestMigrateToRejectsUnknownVersion(t *testing.T) {
	conn := connect(t, statetest.NewEmpty(t).URL)
	for _, v := range []int32{-1, statestore.LatestSchemaVersion() + 1} {
		_, err := statestore.MigrateTo(context.Background(), conn, v, quietLogger)
		if !errors.Is(err, statestore.ErrInvalidInput) || !strings.Contains(err.Error(), "target version") {
			t.Errorf("MigrateTo(%d) error = %v, want invalid target version", v, err)
		}
	}
	if got := userTables(t, conn); len(got) != 0 {
		t.Fatalf("a rejected migration changed the database: %v", got)
	}
}

func TestConcurrentMigratorsBothSucceed(t *testing.T) {
	db := statetest.NewEmpty(t)
	const migrators = 4
	conns := make([]*pgx.Conn, migrators)
	for i := range conns {
		conns[i] = connect(t, db.URL)
	}
	results := make([]statestore.MigrationResult, migrators)
	errs := make([]error, migrators)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = statestore.Migrate(context.Background(), conns[i], quietLogger)
		}()
	}
	close(start)
	wg.Wait()

	var applied []string
	for i := range conns {
		if errs[i] != nil {
			t.Fatalf("migrator %d: %v", i, errs[i])
		}
		if results[i].To != statestore.LatestSchemaVersion() {
			t.Errorf("migrator %d ended at version %d", i, results[i].To)
		}
		applied = append(applied, results[i].Applied...)
	}
	// Every migration ran exactly once across all migrators.
	sort.Strings(applied)
	if len(applied) != int(statestore.LatestSchemaVersion()) {
		t.Fatalf("migrations applied across %d migrators: %v", migrators, applied)
	}
	for i := 1; i < len(applied); i++ {
		if applied[i] == applied[i-1] {
			t.Fatalf("migration %s applied twice", applied[i])
		}
	}
}

// The records migration numbers the boot action runs already stored in the
// order the store used before ((created_at, action_id)), whatever their
// physical order, and new runs come after them.
func TestRecordsMigrationNumbersExistingRuns(t *testing.T) {
	ctx := context.Background()
	conn := connect(t, statetest.NewEmpty(t).URL)
	entries, err := fs.Glob(schema.Migrations, "*_records.sql")
	if err != nil || len(entries) != 1 {
		t.Fatalf("records migration: %v, %v", entries, err)
	}
	n, err := strconv.Atoi(strings.SplitN(entries[0], "_", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	v := int32(n)
	if _, err := statestore.MigrateTo(ctx, conn, v-1, nil); err != nil {
		t.Fatal(err)
	}
	// Inserted newest first, then updated (new tuple versions elsewhere).
	for i := 5; i >= 1; i-- {
		if _, err := conn.Exec(ctx, `INSERT INTO boot_action_status (action_id, node_name, action_name, task_id, identity_key_hash, created_at)
			VALUES (gen_random_uuid(), 'n1', 'hw', gen_random_uuid(), decode(repeat('00', 32), 'hex'), now() - make_interval(mins => 10 - $1::int))`, i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, "UPDATE boot_action_status SET action_status = 'success' WHERE created_at < now() - interval '7 minutes'"); err != nil {
		t.Fatal(err)
	}
	if _, err := statestore.MigrateTo(ctx, conn, v, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO boot_action_status (action_id, node_name, action_name, task_id, identity_key_hash)
		VALUES (gen_random_uuid(), 'n1', 'hw', gen_random_uuid(), decode(repeat('00', 32), 'hex'))`); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, "SELECT run_seq FROM boot_action_status ORDER BY created_at, action_id")
	if err != nil {
		t.Fatal(err)
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{1, 2, 3, 4, 5, 6}, seqs); diff != "" {
		t.Fatalf("run_seq in (created_at, action_id) order (-want +got):\n%s", diff)
	}
	if _, err := statestore.MigrateTo(ctx, conn, v-1, nil); err != nil {
		t.Fatalf("down: %v", err)
	}
}

// Terms never go back, whatever the migration path: after migrating down
// to any version and up again, the next leader's term is above every term
// recorded before, and a deposed term's fenced write still fails.
func TestTermsNeverGoBackAcrossMigrations(t *testing.T) {
	ctx := ctxTimeout(t, 2*time.Minute)
	url := statetest.NewEmpty(t).URL
	conn := connect(t, url)
	latest := statestore.LatestSchemaVersion()
	if _, err := statestore.Migrate(ctx, conn, quietLogger); err != nil {
		t.Fatal(err)
	}
	var highest int64
	elect := func() int64 {
		t.Helper()
		el, err := statestore.NewElector(statestore.ElectorConfig{ConnString: url, Logger: quietLogger})
		if err != nil {
			t.Fatal(err)
		}
		defer el.Close() // deposed by closing: the term stays recorded
		term, ok, err := el.Claim(ctx)
		if err != nil || !ok {
			t.Fatalf("Claim = %d, %v, %v", term, ok, err)
		}
		if term <= highest {
			t.Fatalf("new term %d, but term %d was recorded before", term, highest)
		}
		highest = term
		return term
	}
	elect()
	elect()
	for v := latest - 1; v >= 0; v-- {
		if _, err := statestore.MigrateTo(ctx, conn, v, quietLogger); err != nil {
			t.Fatalf("migrate down to %d: %v", v, err)
		}
		if _, err := statestore.Migrate(ctx, conn, quietLogger); err != nil {
			t.Fatalf("migrate up from %d: %v", v, err)
		}
		deposed := highest
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		s := statestore.New(pool, statestore.Options{DisableListen: true})
		if _, err := s.CreateTasks(ctx, statestore.NewTask{Action: "noop"}); err != nil {
			t.Fatal(err)
		}
		cur := elect()
		if _, err := s.AsLeader(deposed).ClaimTasks(ctx, "stale", 1); !errors.Is(err, statestore.ErrNotLeader) {
			t.Fatalf("after down to %d and up: deposed term %d's fenced claim = %v, want ErrNotLeader", v, deposed, err)
		}
		if _, err := s.AsLeader(cur).ClaimTasks(ctx, "current", 1); err != nil {
			t.Fatalf("after down to %d and up: current term %d's fenced claim = %v", v, cur, err)
		}
		s.Close()
		pool.Close()
	}
}
