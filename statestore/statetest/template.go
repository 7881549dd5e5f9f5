package statetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/schema"
	"github.com/drydock-go/statemgmt/statestore"
)

// Database is one isolated, fully migrated database.
type Database struct {
	// Name is the database's name on the server.
	Name string
	// URL connects to it (same user and server as the admin connection). It
	// may contain a password: log Redact(URL), not URL.
	URL string
}

// Names of the databases this package creates. Only these fixed prefixes and
// hex digits ever reach the DDL below, which cannot take parameters for
// identifiers; pgx.Identifier quotes them all the same.
const (
	templatePrefix = "statemgmt_tpl_"
	testDBPrefix   = "statemgmt_test_"
	buildSuffix    = "_build"
)

// MigrationsHash is a digest of every embedded migration file (names and
// contents). A template database is reused only by migrations with the same
// hash, so editing a migration never runs tests on a stale schema.
func MigrationsHash() string {
	h := sha256.New()
	var names []string
	err := fs.WalkDir(schema.Migrations, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			names = append(names, path)
		}
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("statetest: walk embedded migrations: %v", err))
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := fs.ReadFile(schema.Migrations, n)
		if err != nil {
			panic(fmt.Sprintf("statetest: read embedded migration %s: %v", n, err))
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TemplateName is the name of the template database for the current migrations.
func TemplateName() string { return templatePrefix + MigrationsHash()[:16] }

// ensureTemplate makes sure the template database exists on the server,
// building it under an advisory lock so parallel test binaries (go test runs
// one per package) neither race nor build it twice. The template is built
// under a temporary name and renamed when complete, so a template that exists
// is always complete; a half-built one left by a crash is rebuilt. Only
// success is remembered: after a failure (a cancelled context, a server
// restarting) the next call tries again.
func (s *Server) ensureTemplate(ctx context.Context) (string, error) {
	s.templateMu.Lock()
	defer s.templateMu.Unlock()
	if s.templateName != "" {
		return s.templateName, nil
	}
	name := TemplateName()
	if _, err := s.buildTemplate(ctx, name); err != nil {
		return "", err
	}
	s.templateName = name
	_ = s.sweepStale(ctx) // hygiene only: a failed sweep must not fail tests
	return name, nil
}

// lockDatabase is where the template-build lock is taken. Advisory locks
// belong to one database, so runs whose connection strings name different
// databases (libpq defaults name the user's, URLs usually postgres) would
// not exclude each other if each locked in its own.
const lockDatabase = "postgres"

// lockTemplateBuild opens a session to lockDatabase holding the build lock of
// template name, waiting for it as long as ctx allows. When the server has no
// such database, or the user may not connect to it, it falls back to the
// database the admin connection string names. unlock releases the lock and
// closes the session.
func (s *Server) lockTemplateBuild(ctx context.Context, name string) (conn *pgx.Conn, unlock func(), err error) {
	lockURL, err := withDatabase(s.AdminURL, lockDatabase)
	if err != nil {
		return nil, nil, err
	}
	conn, err = pgx.Connect(ctx, lockURL)
	var pgErr *pgconn.PgError
	// 3D000: no such database; 42501: may not connect to it.
	if errors.As(err, &pgErr) && (pgErr.Code == "3D000" || pgErr.Code == "42501") {
		conn, err = pgx.Connect(ctx, s.AdminURL)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("statetest: connect to admin database: %w", err)
	}
	sum := sha256.Sum256([]byte("statetest template " + name))
	lockKey := int64(binary.BigEndian.Uint64(sum[:8]))
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockKey); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, nil, fmt.Errorf("statetest: lock template build: %w", err)
	}
	return conn, func() {
		// Closing the session releases the lock too; unlock explicitly
		// first so the lock never outlives us on a slow close.
		bg := context.WithoutCancel(ctx)
		_, _ = conn.Exec(bg, "SELECT pg_advisory_unlock($1)", lockKey)
		conn.Close(bg)
	}, nil
}

// buildTemplate makes sure template database name exists, building it if
// need be; built says whether this call built it.
func (s *Server) buildTemplate(ctx context.Context, name string) (built bool, err error) {
	admin, unlock, err := s.lockTemplateBuild(ctx, name)
	if err != nil {
		return false, err
	}
	defer unlock()

	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return false, fmt.Errorf("statetest: look for template: %w", err)
	}
	if exists {
		return false, nil
	}

	build := name + buildSuffix
	buildID := pgx.Identifier{build}.Sanitize()
	// A build that died after marking its database a template, before the
	// rename, left a database that cannot be dropped until it is unmarked.
	var buildIsTemplate bool
	err = admin.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", build).Scan(&buildIsTemplate)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("statetest: look for half-built template: %w", err)
	}
	if buildIsTemplate {
		if _, err := admin.Exec(ctx, "ALTER DATABASE "+buildID+" WITH IS_TEMPLATE false"); err != nil {
			return false, fmt.Errorf("statetest: unmark half-built template: %w", err)
		}
	}
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+buildID+" WITH (FORCE)"); err != nil {
		return false, fmt.Errorf("statetest: drop half-built template: %w", err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+buildID); err != nil {
		return false, fmt.Errorf("statetest: create template: %w", err)
	}
	buildURL, err := withDatabase(s.AdminURL, build)
	if err != nil {
		return false, err
	}
	if err := migrateDatabase(ctx, buildURL); err != nil {
		return false, err
	}
	for _, stmt := range []string{
		"ALTER DATABASE " + buildID + " WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
		"ALTER DATABASE " + buildID + " RENAME TO " + pgx.Identifier{name}.Sanitize(),
	} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			return false, fmt.Errorf("statetest: finish template: %w", err)
		}
	}
	return true, nil
}

