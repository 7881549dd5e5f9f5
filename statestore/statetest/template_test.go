package statetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// randomHex returns n random bytes in hex, for names unique to this run.
func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// testServer returns the process-wide test server or fails the test.
func testServer(t *testing.T) *Server {
	t.Helper()
	srv, err := DefaultServer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// throwawayTemplate returns a template name unique to this test (not the
// shared template other runs use) and drops it, and its build database, when
// the test ends.
func throwawayTemplate(t *testing.T) string {
	t.Helper()
	srv := testServer(t)
	name := "statemgmt_tpltest_" + randomHex(t, 6)
	t.Cleanup(func() {
		ctx := context.Background()
		for _, n := range []string{name, name + buildSuffix} {
			_ = srv.adminExec(ctx, "ALTER DATABASE "+pgx.Identifier{n}.Sanitize()+" WITH IS_TEMPLATE false")
			if err := srv.DropDatabase(ctx, n); err != nil {
				t.Errorf("drop %s: %v", n, err)
			}
		}
	})
	return name
}

// isTemplate reports whether database name exists and whether it is a template.
func isTemplate(t *testing.T, name string) (exists, template bool) {
	t.Helper()
	ctx := context.Background()
	pool, err := testServer(t).adminPool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = pool.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", name).Scan(&template)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true, template
}

// connForms returns connection strings, in every form this package accepts,
// for database db on the default test server as its admin user.
func connForms(t *testing.T, db string) map[string]string {
	t.Helper()
	cfg, err := pgconn.ParseConfig(testServer(t).AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	user := url.User(cfg.User)
	if cfg.Password != "" {
		user = url.UserPassword(cfg.User, cfg.Password)
	}
	port := strconv.Itoa(int(cfg.Port))
	hostQuery := url.Values{"host": {cfg.Host}, "port": {port}}.Encode()
	kv := fmt.Sprintf("host='%s' port=%s user='%s'", cfg.Host, port, cfg.User)
	if cfg.Password != "" {
		kv += fmt.Sprintf(" password='%s'", strings.ReplaceAll(cfg.Password, `'`, `\'`))
	}
	return map[string]string{
		"url path":      (&url.URL{Scheme: "postgres", User: user, Path: "/" + db, RawQuery: hostQuery}).String(),
		"url ?dbname=":  (&url.URL{Scheme: "postgres", User: user, Path: "/", RawQuery: hostQuery + "&dbname=" + url.QueryEscape(db)}).String(),
		"url ?database": (&url.URL{Scheme: "postgres", User: user, RawQuery: "database=" + url.QueryEscape(db) + "&" + hostQuery}).String(),
		"keyword/value": kv + " dbname='" + db + "'",
	}
}

// currentDatabase connects to connString and returns the database it reached.
func currentDatabase(t *testing.T, connString string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		t.Fatalf("connect to %s: %v", Redact(connString), err)
	}
	defer conn.Close(ctx)
	var name string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

// hasTasksTable reports whether the database connString reaches is migrated.
func hasTasksTable(t *testing.T, connString string) bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		t.Fatalf("connect to %s: %v", Redact(connString), err)
	}
	defer conn.Close(ctx)
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('public.tasks') IS NOT NULL").Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// A build that died after marking its database a template, before renaming
// it, must not wedge later builds ("cannot drop a template database").
func TestTemplateBuildRecoversFromDeathAfterMarkingTemplate(t *testing.T) {
	ctx := context.Background()
	srv := testServer(t)
	name := throwawayTemplate(t)
	build := pgx.Identifier{name + buildSuffix}.Sanitize()
	for _, stmt := range []string{
		"CREATE DATABASE " + build,
		"ALTER DATABASE " + build + " WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
	} {
		if err := srv.adminExec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	built, err := srv.buildTemplate(ctx, name)
	if err != nil {
		t.Fatalf("build after a build that died marked as template: %v", err)
	}
	if !built {
		t.Fatal("buildTemplate says it did not build, but there was no template")
	}
	if exists, tpl := isTemplate(t, name); !exists || !tpl {
		t.Fatalf("template %s: exists %v, is template %v", name, exists, tpl)
	}
	if exists, _ := isTemplate(t, name+buildSuffix); exists {
		t.Fatal("the dead build's database is still there")
	}
}

// Two runs against one server whose URLs name different databases (libpq
// defaults name the user's, explicit URLs often postgres) must not both build
// the template: the build lock is server-wide.
func TestTemplateBuiltOnceWhateverDatabaseTheURLNames(t *testing.T) {
	ctx := context.Background()
	other := NewEmpty(t).Name // a second database for the second URL to name
	name := throwawayTemplate(t)
	servers := []*Server{
		{Source: SourceURL, AdminURL: connForms(t, "postgres")["url path"]},
		{Source: SourceURL, AdminURL: connForms(t, other)["keyword/value"]},
	}
	for _, s := range servers {
		t.Cleanup(func() { _ = s.Close(context.Background()) })
	}
	var (
		start sync.WaitGroup
		done  sync.WaitGroup
		built [2]bool
		errs  [2]error
	)
	start.Add(1)
	for i, s := range servers {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			built[i], errs[i] = s.buildTemplate(ctx, name)
		}()
	}
	start.Done()
	done.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("run %d (%s): %v", i, Redact(servers[i].AdminURL), err)
		}
	}
	if built[0] == built[1] {
		t.Errorf("built by run 0: %v, by run 1: %v; want exactly one build", built[0], built[1])
	}
	if exists, tpl := isTemplate(t, name); !exists || !tpl {
		t.Fatalf("template %s: exists %v, is template %v", name, exists, tpl)
	}
}

