// Package hapg starts, for tests, a PostgreSQL primary with a synchronous
// streaming standby from the server binaries (initdb, pg_basebackup -R,
// pg_ctl promote): loopback ports, temporary directories, full teardown,
// and every server dies with the test process (Linux: parent-death signal).
// It lets tests kill the primary (SIGKILL to its whole process group, as if
// the host died), promote the standby, bring the old primary back as a
// read-write "zombie", or kill the standby — deterministically, with no
// failover manager deciding when.
package hapg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// StandbyName is the standby's application_name, which the primary's
// synchronous_standby_names requires ('FIRST 1 (s1)').
const StandbyName = "s1"

// readyTimeout bounds a server's start-up and the standby's catch-up.
const readyTimeout = 90 * time.Second

// ErrNoBinaries means no PostgreSQL server binaries were found.
var ErrNoBinaries = errors.New("hapg: PostgreSQL server binaries (initdb, pg_basebackup, pg_ctl, postgres) not found under /usr/lib/postgresql/*/bin")

// Node is one server of the pair.
type Node struct {
	// Name is "primary" or "standby" (the role it started with).
	Name string
	// Port is its loopback TCP port.
	Port int
	data string
	args []string // extra -c settings

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error
}

// Pair is a primary with one synchronous streaming standby.
type Pair struct {
	// Primary started as the primary; Standby as its synchronous standby.
	Primary, Standby *Node
	bin              string
	dir              string
	cred             *syscall.Credential
	log              *os.File
}

