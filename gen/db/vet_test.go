package db_test

// sqlc vet's rules (sqlc.yaml) and the comment rule, each shown to catch the
// fixtures that break it: a rule that never fires would pass `make lint` just
// as quietly as one that works.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"go.yaml.in/yaml/v3"

	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// TestVetRulesCatchTheirFixtures runs `sqlc vet` with the project's sqlc.yaml
// (its rules, database: managed) on gen/db/testdata/vet/queries.sql and checks
// that each fixture query trips exactly the rules expected of it. The managed
// database is built from schema/ plus the squawk fixture that builds an index
// CONCURRENTLY, so sqlc's way of applying migrations is shown to take that
// pattern too.
func TestVetRulesCatchTheirFixtures(t *testing.T) {
	if testing.Short() {
		t.Skip("builds sqlc and a managed database")
	}
	want := map[string][]string{
		"ClaimWithoutSkipLocked": {"claim-skips-locked"},
		"UpdateEveryTask":        {"write-has-where"},
		"UpdateEveryTaskAliased": {"write-has-where"},
		"DeleteEveryMessage":     {"write-has-where"},
		"AddTextToNumber":        {"sqlc/db-prepare"},
		// ClaimSkippingLocked, DeleteOneMessage, LockTaskForUpdate: none.
	}

	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	server := asURL(t, statetest.NewEmpty(t).URL)

	// A schema file unique to this run makes the managed database's name
	// unique too (sqlc names it after a hash of the migrations).
	dir := t.TempDir()
	token := make([]byte, 8)
	if _, err := rand.Read(token); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "run.sql"), []byte("-- vet run "+hex.EncodeToString(token)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rel := func(p string) string {
		r, err := filepath.Rel(dir, filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	schemaPaths := []string{rel("schema"), rel("schema/testdata/squawk/accept/index_concurrently.sql"), "run.sql"}

	conf := readSqlcConfig(t, filepath.Join(root, "sqlc.yaml"))
	conf["servers"] = []any{map[string]any{"engine": "postgresql", "uri": server}}
	pkg := conf["sql"].([]any)[0].(map[string]any)
	pkg["schema"] = schemaPaths
	pkg["queries"] = rel("gen/db/testdata/vet/queries.sql")
	delete(pkg, "gen")
	conf["sql"] = []any{pkg}
	out, err := yaml.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "sqlc.yaml")
	if err := os.WriteFile(cfg, out, 0o644); err != nil {
		t.Fatal(err)
	}

	managed := managedDatabaseName(t, dir, schemaPaths)
	t.Cleanup(func() { dropManaged(t, server, managed) })

	sqlc := filepath.Join(dir, "sqlc")
	build := exec.Command("go", "build", "-o", sqlc, "github.com/sqlc-dev/sqlc/cmd/sqlc")
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build sqlc: %v\n%s", err, b)
	}
	var stderr bytes.Buffer
	vet := exec.Command(sqlc, "vet", "-f", cfg)
	vet.Dir = dir
	vet.Stderr = &stderr
	vet.Stdout = io.Discard
	err = vet.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Fatalf("sqlc vet: want exit status 1 (findings), got %v\n%s", err, stderr.String())
	}

	// Findings read "queries.sql: QueryName: rule: message".
	got := map[string][]string{}
	finding := regexp.MustCompile(`^queries\.sql: (\w+): ([\w/-]+):`)
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		m := finding.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("sqlc vet printed something that is not a finding: %q", line)
			continue
		}
		got[m[1]] = append(got[m[1]], m[2])
	}
	for _, rules := range got {
		sort.Strings(rules)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings per fixture query (-want +got):\n%s\nsqlc vet said:\n%s", diff, stderr.String())
	}

	if !databaseExists(t, server, managed) {
		t.Errorf("sqlc's managed database is not named %s: the cleanup cannot find it", managed)
	}
}

