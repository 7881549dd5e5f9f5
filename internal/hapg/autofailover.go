package hapg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoAutoFailover means pg_autoctl is not installed.
var ErrNoAutoFailover = errors.New("hapg: pg_autoctl not found (apt-get install -y postgresql-15-auto-failover pg-auto-failover-cli)")

// formationTimeout bounds the formation's start and each wait for a state.
const formationTimeout = 3 * time.Minute

// Timing holds the pg_auto_failover settings that decide how long a
// failover takes. The zero value keeps pg_auto_failover's defaults.
type Timing struct {
	// Monitor settings (pgautofailover.*), in milliseconds: how often and
	// how patiently the monitor checks each node, when it deems a node
	// unhealthy, and how long it waits for an unreachable primary to
	// demote itself before promoting the standby.
	HealthCheckPeriod, HealthCheckTimeout, HealthCheckRetryDelay int
	HealthCheckMaxRetries                                        int
	NodeConsideredUnhealthyTimeout, PrimaryDemoteTimeout         int
	// Keeper settings (timeout.*), in seconds: a primary that cannot reach
	// the monitor nor its standby for NetworkPartitionTimeout demotes
	// itself (keep it below PrimaryDemoteTimeout: that is what makes the
	// promotion safe); PreparePromotionWalreceiver is how long the standby
	// waits for its WAL receiver to stop before promoting.
	NetworkPartitionTimeout, PreparePromotionWalreceiver int
}

// TunedTiming is the shorter outage measured in docs/ha.md: health checks
// every second, a node unhealthy after 2 s, the demote wait 4 s, with the
// old primary demoting itself after 2 s without the monitor.
var TunedTiming = Timing{
	HealthCheckPeriod: 1000, HealthCheckTimeout: 1000, HealthCheckRetryDelay: 500, HealthCheckMaxRetries: 1,
	NodeConsideredUnhealthyTimeout: 2000, PrimaryDemoteTimeout: 4000,
	NetworkPartitionTimeout: 2, PreparePromotionWalreceiver: 1,
}

// Formation is a pg_auto_failover formation on loopback: a monitor and two
// data nodes (node1 starts as primary, node2 as its synchronous
// secondary), each run by `pg_autoctl ... --run` in its own process group,
// all in one temporary directory.
type Formation struct {
	// Monitor is the monitor's PostgreSQL port.
	Monitor int
	// Nodes are the data nodes, node1 and node2.
	Nodes [2]*AutoNode
	dir   string
	env   []string
	cred  *syscall.Credential
	log   *os.File
	mon   *exec.Cmd
}