// Start initialises a primary (synchronous_standby_names = 'FIRST 1 (s1)',
// synchronous_commit = on), takes a base backup of it with
// pg_basebackup -R for the standby (application_name s1), starts both and
// waits until the standby streams synchronously. Close removes everything.
func Start(ctx context.Context) (p *Pair, err error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	dir, err := newDir("statemgmt-hapg-")
	if err != nil {
		return nil, err
	}
	p = &Pair{bin: bin, dir: dir, cred: cred}
	started := p
	defer func() {
		if err != nil {
			started.Close()
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("hapg: hand %s to postgres: %w", dir, err)
		}
	}
	if p.log, err = os.Create(filepath.Join(dir, "hapg.log")); err != nil {
		return nil, fmt.Errorf("hapg: log: %w", err)
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	p.Primary = &Node{Name: "primary", Port: ports[0], data: filepath.Join(dir, "primary"),
		args: []string{"-c", "synchronous_standby_names=FIRST 1 (" + StandbyName + ")", "-c", "synchronous_commit=on"}}
	p.Standby = &Node{Name: "standby", Port: ports[1], data: filepath.Join(dir, "standby")}

	if err := p.run(ctx, "initdb", "-D", p.Primary.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--no-locale", "--no-sync"); err != nil {
		return nil, err
	}
	if err := p.startNode(ctx, p.Primary); err != nil {
		return nil, err
	}
	// -R writes standby.signal and primary_conninfo (with application_name
	// from the connection string) into the standby's postgresql.auto.conf.
	if err := p.run(ctx, "pg_basebackup", "-D", p.Standby.data, "-X", "stream", "-R", "--no-sync",
		"-d", fmt.Sprintf("host=127.0.0.1 port=%d user=postgres application_name=%s", p.Primary.Port, StandbyName)); err != nil {
		return nil, err
	}
	if err := p.startNode(ctx, p.Standby); err != nil {
		return nil, err
	}
	if err := p.waitSyncStandby(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// URL returns a libpq connection string for database on node.
func (n *Node) URL(database string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=%s sslmode=disable", n.Port, database)
}

// URL returns the multi-host connection string for database that clients
// of an HA pair use: both servers, only a read-write one accepted
// (target_session_attrs=read-write), the original primary first.
func (p *Pair) URL(database string) string {
	return fmt.Sprintf("host=127.0.0.1,127.0.0.1 port=%d,%d user=postgres dbname=%s sslmode=disable "+
		"target_session_attrs=read-write connect_timeout=5", p.Primary.Port, p.Standby.Port, database)
}

// Kill sends SIGKILL to the node's whole process group (postmaster and
// every backend at once, as if its host died) and waits for the
// postmaster to be gone.
func (n *Node) Kill() error {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("hapg: %s is not running", n.Name)
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("hapg: kill %s: %w", n.Name, err)
	}
	<-exited
	// Backends notice the postmaster's death themselves; the group kill
	// took them too. Wait until none is left holding the port.
	return waitPortFree(n.Port)
}

// Running reports whether the node's postmaster runs.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// Promote promotes the standby (pg_ctl promote -w) and waits until it
// accepts writes. It starts with synchronous_standby_names empty, as a
// failover manager runs a new primary whose standby is gone (pg_auto_failover's
// wait_primary): its commits do not wait.
func (p *Pair) Promote(ctx context.Context) error {
	if err := p.run(ctx, "pg_ctl", "promote", "-w", "-t", strconv.Itoa(int(readyTimeout/time.Second)),
		"-D", p.Standby.data); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		var inRecovery bool
		conn, err := pgx.Connect(ctx, p.Standby.URL("postgres"))
		if err == nil {
			err = conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery)
			conn.Close(ctx)
			if err == nil && !inRecovery {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("hapg: promoted standby never accepted writes: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// RestartAsZombie starts a killed original primary again on its own data
// as it was: read-write, still requiring its synchronous standby — the
// "zombie" an operator or a naive restart script brings back after the
// standby was promoted. Its commits wait for a standby that will never
// come back.
func (p *Pair) RestartAsZombie(ctx context.Context) error {
	if p.Primary.Running() {
		return errors.New("hapg: the old primary still runs; Kill it first")
	}
	return p.startNode(ctx, p.Primary)
}

// RestartStandby starts a killed standby again (still a standby, on its
// own data) and waits until the primary has it back as its synchronous
// standby.
func (p *Pair) RestartStandby(ctx context.Context) error {
	if p.Standby.Running() {
		return errors.New("hapg: the standby still runs; Kill it first")
	}
	if err := p.startNode(ctx, p.Standby); err != nil {
		return err
	}
	return p.waitSyncStandby(ctx)
}

// Close kills both servers and removes every file.
func (p *Pair) Close() {
	for _, n := range []*Node{p.Primary, p.Standby} {
		if n != nil && n.Running() {
			_ = n.Kill()
		}
	}
	if p.log != nil {
		p.log.Close()
	}
	_ = os.RemoveAll(p.dir)
}

// Dir is the pair's temporary directory (data, sockets, log).
func (p *Pair) Dir() string { return p.dir }

// LogTail returns the end of the servers' and tools' shared log, for a
// failing test's message.
func (p *Pair) LogTail(lines int) string {
	b, err := os.ReadFile(filepath.Join(p.dir, "hapg.log"))
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// startNode runs postgres on the node's data directory and waits until it
// accepts connections (a standby accepts them read-only: hot_standby).
func (p *Pair) startNode(ctx context.Context, n *Node) error {
	args := append([]string{"-D", n.data, "-p", strconv.Itoa(n.Port), "-k", p.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200",
		"-c", "wal_sender_timeout=5s", "-c", "wal_receiver_status_interval=1s"}, n.args...)
	cmd := exec.Command(filepath.Join(p.bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Setpgid: true}
	setParentDeathSignal(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("hapg: start %s: %w", n.Name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	n.mu.Lock()
	n.cmd, n.exited = cmd, exited
	n.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, n.URL("postgres"))
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case werr := <-exited:
			n.mu.Lock()
			n.cmd = nil
			n.mu.Unlock()
			return fmt.Errorf("hapg: %s exited during start-up: %v\n%s", n.Name, werr, p.LogTail(20))
		case <-ctx.Done():
			return fmt.Errorf("hapg: %s not ready: %w (last error: %v)\n%s", n.Name, ctx.Err(), err, p.LogTail(20))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitSyncStandby waits until the primary reports the standby streaming
// as its synchronous standby.
func (p *Pair) waitSyncStandby(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.Primary.URL("postgres"))
	if err != nil {
		return fmt.Errorf("hapg: connect to primary: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for {
		var n int
		err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication WHERE application_name = $1 AND sync_state = 'sync'",
			StandbyName).Scan(&n)
		if err == nil && n == 1 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("hapg: standby never became synchronous: %w (last error: %v)\n%s", ctx.Err(), err, p.LogTail(20))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// run runs one of the server tools as the server's user, its output to the log.
func (p *Pair) run(ctx context.Context, tool string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(p.bin, tool), args...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	setParentDeathSignal(cmd.SysProcAttr)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("hapg: %s: %w\n%s", tool, err, p.LogTail(20))
	}
	return nil
}

// findBinaries returns the newest /usr/lib/postgresql/*/bin holding the
// tools the pair needs.
func findBinaries() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin") // a constant, valid pattern
	sort.Slice(dirs, func(i, j int) bool { return major(dirs[i]) > major(dirs[j]) })
	for _, d := range dirs {
		ok := true
		for _, b := range []string{"initdb", "pg_basebackup", "pg_ctl", "postgres"} {
			if fi, err := os.Stat(filepath.Join(d, b)); err != nil || fi.Mode()&0o111 == 0 {
				ok = false
			}
		}
		if ok {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

func major(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir))) // 0 when not a number
	return v
}

// serverCredential: PostgreSQL refuses to run as root; run it as postgres then.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("hapg: running as root needs a postgres user: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("hapg: uid of postgres: %w", err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("hapg: gid of postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// freePorts finds n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("hapg: free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// ownerFile in a harness directory holds the pid of the process that made
// it: servers die with that process (parent-death signal), and the next
// Start or StartFormation removes directories whose owner is gone.
const ownerFile = "owner.pid"

// newDir sweeps the directories of dead owners with prefix, then makes a
// new one owned by this process.
func newDir(prefix string) (string, error) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*")) // a valid pattern
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue // not ours, or being made: leave it
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err == nil && pid > 0 && errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			_ = os.RemoveAll(d) // hygiene: failures leave it for the next sweep
		}
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", fmt.Errorf("hapg: temporary directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("hapg: temporary directory: %w", err)
	}
	return dir, nil
}

// waitPortFree waits until nothing accepts connections on port.
func waitPortFree(port int) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err != nil {
			return nil
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("hapg: port %d still answers 30 s after the kill", port)
}
