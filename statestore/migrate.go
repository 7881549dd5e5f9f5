package statestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"

	"github.com/drydock-go/statemgmt/gen/db"
	"github.com/drydock-go/statemgmt/schema"
)

// SchemaVersionTable is the table in which tern records the schema version.
const SchemaVersionTable = "public.schema_version"

// MigrationResult reports what a migration call did.
type MigrationResult struct {
	// From is the schema version found before migrating.
	From int32
	// To is the schema version after migrating.
	To int32
	// Applied names the migrations run, in order ("002_build_data.sql up").
	Applied []string
}

// Migrate brings the database behind conn to the latest schema version.
//
// conn must be a direct connection to PostgreSQL, not one through a
// transaction-pooling proxy such as PgBouncer: tern serialises concurrent
// migrators with a session advisory lock, which a pooler does not keep. Two
// processes may call Migrate at once; one applies the migrations while the
// other waits for the lock, then finds nothing left to do, and both succeed.
// Progress is logged through logger (slog.Default() when nil).
func Migrate(ctx context.Context, conn *pgx.Conn, logger *slog.Logger) (MigrationResult, error) {
	return MigrateTo(ctx, conn, LatestSchemaVersion(), logger)
}

// MigrateTo brings the database behind conn to schema version target, up or
// down; 0 removes every table of the schema. The same rules as Migrate apply.
func MigrateTo(ctx context.Context, conn *pgx.Conn, target int32, logger *slog.Logger) (MigrationResult, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if latest := LatestSchemaVersion(); target < 0 || target > latest {
		return MigrationResult{}, invalid("target version", "must be between 0 and %d, got %d", latest, target)
	}
	if conn == nil {
		return MigrationResult{}, invalid("conn", "must not be nil")
	}
	unlock, err := lockMigrations(ctx, conn)
	if err != nil {
		return MigrationResult{}, err
	}
	defer func() {
		if err := unlock(); err != nil {
			logger.WarnContext(ctx, "statestore: release the migration lock (the session's end releases it)", "err", err)
		}
	}()
	m, err := newMigrator(ctx, conn)
	if err != nil {
		return MigrationResult{}, err
	}
	var res MigrationResult
	m.OnStart = func(seq int32, name, direction, _ string) {
		res.Applied = append(res.Applied, name+" "+direction)
		logger.InfoContext(ctx, "applying migration", "sequence", seq, "name", name, "direction", direction)
	}
	// The version read here is advisory (for the log); tern re-reads it under
	// its lock before acting.
	res.From, err = m.GetCurrentVersion(ctx)
	if err != nil {
		return res, fmt.Errorf("statestore: read schema version: %w", err)
	}
	start := time.Now()
	if err := m.MigrateTo(ctx, target); err != nil {
		return res, fmt.Errorf("statestore: migrate to version %d: %w", target, err)
	}
	res.To, err = m.GetCurrentVersion(ctx)
	if err != nil {
		return res, fmt.Errorf("statestore: read schema version: %w", err)
	}
	if len(res.Applied) == 0 {
		logger.InfoContext(ctx, "schema already at target version", "version", res.To)
	} else {
		logger.InfoContext(ctx, "schema migrated", "from", res.From, "to", res.To,
			"applied", len(res.Applied), "duration", time.Since(start))
	}
	return res, nil
}

// SchemaVersion returns the schema version of the database behind conn
// (0 for an empty database). It only reads: it creates nothing and takes no
// lock, so it never waits for a migration in progress.
func SchemaVersion(ctx context.Context, conn *pgx.Conn) (int32, error) {
	if conn == nil {
		return 0, invalid("conn", "must not be nil")
	}
	v, err := db.New().ReadSchemaVersion(ctx, conn)
	if err != nil {
		return 0, mapError("read schema version", err)
	}
	return max(v, 0), nil
}

// migrationLockPoll is how often a migrator waiting for another retries the
// migration lock.
const migrationLockPoll = 50 * time.Millisecond

// lockMigrations takes tern's migration lock on conn, polling with
// pg_try_advisory_lock rather than waiting in pg_advisory_lock: a session
// blocked in a statement holds a snapshot, and CREATE INDEX CONCURRENTLY in
// the migrator that holds the lock waits for every such snapshot — a
// deadlock PostgreSQL breaks by failing one migrator
// (TestConcurrentMigratorsBothSucceed, with migrations 012 and 015 built
// CONCURRENTLY). tern then takes the same lock again, nested, and releases
// its own; unlock releases this one.
func lockMigrations(ctx context.Context, conn *pgx.Conn) (unlock func() error, err error) {
	q := db.New()
	for {
		locked, err := q.TryMigrationLock(ctx, conn)
		if err != nil {
			return nil, fmt.Errorf("statestore: take the migration lock: %w", err)
		}
		if locked {
			return func() error {
				_, err := q.ReleaseMigrationLock(context.WithoutCancel(ctx), conn)
				return err
			}, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("statestore: waiting for another migrator: %w", ctx.Err())
		case <-time.After(migrationLockPoll):
		}
	}
}