// AutoNode is one data node of a formation.
type AutoNode struct {
	// Name is node1 or node2; Port its PostgreSQL port.
	Name string
	Port int
	data string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// StartFormation starts a monitor and two nodes with the given timing and
// waits until node1 is primary and node2 secondary.
func StartFormation(ctx context.Context, timing Timing) (f *Formation, err error) {
	autoctl, err := exec.LookPath("pg_autoctl")
	if err != nil {
		return nil, ErrNoAutoFailover
	}
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	dir, err := newDir("statemgmt-autofailover-")
	if err != nil {
		return nil, err
	}
	f = &Formation{dir: dir, cred: cred}
	started := f
	defer func() {
		if err != nil {
			started.Close()
		}
	}()
	for _, sub := range []string{"", "config", "share", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
		if cred != nil {
			if err := os.Chown(filepath.Join(dir, sub), int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, fmt.Errorf("hapg: hand %s to postgres: %w", dir, err)
			}
		}
	}
	// pg_autoctl keeps its configuration and state under the XDG
	// directories: point them into the formation's directory.
	f.env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_DATA_HOME="+filepath.Join(dir, "share"), "XDG_RUNTIME_DIR="+filepath.Join(dir, "run"),
		"PG_CONFIG="+filepath.Join(bin, "pg_config"), "PATH="+bin+":"+os.Getenv("PATH"))
	if f.log, err = os.Create(filepath.Join(dir, "formation.log")); err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	f.Monitor = ports[0]
	f.mon, err = f.start(autoctl, "create", "monitor", "--pgdata", filepath.Join(dir, "monitor"),
		"--pgport", strconv.Itoa(f.Monitor), "--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl", "--run")
	if err != nil {
		return nil, err
	}
	if err := f.waitMonitor(ctx); err != nil {
		return nil, err
	}
	if err := f.tuneMonitor(ctx, timing); err != nil {
		return nil, err
	}
	for i := range f.Nodes {
		n := &AutoNode{Name: fmt.Sprintf("node%d", i+1), Port: ports[i+1], data: filepath.Join(dir, fmt.Sprintf("node%d", i+1))}
		f.Nodes[i] = n
		cmd, err := f.start(autoctl, "create", "postgres", "--pgdata", n.data, "--pgport", strconv.Itoa(n.Port),
			"--hostname", "127.0.0.1", "--listen", "127.0.0.1", "--auth", "trust", "--no-ssl", "--name", n.Name,
			"--pgctl", filepath.Join(bin, "pg_ctl"), "--monitor", f.monitorURL(), "--run")
		if err != nil {
			return nil, err
		}
		n.cmd = cmd
		want := map[string]string{"node1": "single"}
		if i == 1 {
			want = map[string]string{"node1": "primary", "node2": "secondary"}
		}
		if err := f.waitStates(ctx, want); err != nil {
			return nil, err
		}
		if err := f.tuneKeeper(ctx, autoctl, n, timing); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// URL returns the formation's multi-host connection string for database,
// as `pg_autoctl show uri` gives it: both nodes, read-write only.
func (f *Formation) URL(database string) string {
	return fmt.Sprintf("host=127.0.0.1,127.0.0.1 port=%d,%d user=postgres dbname=%s sslmode=disable "+
		"target_session_attrs=read-write connect_timeout=2", f.Nodes[0].Port, f.Nodes[1].Port, database)
}

// NodeURL returns a connection string for database on one node.
func (n *AutoNode) NodeURL(database string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=%s sslmode=disable", n.Port, database)
}

// Primary returns the node the monitor has as the writable primary — both
// assigned and reporting primary or wait_primary (a primary whose standby
// is gone) — or nil. (A dead primary's last report stays "primary" while
// the monitor assigns it "demoted".)
func (f *Formation) Primary(ctx context.Context) (*AutoNode, error) {
	conn, err := pgx.Connect(ctx, f.monitorURL())
	if err != nil {
		return nil, fmt.Errorf("hapg: connect to the monitor: %w", err)
	}
	defer conn.Close(ctx)
	var name string
	err = conn.QueryRow(ctx, `SELECT nodename FROM pgautofailover.node
		WHERE reportedstate = goalstate AND reportedstate::text IN ('primary', 'wait_primary')`).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hapg: read the primary: %w", err)
	}
	for _, n := range f.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("hapg: the monitor names an unknown primary %q", name)
}

// Kill kills the node's keeper and PostgreSQL at once (SIGKILL to the
// process group: its host died).
func (n *AutoNode) Kill() error {
	n.mu.Lock()
	cmd := n.cmd
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("hapg: %s is not running", n.Name)
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("hapg: kill %s: %w", n.Name, err)
	}
	_ = cmd.Wait() // killed: the error says so
	return waitPortFree(n.Port)
}

// Close kills the monitor and both nodes and removes every file.
func (f *Formation) Close() {
	for _, n := range f.Nodes {
		if n != nil {
			_ = n.Kill()
		}
	}
	if f.mon != nil {
		_ = syscall.Kill(-f.mon.Process.Pid, syscall.SIGKILL)
		_ = f.mon.Wait()
	}
	if f.log != nil {
		f.log.Close()
	}
	_ = os.RemoveAll(f.dir)
}

// LogTail returns the end of the formation's log.
func (f *Formation) LogTail(lines int) string {
	b, err := os.ReadFile(filepath.Join(f.dir, "formation.log"))
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

func (f *Formation) monitorURL() string {
	return fmt.Sprintf("postgres://autoctl_node@127.0.0.1:%d/pg_auto_failover?sslmode=disable", f.Monitor)
}

// start runs pg_autoctl in its own process group, dying with this process.
func (f *Formation) start(autoctl string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(autoctl, args...)
	cmd.Env, cmd.Dir = f.env, f.dir
	cmd.Stdout, cmd.Stderr = f.log, f.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: f.cred, Setpgid: true}
	setParentDeathSignal(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("hapg: pg_autoctl %s: %w", strings.Join(args[:2], " "), err)
	}
	return cmd, nil
}

