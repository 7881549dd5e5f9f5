package db_test

// The reviewable SQL artefacts: the fully migrated schema as pg_dump prints
// it (schema/dump/schema.sql) and the plan of each hot query
// (queries/plans/*.txt). These tests fail when a file is stale, naming it and
// showing the difference; with -update they rewrite the files instead
// (make generate, go generate ./...). So a change to a migration, a query or
// an index shows up in review as a change to these files.

//go:generate go test -count=1 -run ^(TestSchemaFile|TestPlansFiles)$ . -update

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
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

	"github.com/drydock-go/statemgmt/statestore/statetest"
)

var update = flag.Bool("update", false, "rewrite schema/dump/schema.sql and queries/plans/*.txt instead of comparing")

const (
	schemaFile = "../../schema/dump/schema.sql"
	plansDir   = "../../queries/plans"
	// artefactMajor is the PostgreSQL major version the files are written
	// with; pg_dump's output and the planner's choices are that version's.
	artefactMajor = 15
)

// TestSchemaFile compares schema/dump/schema.sql with pg_dump --schema-only
// of a freshly migrated database, normalised (normaliseDump).
func TestSchemaFile(t *testing.T) {
	database := statetest.New(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, database.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	requireArtefactMajor(t, conn)

	pgDump := findPgDump(t)
	cmd := exec.CommandContext(ctx, pgDump, "--schema-only", "--no-owner", "--no-privileges",
		"--exclude-table=public.schema_version", // tern's bookkeeping, not the schema
		"--dbname="+database.URL)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, stderr.String())
	}
	got := "-- The fully migrated schema: pg_dump --schema-only of schema/*.sql applied in order,\n" +
		"-- normalised. Written by make generate (TestSchemaFile -update in gen/db); do not edit.\n\n" +
		normaliseDump(string(out))
	compareOrUpdate(t, schemaFile, got)
}

var (
	// pg_dump 15.14 and later fence the dump with \restrict KEY, a random key.
	psqlMeta   = regexp.MustCompile(`^\\(un)?restrict\b`)
	dumpedBy   = regexp.MustCompile(`^-- Dumped (from database|by pg_dump) version `)
	sessionSet = regexp.MustCompile(`^(SET \w+ = |SELECT pg_catalog\.set_config\()`)
)

// normaliseDump removes what changes from run to run or machine to machine
// without changing the schema: psql's \restrict fence (a random key), the
// version comments, the session SET lines; and runs of blank lines.
func normaliseDump(dump string) string {
	var out []string
	blank := true // drop leading blank lines
	for _, line := range strings.Split(dump, "\n") {
		line = strings.TrimRight(line, " \t\r")
		if psqlMeta.MatchString(line) || dumpedBy.MatchString(line) || sessionSet.MatchString(line) {
			continue
		}
		if line == "" {
			if blank {
				continue
			}
			blank = true
		} else {
			blank = false
		}
		out = append(out, line)
	}
	return strings.TrimRight(strings.Join(out, "\n"), "\n") + "\n"
}

func TestNormaliseDump(t *testing.T) {
	in := "\\restrict abc123\n\n--\n-- PostgreSQL database dump\n--\n\n" +
		"-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)\n-- Dumped by pg_dump version 15.20\n\n" +
		"SET statement_timeout = 0;\nSET client_encoding = 'UTF8';\n" +
		"SELECT pg_catalog.set_config('search_path', '', false);\n\n\n" +
		"CREATE TABLE public.t (\n    a integer\n);   \n\n\n\\unrestrict abc123\n\n"
	want := "--\n-- PostgreSQL database dump\n--\n\nCREATE TABLE public.t (\n    a integer\n);\n"
	if diff := cmp.Diff(want, normaliseDump(in)); diff != "" {
		t.Errorf("normaliseDump (-want +got):\n%s", diff)
	}
}

// TestPlansFiles compares queries/plans/<Query>.txt with the generic plan of
// each hot query on the seeded dataset (seededConn), costs and row estimates
// left out (EXPLAIN (COSTS OFF)) so only the plan's shape is compared.
func TestPlansFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 1.2 million rows")
	}
	conn := seededConn(t)
	requireArtefactMajor(t, conn)
	want := map[string]bool{}
	for i, tc := range planCases {
		if tc.file == "" {
			continue
		}
		name := tc.file + ".txt"
		want[name] = true
		t.Run(tc.file, func(t *testing.T) {
			lines := explain(t, conn, fmt.Sprintf("f%d", i), "(COSTS OFF)", tc)
			got := fmt.Sprintf("-- %s: generic plan on the plan test's dataset (gen/db/plans_test.go),\n"+
				"-- costs and estimates left out. Written by make generate (TestPlansFiles -update\n"+
				"-- in gen/db); do not edit.\n-- EXECUTE %s(%s)\n\n%s\n",
				tc.file, tc.file, tc.args, strings.Join(lines, "\n"))
			compareOrUpdate(t, filepath.Join(plansDir, name), got)
		})
	}
	// A plan file no case writes is left from a query or case that is gone.
	entries, err := os.ReadDir(plansDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		if want[e.Name()] {
			continue
		}
		path := filepath.Join(plansDir, e.Name())
		if *update {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("%s: no hot query writes this plan file (run make generate to remove it)", strings.TrimPrefix(path, "../../"))
	}
}

// compareOrUpdate writes got to path under -update; otherwise it fails,
// naming the file and showing the difference, when the file holds anything
// else.
func compareOrUpdate(t *testing.T, path, got string) {
	t.Helper()
	name := strings.TrimPrefix(path, "../../")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s is missing: run make generate and commit it", name)
	}
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(strings.Split(string(b), "\n"), strings.Split(got, "\n")); diff != "" {
		t.Errorf("%s is stale: run make generate and commit it (-file +now):\n%s", name, diff)
	}
}

// requireArtefactMajor skips the test on a server of another major version
// (its pg_dump output and plans differ), except in CI, where it fails.
func requireArtefactMajor(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	var num string
	if err := conn.QueryRow(context.Background(), "SHOW server_version_num").Scan(&num); err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		t.Fatalf("server_version_num %q: %v", num, err)
	}
	if major := n / 10000; major != artefactMajor {
		msg := fmt.Sprintf("the SQL artefacts are PostgreSQL %d's; this server is %d", artefactMajor, major)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// findPgDump returns PostgreSQL 15's pg_dump: the one in the server
// binaries' directory if installed there, else the one on PATH if it is 15's.
func findPgDump(t *testing.T) string {
	t.Helper()
	candidates := []string{fmt.Sprintf("/usr/lib/postgresql/%d/bin/pg_dump", artefactMajor)}
	if p, err := exec.LookPath("pg_dump"); err == nil {
		candidates = append(candidates, p)
	}
	var seen []string
	for _, p := range candidates {
		out, err := exec.Command(p, "--version").Output()
		if err != nil {
			continue
		}
		// "pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"
		f := strings.Fields(string(out))
		if len(f) >= 3 && strings.HasPrefix(f[2], strconv.Itoa(artefactMajor)+".") {
			return p
		}
		seen = append(seen, strings.TrimSpace(string(out)))
	}
	sort.Strings(seen)
	msg := fmt.Sprintf("no pg_dump of PostgreSQL %d (found: %v)", artefactMajor, seen)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
