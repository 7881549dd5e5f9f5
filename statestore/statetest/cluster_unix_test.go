//go:build unix

package statetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestClusterRestartKeepsData(t *testing.T) {
	if _, err := findBinaries(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := StartCluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background()) //nolint:errcheck // test teardown
	db, err := srv.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO tasks (action) VALUES ('noop')"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("a connection survived the restart")
	}
	conn2, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close(ctx)
	var n int
	if err := conn2.QueryRow(ctx, "SELECT count(*) FROM tasks").Scan(&n); err != nil || n != 1 {
		t.Fatalf("after restart: %d tasks, %v", n, err)
	}
}

// clusterDirOf returns the directory of a throwaway cluster (its socket
// directory, the host of its admin connection string).
func clusterDirOf(t *testing.T, srv *Server) string {
	t.Helper()
	cfg, err := pgconn.ParseConfig(srv.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Host
}

// sweepScratch points TMPDIR, where throwaway clusters live, at a directory
// of this test's own, so that it sees no other run's clusters.
func sweepScratch(t *testing.T) string {
	t.Helper()
	tmp, err := os.MkdirTemp("", "statetest-sweep-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(tmp) })
	// The server may run as postgres, which must reach its directory inside.
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp)
	return tmp
}

const helperClusterOwnerEnv = "STATETEST_HELPER_CLUSTER_OWNER"

// TestHelperClusterOwner is not a test: TestKilledRunsClusterDirectoryIsSwept
// runs it in a child process that starts a cluster, names its directory and
// waits to be killed.
func TestHelperClusterOwner(t *testing.T) {
	if os.Getenv(helperClusterOwnerEnv) != "1" {
		t.Skip("helper process only")
	}
	srv, err := StartCluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("CLUSTER %s\n", clusterDirOf(t, srv))
	time.Sleep(10 * time.Minute)
}

// A test binary killed with its throwaway cluster running leaves the
// cluster's directory behind; the next cluster start removes it.
func TestKilledRunsClusterDirectoryIsSwept(t *testing.T) {
	if _, err := findBinaries(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tmp := sweepScratch(t)

	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperClusterOwner$", "-test.v", "-test.timeout=5m")
	child.Env = append(os.Environ(), helperClusterOwnerEnv+"=1")
	child.Stderr = os.Stderr
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	var dead string
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if d, ok := strings.CutPrefix(lines.Text(), "CLUSTER "); ok {
			dead = d
			break
		}
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	if dead == "" {
		t.Fatal("the helper process never reported its cluster")
	}
	if filepath.Dir(dead) != tmp {
		t.Fatalf("the helper's cluster is in %s, not under %s", dead, tmp)
	}
	// The server dies with its parent (parent-death signal); wait for that.
	for postmasterRunning(t, filepath.Join(dead, "data")) {
		select {
		case <-ctx.Done():
			t.Fatal("the killed run's server is still running")
		case <-time.After(50 * time.Millisecond):
		}
	}

	// Starting a cluster sweeps first; this one then fails at once (no
	// binaries there), which is all this test needs of it.
	if srv, err := startCluster(ctx, filepath.Join(tmp, "no-binaries-here")); err == nil {
		_ = srv.Close(ctx)
		t.Fatal("a cluster started without binaries")
	}
	if _, err := os.Stat(dead); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the killed run's cluster directory %s is still there (stat: %v)", dead, err)
	}
}

// The sweep removes only clusters whose owner is gone: a live owner's
// directory stays, however it looks.
func TestSweepKeepsLiveOwnersClusterDirectory(t *testing.T) {
	tmp := sweepScratch(t)
	live, owner, err := newClusterDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	dead, deadOwner, err := newClusterDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	deadOwner.Close() // as the kernel does when the owner dies
	sweepClusterDirs(tmp)
	if _, err := os.Stat(live); err != nil {
		t.Fatalf("the sweep removed a live owner's directory: %v", err)
	}
	if _, err := os.Stat(dead); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the sweep left a dead owner's directory: %v", err)
	}
}

// postmasterRunning reports whether a server process named by the
// postmaster.pid file in data is alive.
func postmasterRunning(t *testing.T, data string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return false
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// With a throwaway cluster, a failed test's kept database must really be
// kept: the cluster's directory survives shutdown and starts again with it.
func TestFailedTestsDatabaseOutlivesItsThrowawayCluster(t *testing.T) {
	dir, err := findBinaries()
	if err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sweepScratch(t)
	srv, err := StartCluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clusterDir := clusterDirOf(t, srv)
	t.Cleanup(func() { _ = os.RemoveAll(clusterDir) })
	db, err := srv.CreateDatabase(ctx)
	if err != nil {
		_ = srv.Close(ctx)
		t.Fatal(err)
	}
	rec := &failedTB{TB: t}
	dropUnlessFailed(rec, srv, db)
	var note strings.Builder
	notices = &note
	defer func() { notices = os.Stderr }()
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if len(rec.logs) != 1 || !strings.Contains(rec.logs[0], "kept") || !strings.Contains(rec.logs[0], clusterDir) {
		t.Fatalf("log of the failed test: %q", rec.logs)
	}
	for _, want := range []string{clusterDir, db.Name, "start it", "rm -rf"} {
		if !strings.Contains(note.String(), want) {
			t.Errorf("the note at shutdown lacks %q:\n%s", want, note.String())
		}
	}
	// A later run's sweep leaves it alone (it is younger than StaleAfter).
	sweepClusterDirs(filepath.Dir(clusterDir))
	if _, err := os.Stat(filepath.Join(clusterDir, "data")); err != nil {
		t.Fatalf("the sweep removed a kept cluster: %v", err)
	}

	cred, err := serverCredential()
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{binDir: dir, dir: clusterDir, data: filepath.Join(clusterDir, "data"),
		logPath: filepath.Join(clusterDir, "server.log"), cred: cred}
	if err := c.start(ctx, srv.AdminURL); err != nil {
		t.Fatalf("start the kept cluster again: %v", err)
	}
	defer c.stopServer(context.Background()) //nolint:errcheck // test teardown
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatalf("connect to the kept database: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM tasks").Scan(&n); err != nil {
		t.Fatalf("query the kept database: %v", err)
	}
}

// On a server without a postgres database the build lock falls back to the
// database the connection string names, and the template is still built.
func TestTemplateBuildWithoutPostgresDatabase(t *testing.T) {
	if _, err := findBinaries(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sweepScratch(t)
	srv, err := StartCluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background()) //nolint:errcheck // test teardown
	if err := srv.adminExec(ctx, "CREATE DATABASE admin_elsewhere"); err != nil {
		t.Fatal(err)
	}
	elsewhere, err := withDatabase(srv.AdminURL, "admin_elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, elsewhere)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "DROP DATABASE postgres WITH (FORCE)")
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other := &Server{Source: SourceURL, AdminURL: elsewhere}
	defer other.Close(context.Background()) //nolint:errcheck // test teardown
	db, err := other.CreateDatabase(ctx)
	if err != nil {
		t.Fatalf("CreateDatabase on a server without a postgres database: %v", err)
	}
	if got := currentDatabase(t, db.URL); got != db.Name {
		t.Fatalf("Database.URL reaches %s, want %s", got, db.Name)
	}
}