func migrateDatabase(ctx context.Context, connString string) error {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return fmt.Errorf("statetest: connect to template: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := statestore.Migrate(ctx, conn, quiet); err != nil {
		return fmt.Errorf("statetest: migrate template: %w", err)
	}
	return nil
}

// testDBName is statemgmt_test_[kind]<unix seconds, base 36>_<random hex>:
// the creation time in the name lets sweepStale find leftovers.
func testDBName(kind string, rnd []byte) string {
	return testDBPrefix + kind + strconv.FormatInt(time.Now().Unix(), 36) + "_" + hex.EncodeToString(rnd)
}

// StaleAfter is how long a test database may outlive its test run (a
// failed test's kept database, or one a killed process never dropped)
// before the next run on the same server drops it.
const StaleAfter = 24 * time.Hour

// sweepStale drops test databases created more than StaleAfter ago that
// nobody is connected to. Errors are returned but never fatal to a run.
func (s *Server) sweepStale(ctx context.Context) error {
	pool, err := s.adminPool(ctx)
	if err != nil {
		return err
	}
	rows, err := pool.Query(ctx, `SELECT d.datname FROM pg_database d
		WHERE d.datname LIKE 'statemgmt\_test\_%'
		  AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)`)
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		rest := strings.TrimPrefix(strings.TrimPrefix(n, testDBPrefix), "empty_")
		stamp, _, ok := strings.Cut(rest, "_")
		secs, perr := strconv.ParseInt(stamp, 36, 64)
		if !ok || perr != nil || time.Since(time.Unix(secs, 0)) < StaleAfter {
			continue
		}
		errs = append(errs, s.DropDatabase(ctx, n))
	}
	return errors.Join(errs...)
}

// CreateDatabase clones the template into a new database with a random name.
// The caller drops it with DropDatabase.
func (s *Server) CreateDatabase(ctx context.Context) (*Database, error) {
	tpl, err := s.ensureTemplate(ctx)
	if err != nil {
		return nil, err
	}
	return s.clone(ctx, tpl)
}

// clone clones template tpl into a new database with a random name.
func (s *Server) clone(ctx context.Context, tpl string) (*Database, error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("statetest: random name: %w", err)
	}
	name := testDBName("", rnd[:])
	if err := s.adminExec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+
		" TEMPLATE "+pgx.Identifier{tpl}.Sanitize()); err != nil {
		s.createFailed(ctx, name)
		return nil, fmt.Errorf("statetest: clone template: %w", err)
	}
	u, err := withDatabase(s.AdminURL, name)
	if err != nil {
		return nil, err
	}
	return &Database{Name: name, URL: u}, nil
}

// CreateEmptyDatabase creates a new database with no schema at all, for
// tests of migrations themselves. The caller drops it with DropDatabase.
func (s *Server) CreateEmptyDatabase(ctx context.Context) (*Database, error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("statetest: random name: %w", err)
	}
	name := testDBName("empty_", rnd[:])
	if err := s.adminExec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		s.createFailed(ctx, name)
		return nil, fmt.Errorf("statetest: create empty database: %w", err)
	}
	u, err := withDatabase(s.AdminURL, name)
	if err != nil {
		return nil, err
	}
	return &Database{Name: name, URL: u}, nil
}

// createFailed handles a CREATE DATABASE of name that returned an error: the
// server may still have created it (the context ended after the statement
// left, or the answer was lost). It drops name now, best effort, and
// remembers it so that Close drops it again once any statement still on its
// way has run.
func (s *Server) createFailed(ctx context.Context, name string) {
	s.keptMu.Lock()
	s.unfinished = append(s.unfinished, name)
	s.keptMu.Unlock()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = s.DropDatabase(dctx, name)
}

// dropUnfinished drops the databases whose creation failed (see createFailed).
func (s *Server) dropUnfinished(ctx context.Context) {
	s.keptMu.Lock()
	names := s.unfinished
	s.unfinished = nil
	s.keptMu.Unlock()
	for _, n := range names {
		_ = s.DropDatabase(ctx, n) // best effort: the 24 h sweep is the last resort
	}
}

// DropDatabase drops a database this package created, disconnecting any
// session still attached to it.
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	if err := s.adminExec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("statetest: drop database %s: %w", name, err)
	}
	return nil
}

// adminExec runs one maintenance statement (CREATE or DROP DATABASE) on the
// server's small admin pool, created on first use.
func (s *Server) adminExec(ctx context.Context, stmt string) error {
	pool, err := s.adminPool(ctx)
	if err != nil {
		return err
	}
	_, err = pool.Exec(ctx, stmt)
	return err
}

func (s *Server) adminPool(ctx context.Context) (*pgxpool.Pool, error) {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	if s.admin != nil {
		return s.admin, nil
	}
	cfg, err := pgxpool.ParseConfig(s.AdminURL)
	if err != nil {
		return nil, fmt.Errorf("parse admin connection string: %w", err)
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to admin database: %w", err)
	}
	s.admin = pool
	return pool, nil
}