// waitMonitor waits until the monitor's database answers.
func (f *Formation) waitMonitor(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, formationTimeout)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, f.monitorURL())
		if err == nil {
			var n int
			err = conn.QueryRow(ctx, "SELECT count(*) FROM pgautofailover.formation").Scan(&n)
			conn.Close(ctx)
			if err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("hapg: monitor not ready: %w (last error: %v)\n%s", ctx.Err(), err, f.LogTail(20))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tuneMonitor applies the monitor's side of timing.
func (f *Formation) tuneMonitor(ctx context.Context, t Timing) error {
	settings := map[string]int{
		"health_check_period": t.HealthCheckPeriod, "health_check_timeout": t.HealthCheckTimeout,
		"health_check_retry_delay": t.HealthCheckRetryDelay, "health_check_max_retries": t.HealthCheckMaxRetries,
		"node_considered_unhealthy_timeout": t.NodeConsideredUnhealthyTimeout,
		"primary_demote_timeout":            t.PrimaryDemoteTimeout,
	}
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=pg_auto_failover sslmode=disable", f.Monitor))
	if err != nil {
		return fmt.Errorf("hapg: connect to the monitor: %w", err)
	}
	defer conn.Close(ctx)
	changed := false
	for name, v := range settings {
		if v == 0 {
			continue
		}
		// ALTER SYSTEM takes no parameters; name and value are ours, not input.
		if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER SYSTEM SET pgautofailover.%s = %d", name, v)); err != nil {
			return fmt.Errorf("hapg: monitor setting %s: %w", name, err)
		}
		changed = true
	}
	if changed {
		if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
			return fmt.Errorf("hapg: reload the monitor: %w", err)
		}
	}
	return nil
}

// tuneKeeper applies a keeper's side of timing (pg_autoctl config set; the
// running keeper reloads its configuration).
func (f *Formation) tuneKeeper(ctx context.Context, autoctl string, n *AutoNode, t Timing) error {
	for name, v := range map[string]int{"timeout.network_partition_timeout": t.NetworkPartitionTimeout,
		"timeout.prepare_promotion_walreceiver": t.PreparePromotionWalreceiver} {
		if v == 0 {
			continue
		}
		// The keeper rewrites its state and configuration while it
		// settles (config set then exits 12, "bad state"): try again.
		var err error
		for try := 0; try < 50; try++ {
			cmd := exec.CommandContext(ctx, autoctl, "config", "set", "--pgdata", n.data, name, strconv.Itoa(v))
			cmd.Env, cmd.Dir = f.env, f.dir
			cmd.Stdout, cmd.Stderr = f.log, f.log
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: f.cred}
			if err = cmd.Run(); err == nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("hapg: pg_autoctl config set %s on %s: %w\n%s", name, n.Name, err, f.LogTail(10))
		}
	}
	return nil
}

// states reads each node's reported state from the monitor.
func (f *Formation) states(ctx context.Context) (map[string]string, error) {
	conn, err := pgx.Connect(ctx, f.monitorURL())
	if err != nil {
		return nil, fmt.Errorf("hapg: connect to the monitor: %w", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT nodename, reportedstate::text FROM pgautofailover.node")
	if err != nil {
		return nil, fmt.Errorf("hapg: read node states: %w", err)
	}
	out := map[string]string{}
	for rows.Next() {
		var name, state string
		if err := rows.Scan(&name, &state); err != nil {
			return nil, err
		}
		out[name] = state
	}
	return out, rows.Err()
}

// waitStates waits until every named node reports the wanted state.
func (f *Formation) waitStates(ctx context.Context, want map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, formationTimeout)
	defer cancel()
	var got map[string]string
	var err error
	for {
		got, err = f.states(ctx)
		ok := err == nil
		for name, state := range want {
			ok = ok && got[name] == state
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("hapg: formation never reached %v (now %v, last error %v)\n%s", want, got, err, f.LogTail(30))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