// The build lock taken through one connection string excludes a build
// through another that names a different database.
func TestTemplateBuildLockIsServerWide(t *testing.T) {
	ctx := context.Background()
	other := NewEmpty(t).Name
	name := "statemgmt_tpltest_" + randomHex(t, 6) // only its lock is used
	a := &Server{Source: SourceURL, AdminURL: connForms(t, other)["keyword/value"]}
	b := &Server{Source: SourceURL, AdminURL: connForms(t, "postgres")["url ?dbname="]}
	_, unlock, err := a.lockTemplateBuild(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, unlockB, err := b.lockTemplateBuild(waitCtx, name); err == nil {
		unlockB()
		unlock()
		t.Fatal("two runs whose URLs name different databases both hold the template build lock")
	}
	unlock()
	_, unlockB, err := b.lockTemplateBuild(ctx, name)
	if err != nil {
		t.Fatalf("lock after the other run released it: %v", err)
	}
	unlockB()
}

// A failed template lookup (here: a cancelled context) is not cached: the
// next CreateDatabase on the same server works.
func TestCreateDatabaseWorksAfterACancelledOne(t *testing.T) {
	def := testServer(t)
	srv := &Server{Source: def.Source, AdminURL: def.AdminURL}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if db, err := srv.CreateDatabase(cancelled); err == nil {
		_ = srv.DropDatabase(context.Background(), db.Name)
		t.Fatal("CreateDatabase with a cancelled context succeeded")
	}
	db, err := srv.CreateDatabase(context.Background())
	if err != nil {
		t.Fatalf("CreateDatabase after a cancelled one: %v", err)
	}
	if err := srv.DropDatabase(context.Background(), db.Name); err != nil {
		t.Fatal(err)
	}
}

// Whatever form the admin connection string takes, test databases and the
// template's migration reach the database they are meant to, never the
// admin database.
func TestEveryConnectionStringFormReachesTheRightDatabase(t *testing.T) {
	ctx := context.Background()
	for form := range connForms(t, "postgres") {
		t.Run(form, func(t *testing.T) {
			t.Parallel()
			admin := NewEmpty(t) // stands in for the admin database the URL names
			conn := connForms(t, admin.Name)[form]
			if got := currentDatabase(t, conn); got != admin.Name {
				t.Fatalf("test setup: %s reaches %s, want %s", Redact(conn), got, admin.Name)
			}
			srv := &Server{Source: SourceURL, AdminURL: conn}
			t.Cleanup(func() { _ = srv.Close(context.Background()) })

			db, err := srv.CreateDatabase(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.DropDatabase(context.Background(), db.Name) })
			if got := currentDatabase(t, db.URL); got != db.Name {
				t.Errorf("Database.URL %s reaches %s, want %s", Redact(db.URL), got, db.Name)
			}
			empty, err := srv.CreateEmptyDatabase(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.DropDatabase(context.Background(), empty.Name) })
			if got := currentDatabase(t, empty.URL); got != empty.Name {
				t.Errorf("empty Database.URL %s reaches %s, want %s", Redact(empty.URL), got, empty.Name)
			}

			// The template's migration must land in the template.
			tpl := throwawayTemplate(t)
			if _, err := srv.buildTemplate(ctx, tpl); err != nil {
				t.Fatal(err)
			}
			clone := testDBName("", []byte(randomHex(t, 8)))
			if err := srv.adminExec(ctx, "CREATE DATABASE "+pgx.Identifier{clone}.Sanitize()+" TEMPLATE "+pgx.Identifier{tpl}.Sanitize()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.DropDatabase(context.Background(), clone) })
			if !hasTasksTable(t, connForms(t, clone)["url path"]) {
				t.Error("the template built through this form is not migrated")
			}
			if hasTasksTable(t, conn) {
				t.Error("the template's migration ran in the admin database")
			}
		})
	}
}