// LatestSchemaVersion returns the version the embedded migrations lead to.
func LatestSchemaVersion() int32 {
	names, err := migrate.FindMigrations(schema.Migrations)
	if err != nil {
		// The migrations are embedded at build time; failing to list them is
		// a defect of the build, caught by every test.
		panic(fmt.Sprintf("statestore: embedded migrations unreadable: %v", err))
	}
	return int32(len(names))
}

// newMigrator prepares tern over the embedded migrations. It creates the
// version table if missing (under tern's advisory lock).
func newMigrator(ctx context.Context, conn *pgx.Conn) (*migrate.Migrator, error) {
	if conn == nil {
		return nil, invalid("conn", "must not be nil")
	}
	m, err := migrate.NewMigrator(ctx, conn, SchemaVersionTable)
	if err != nil {
		return nil, fmt.Errorf("statestore: prepare migrator: %w", err)
	}
	if err := m.LoadMigrations(schema.Migrations); err != nil {
		return nil, fmt.Errorf("statestore: load migrations: %w", err)
	}
	return m, nil
}

// TableRows is a table and the rows it holds.
type TableRows struct {
	// Table is the table's name.
	Table string `json:"table"`
	// Rows is its exact row count when the plan was made.
	Rows int64 `json:"rows"`
}

// DownPlan says what migrating down to a version would destroy.
type DownPlan struct {
	// From is the current schema version; To the target.
	From, To int32
	// Tables are the tables the down migrations drop that exist now, with
	// their row counts, in the order they would be dropped.
	Tables []TableRows
}

// Rows is the total number of rows the plan would destroy.
func (p DownPlan) Rows() int64 {
	var n int64
	for _, t := range p.Tables {
		n += t.Rows
	}
	return n
}

var dropTableRE = regexp.MustCompile(`(?i)\bDROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?([a-z_][a-z0-9_]*)`)

// PlanMigrateDown reports, without changing anything, which tables migrating
// the database behind conn down to target would drop and how many rows each
// holds now. Operators are shown this before a down migration (statectl
// migrate down asks with it). Tables are read from the embedded migrations'
// down sections.
func PlanMigrateDown(ctx context.Context, conn *pgx.Conn, target int32) (DownPlan, error) {
	if latest := LatestSchemaVersion(); target < 0 || target > latest {
		return DownPlan{}, invalid("target version", "must be between 0 and %d, got %d", latest, target)
	}
	m, err := newMigrator(ctx, conn)
	if err != nil {
		return DownPlan{}, err
	}
	cur, err := m.GetCurrentVersion(ctx)
	if err != nil {
		return DownPlan{}, fmt.Errorf("statestore: read schema version: %w", err)
	}
	plan := DownPlan{From: cur, To: target}
	var order []string
	for v := cur; v > target; v-- {
		for _, match := range dropTableRE.FindAllStringSubmatch(m.Migrations[v-1].DownSQL, -1) {
			order = append(order, match[1])
		}
	}
	if len(order) == 0 {
		return plan, nil
	}
	rows, err := db.New().CountTableRows(ctx, conn, order)
	if err != nil {
		return plan, mapError("count rows of the tables to drop", err)
	}
	counts := make(map[string]int64, len(rows))
	for _, r := range rows {
		counts[r.TableName] = r.RowCount
	}
	for _, t := range order {
		if n, ok := counts[t]; ok {
			plan.Tables = append(plan.Tables, TableRows{Table: t, Rows: n})
		}
	}
	return plan, nil
}

// ErrSchemaVersion means the database's schema is not at the version this
// build expects (LatestSchemaVersion): migrations are pending, or the
// database was migrated by a newer build.
var ErrSchemaVersion = errors.New("statestore: the database schema is not at the version this build expects")

// CheckSchema confirms that the database answers and its schema is at
// LatestSchemaVersion, for readiness probes. Like ReadSchemaVersion it only
// reads: it neither creates tern's version table nor waits for a running
// migration's lock. A different version is ErrSchemaVersion, with both
// versions in the message.
func (s *Store) CheckSchema(ctx context.Context) (err error) {
	ctx, span := s.start(ctx, "statestore.CheckSchema")
	defer finish(span, &err)
	v, err := s.q.ReadSchemaVersion(ctx, s.conn)
	if err != nil {
		return mapError("read schema version", err)
	}
	v = max(v, 0) // -1: never migrated
	if latest := LatestSchemaVersion(); v != latest {
		hint := "run statectl migrate up"
		if v > latest {
			hint = "this build is older than the database"
		}
		return fmt.Errorf("%w: database at version %d, this build expects %d (%s)", ErrSchemaVersion, v, latest, hint)
	}
	return nil
}