// asURL writes a connection string in the URL form sqlc's managed databases
// need (sqlc replaces the URL's path with the database it creates).
func asURL(t *testing.T, connString string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "postgres", Path: "/" + cfg.Database, User: url.User(cfg.User)}
	if cfg.Password != "" {
		u.User = url.UserPassword(cfg.User, cfg.Password)
	}
	q := url.Values{}
	if strings.HasPrefix(cfg.Host, "/") { // a Unix socket directory
		q.Set("host", cfg.Host)
		q.Set("port", strconv.Itoa(int(cfg.Port)))
	} else {
		u.Host = net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	}
	if cfg.TLSConfig == nil {
		q.Set("sslmode", "disable")
	} else {
		q.Set("sslmode", "require")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func readSqlcConfig(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var conf map[string]any
	if err := yaml.Unmarshal(b, &conf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return conf
}

// managedDatabaseName is the name sqlc (v1.31, internal/dbmanager) gives the
// database it builds from these schema paths: an FNV-64 hash of each file's
// up section (up to tern's separator), in sqlc's order. It is checked against
// the server at the end of the test.
func managedDatabaseName(t *testing.T, dir string, paths []string) string {
	t.Helper()
	var files []string
	for _, p := range paths {
		full := filepath.Join(dir, p)
		st, err := os.Stat(full)
		if err != nil {
			t.Fatal(err)
		}
		if !st.IsDir() {
			files = append(files, full)
			continue
		}
		entries, err := os.ReadDir(full)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries { // sorted by name, as sqlc reads them
			if strings.HasSuffix(e.Name(), ".sql") && !strings.HasPrefix(e.Name(), ".") {
				files = append(files, filepath.Join(full, e.Name()))
			}
		}
	}
	h := fnv.New64()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var up []string
		s := bufio.NewScanner(bytes.NewReader(b))
		for s.Scan() {
			if strings.HasPrefix(strings.ToLower(s.Text()), "---- create above / drop below ----") {
				break
			}
			up = append(up, s.Text())
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		io.WriteString(h, strings.Join(up, "\n"))
	}
	return fmt.Sprintf("sqlc_managed_%x", h.Sum(nil))
}

func databaseExists(t *testing.T, server, name string) bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	return exists
}

func dropManaged(t *testing.T, server, name string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Errorf("drop %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Errorf("drop %s: %v", name, err)
	}
}

// TestEveryQueryHasItsComment: every query in queries/*.sql carries a
// one-line comment right under its "-- name:" line (sqlc vet cannot check
// this: the query text its rules see has the comments stripped).
func TestEveryQueryHasItsComment(t *testing.T) {
	files, err := filepath.Glob("../../queries/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no queries/*.sql found")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range uncommentedQueries(string(b)) {
			t.Errorf("%s: query %s has no comment line under its -- name: line", filepath.Base(f), name)
		}
	}
}

func TestUncommentedQueriesFindsThem(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"commented", "-- name: A :one\n-- Reads a.\nSELECT 1;\n", nil},
		{"no comment", "-- name: A :one\nSELECT 1;\n", []string{"A"}},
		{"empty comment", "-- name: A :one\n--\nSELECT 1;\n", []string{"A"}},
		{"comment after a blank line", "-- name: A :one\n\n-- Reads a.\nSELECT 1;\n", []string{"A"}},
		{"last line", "-- name: A :one", []string{"A"}},
		{"second of two", "-- name: A :one\n-- Reads a.\nSELECT 1;\n\n-- name: B :exec\nDELETE FROM t WHERE x;\n", []string{"B"}},
		{"fixture file", readFixture(t), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, uncommentedQueries(tc.src)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func readFixture(t *testing.T) string {
	b, err := os.ReadFile("testdata/vet/queries.sql")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var nameLine = regexp.MustCompile(`^-- name: (\w+) :\w+`)

// uncommentedQueries names the queries of a sqlc query file whose "-- name:"
// line is not followed at once by a comment line with some text.
func uncommentedQueries(src string) []string {
	lines := strings.Split(src, "\n")
	var missing []string
	for i, line := range lines {
		m := nameLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "-- ") || strings.TrimSpace(lines[i+1][3:]) == "" {
			missing = append(missing, m[1])
		}
	}
	return missing
}
