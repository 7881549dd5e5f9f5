//go:build unix

package statetest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// clusterReadyTimeout bounds how long a fresh cluster may take to accept connections.
const clusterReadyTimeout = 60 * time.Second

// startCluster initialises and starts a throwaway PostgreSQL cluster from the
// binaries in binDir. It listens only on a unix socket inside its own
// temporary directory, runs with fsync off (its data is disposable), and,
// when this process runs as root, runs as the postgres user, since PostgreSQL
// refuses to run as root. On Linux the server is told to quit if this process
// dies, so a crashed test run leaves no server behind; its directory is
// removed by the next cluster start (see sweepClusterDirs). When failed tests
// kept databases in it, stopping it keeps the directory and says how to start
// it again.
func startCluster(ctx context.Context, binDir string) (*Server, error) {
	sweepClusterDirs(os.TempDir())
	dir, owner, err := newClusterDir(os.TempDir())
	if err != nil {
		return nil, fmt.Errorf("statetest: cluster directory: %w", err)
	}
	cleanup := func() {
		_ = os.RemoveAll(dir)
		_ = owner.Close() // after the removal: a sweeper must never see it unlocked
	}

	cred, err := serverCredential()
	if err != nil {
		cleanup()
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			cleanup()
			return nil, fmt.Errorf("statetest: hand cluster directory to postgres: %w", err)
		}
	}
	data := filepath.Join(dir, "data")
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("statetest: cluster log: %w", err)
	}
	defer logFile.Close()

	initdb := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"),
		"-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
	initdb.Stdout, initdb.Stderr = logFile, logFile
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := initdb.Run(); err != nil {
		cleanup()
		return nil, fmt.Errorf("statetest: initdb: %w\n%s", err, tail(logPath, 20))
	}

	c := &cluster{binDir: binDir, dir: dir, data: data, logPath: logPath, cred: cred}
	admin := fmt.Sprintf("host=%s port=5432 user=postgres dbname=postgres", dir)
	if err := c.start(ctx, admin); err != nil {
		cleanup()
		return nil, err
	}
	stop := func(ctx context.Context, kept []string) error {
		err := c.stopServer(ctx)
		if len(kept) == 0 {
			cleanup()
			return err
		}
		// Failed tests kept databases here: keep the directory, say so
		// and how to use it, and leave it to the sweep after StaleAfter.
		note := c.keptNote(kept)
		if werr := os.WriteFile(filepath.Join(dir, keptFile), []byte(note), 0o644); werr != nil {
			err = errors.Join(err, fmt.Errorf("statetest: mark kept cluster: %w", werr))
		}
		fmt.Fprint(notices, note)
		_ = owner.Close()
		return err
	}
	restart := func(ctx context.Context) error {
		if err := c.stopServer(ctx); err != nil {
			return err
		}
		return c.start(ctx, admin)
	}
	return &Server{Source: SourceCluster, AdminURL: admin, clusterDir: dir, stop: stop, restart: restart}, nil
}

// keptNote says where a stopped cluster holding failed tests' databases is
// and how to start it again.
func (c *cluster) keptNote(kept []string) string {
	as := ""
	if c.cred != nil {
		as = " (as user postgres)"
	}
	return fmt.Sprintf(`statetest: kept the throwaway cluster in %[1]s: failed tests kept database(s) %[2]s in it.
  start it%[3]s: %[4]s -D %[5]s -k %[1]s -p 5432 -c listen_addresses=
  then:          psql "host=%[1]s port=5432 user=postgres dbname=%[6]s"
  a test run %[7]v from now deletes the directory; sooner: rm -rf %[1]s
`, c.dir, strings.Join(kept, ", "), as, filepath.Join(c.binDir, "postgres"), c.data, kept[0], StaleAfter)
}

// Files in a throwaway cluster's directory besides the server's own.
const (
	clusterDirPrefix = "statemgmt-pg-"
	// ownerLockFile is held locked (flock) by the process that owns the
	// cluster for as long as it lives; the kernel releases the lock when
	// the process dies, however it dies.
	ownerLockFile = "owner.lock"
	// keptFile marks a stopped cluster kept for failed tests' databases
	// and says how to start it.
	keptFile = "KEPT"
)

// newClusterDir creates a cluster directory under parent, owned by this
// process: owner holds its lock until closed. The lock file is locked before
// it takes its name, so a sweeper never finds it unlocked while we live.
func newClusterDir(parent string) (dir string, owner *os.File, err error) {
	dir, err = os.MkdirTemp(parent, clusterDirPrefix)
	if err != nil {
		return "", nil, err
	}
	tmp := filepath.Join(dir, ownerLockFile+".new")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err == nil {
		if err = lockOwner(f); err == nil {
			_, _ = fmt.Fprintf(f, "%d\n", os.Getpid())
			err = os.Rename(tmp, filepath.Join(dir, ownerLockFile))
		}
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, fmt.Errorf("own %s: %w", dir, err)
	}
	return dir, f, nil
}

// sweepClusterDirs removes the directories of throwaway clusters under
// parent whose owner died (a killed test binary) and whose server no longer
// runs, and kept clusters older than StaleAfter. Directories without an owner
// lock (made by older versions of this package) go after StaleAfter too.
// Failures are ignored: this is hygiene, and another user's directories may
// not be ours to remove.
func sweepClusterDirs(parent string) {
	dirs, _ := filepath.Glob(filepath.Join(parent, clusterDirPrefix+"*")) // the pattern is valid
	for _, dir := range dirs {
		if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
			continue
		}
		if postmasterAlive(filepath.Join(dir, "data")) {
			continue
		}
		if fi, err := os.Stat(filepath.Join(dir, keptFile)); err == nil {
			if time.Since(fi.ModTime()) > StaleAfter {
				_ = os.RemoveAll(dir)
			}
			continue
		}
		f, err := os.Open(filepath.Join(dir, ownerLockFile))
		if errors.Is(err, fs.ErrNotExist) {
			if fi, err := os.Stat(dir); err == nil && time.Since(fi.ModTime()) > StaleAfter {
				_ = os.RemoveAll(dir)
			}
			continue
		}
		if err != nil {
			continue
		}
		if ownerGone(f) {
			_ = os.RemoveAll(dir)
		}
		f.Close()
	}
}

// postmasterAlive reports whether the server process named by the
// postmaster.pid file in data is alive (or cannot be told dead).
func postmasterAlive(data string) bool {
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		return true
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return false // a torn file: postgres writes its pid first
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// cluster is a throwaway server's process and files.
type cluster struct {
	binDir, dir, data, logPath string
	cred                       *syscall.Credential

	mu     sync.Mutex
	server *exec.Cmd
	exited chan error
}

// start runs postgres on the cluster's data and waits until it answers.
func (c *cluster) start(ctx context.Context, admin string) error {
	logFile, err := os.OpenFile(c.logPath, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("statetest: cluster log: %w", err)
	}
	defer logFile.Close()
	server := exec.Command(filepath.Join(c.binDir, "postgres"),
		"-D", c.data, "-k", c.dir, "-p", "5432",
		"-c", "listen_addresses=",
		// fsync=off only: synchronous_commit=off and full_page_writes=off
		// were measured to make CREATE DATABASE ... TEMPLATE 2-6x slower.
		"-c", "fsync=off")
	server.Stdout, server.Stderr = logFile, logFile
	server.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Setpgid: true}
	setParentDeathSignal(server.SysProcAttr)
	if err := server.Start(); err != nil {
		return fmt.Errorf("statetest: start postgres: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- server.Wait() }()
	c.mu.Lock()
	c.server, c.exited = server, exited
	c.mu.Unlock()
	if err := waitReady(ctx, admin, exited); err != nil {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = c.stopServer(stopCtx)
		return fmt.Errorf("statetest: throwaway cluster in %s: %w\n%s", c.dir, err, tail(c.logPath, 20))
	}
	return nil
}

// stopServer shuts postgres down fast (SIGINT: disconnect clients, exit).
func (c *cluster) stopServer(ctx context.Context) error {
	c.mu.Lock()
	server, exited := c.server, c.exited
	c.mu.Unlock()
	if server == nil {
		return nil
	}
	if err := server.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal postgres: %w", err)
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		_ = server.Process.Kill()
		<-exited
		return fmt.Errorf("postgres did not stop in time: %w", ctx.Err())
	}
}

// waitReady polls until the server accepts a connection, it exits, or the
// time is up.
func waitReady(ctx context.Context, connString string, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, clusterReadyTimeout)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, connString)
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case werr := <-exited:
			return fmt.Errorf("postgres exited during start-up: %v", werr)
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// serverCredential returns the postgres user's credential when running as
// root, else nil (run as the current user).
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("statetest: running as root, PostgreSQL must run as another user, and user postgres is missing: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("statetest: uid of postgres: %w", err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("statetest: gid of postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
