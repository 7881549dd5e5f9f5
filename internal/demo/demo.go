// Package demo runs the whole system for a newcomer: three orchestrator
// instances elect a leader, the leader resolves design documents and fans a
// deploy_nodes task out into per-node subtasks, workers deploy the nodes
// (messages, build data, boot actions), the leader is killed half-way and
// another takes over, and at the end the demo checks its own invariants.
//
// "Half-way" is a point in the work, not in time: the leader is killed when
// half the nodes (rounded up) are complete, the rest are held back until it
// is, and only a leader elected after the kill may complete deploy_nodes, so
// the run is the same for any number of nodes and any machine speed.
package demo

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/fetch"
	"github.com/drydock-go/statemgmt/gen/db"
	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// Config configures a demo run.
type Config struct {
	// DatabaseURL, when set, is used as is (migrated first) if it holds no
	// tasks, boot actions, build data or leadership (else Run returns
	// ErrDatabaseInUse and writes nothing); otherwise the demo gets a fresh
	// database the way the tests do and drops it after.
	DatabaseURL string
	// ServerURL, when set and DatabaseURL is not, names a server (as a user
	// who may CREATE DATABASE) on which the demo makes its own fresh
	// database, migrates it, and drops it at the end. statectl passes
	// DATABASE_URL here.
	ServerURL string
	// Nodes is how many nodes to deploy (default 12).
	Nodes int
	// Out receives progress and the summary.
	Out io.Writer
}

const (
	instances = 3
	workers   = 4
)

// ErrDatabaseInUse means the database given to the demo already holds data
// the demo would disturb (tasks it would claim, boot action keys it would
// replace, a leader it would depose); the demo refuses it.
var ErrDatabaseInUse = errors.New("demo: the database is in use")

// demoLockKey is the session advisory lock a demo holds on a given database.
var demoLockKey = int64(binary.BigEndian.Uint64(func() []byte { h := sha256.Sum256([]byte("statemgmt demo")); return h[:8] }()))

// deployTaskID is fixed so every leader finds the same deploy_nodes task.
var deployTaskID = uuid.NewSHA1(uuid.NameSpaceURL, []byte("statemgmt demo deploy_nodes"))

// Run runs the demo; it returns an error if anything fails or an invariant
// does not hold.
func Run(ctx context.Context, cfg Config) (err error) {
	if cfg.Nodes <= 0 {
		cfg.Nodes = 12
	}
	out := &lineWriter{w: cfg.Out, start: time.Now()}
	ctx, cancel := context.WithTimeout(ctx, 100*time.Second)
	defer cancel()

	url, cleanup, err := database(ctx, cfg, out)
	if err != nil {
		return err
	}
	defer cleanup()

	designDir, httpURL, stopHTTP, err := designServer()
	if err != nil {
		return err
	}
	defer stopHTTP()
	defer os.RemoveAll(designDir)
	fileURI := "file://" + filepath.Join(designDir, "site.yaml")

	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return fmt.Errorf("demo: connect: %w", err)
	}
	defer pool.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := statestore.New(pool, statestore.Options{Logger: quiet, PollInterval: 200 * time.Millisecond})
	defer store.Close()
	resolver, err := fetch.New(fetch.Options{Roots: []string{designDir}, Logger: quiet})
	if err != nil {
		return err
	}
	defer resolver.Close()

	d := &run{cfg: cfg, out: out, store: store, pool: pool, resolver: resolver, fileURI: fileURI, httpURL: httpURL,
		claims: map[uuid.UUID]int{}, done: make(chan struct{}),
		half: (cfg.Nodes + 1) / 2, halfway: make(chan struct{}), killed: make(chan struct{})}

	runCtx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	var wg sync.WaitGroup
	for i := 0; i < instances; i++ {
		name := fmt.Sprintf("orch-%d", i+1)
		el, err := statestore.NewElector(statestore.ElectorConfig{ConnString: url, Hostname: name,
			CheckInterval: 200 * time.Millisecond, Logger: quiet})
		if err != nil {
			return err
		}
		d.electors = append(d.electors, el)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = el.Run(runCtx, func(ctx context.Context, term int64) error { return d.lead(ctx, name, term) })
		}()
	}
	for i := 0; i < workers; i++ {
		name := fmt.Sprintf("worker-%d", i+1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.work(runCtx, name)
		}()
	}
	runErr := d.watch(ctx)
	stopAll()
	wg.Wait()
	if runErr != nil {
		return runErr
	}
	return d.summary(context.WithoutCancel(ctx))
}

// database returns a migrated database and how to clean it up.
func database(ctx context.Context, cfg Config, out *lineWriter) (string, func(), error) {
	if given := cfg.DatabaseURL; given != "" {
		conn, err := pgx.Connect(ctx, given)
		if err != nil {
			return "", nil, fmt.Errorf("demo: connect to --database-url: %w", err)
		}
		// This session holds the demo lock of the database for the whole
		// run, so that a second demo started at the same moment, which
		// would also find the database empty, is refused.
		release := func() { conn.Close(context.WithoutCancel(ctx)) }
		locked, err := db.New().TryAdvisoryLock(ctx, conn, demoLockKey)
		if err != nil {
			release()
			return "", nil, fmt.Errorf("demo: lock the database: %w", err)
		}
		if !locked {
			release()
			return "", nil, fmt.Errorf("%w: another demo is running on %s (nothing was written)", ErrDatabaseInUse, statetest.Redact(given))
		}
		if err := refuseInUse(ctx, conn, given); err != nil {
			release()
			return "", nil, err
		}
		if _, err := statestore.Migrate(ctx, conn, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
			release()
			return "", nil, err
		}
		out.printf("database: the one given (%s), migrated", statetest.Redact(given))
		return given, release, nil
	}
	if cfg.ServerURL != "" {
		return ownDatabaseOn(ctx, cfg.ServerURL, out)
	}
	srv, err := statetest.DefaultServer(ctx)
	if err != nil {
		return "", nil, err
	}
	db, err := srv.CreateDatabase(ctx)
	if err != nil {
		_ = statetest.Shutdown(context.WithoutCancel(ctx))
		return "", nil, err
	}
	out.printf("database: fresh %s on a %s server, migrated", db.Name, srv.Source)
	return db.URL, func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.DropDatabase(cctx, db.Name); err != nil {
			out.printf("cleanup: %v (drop %s by hand)", err, db.Name)
		} else {
			out.printf("cleaned up: dropped %s", db.Name)
		}
		if err := statetest.Shutdown(cctx); err != nil {
			out.printf("cleanup: %v", err)
		}
	}, nil
}

// ownDatabaseOn makes a fresh database on the server serverURL reaches,
// migrates it, and returns it with the cleanup that drops it. It creates
// nothing else on that server (no template database).
func ownDatabaseOn(ctx context.Context, serverURL string, out *lineWriter) (string, func(), error) {
	srv, err := statetest.ServerAt(ctx, serverURL)
	if err != nil {
		return "", nil, fmt.Errorf("demo: the server of DATABASE_URL: %w", err)
	}
	closeSrv := func() {
		if err := srv.Close(context.WithoutCancel(ctx)); err != nil {
			out.printf("cleanup: close the server handle: %v", err)
		}
	}
	db, err := srv.CreateEmptyDatabase(ctx)
	if err != nil {
		closeSrv()
		return "", nil, fmt.Errorf("demo: make a database on the server of DATABASE_URL: %w", err)
	}
	drop := func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.DropDatabase(cctx, db.Name); err != nil {
			out.printf("cleanup: %v (drop %s by hand)", err, db.Name)
		} else {
			out.printf("cleaned up: dropped %s", db.Name)
		}
		closeSrv()
	}
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		drop()
		return "", nil, fmt.Errorf("demo: connect to its database: %w", err)
	}
	_, err = statestore.Migrate(ctx, conn, slog.New(slog.NewTextHandler(io.Discard, nil)))
	conn.Close(context.WithoutCancel(ctx))
	if err != nil {
		drop()
		return "", nil, err
	}
	out.printf("database: fresh %s on the server of DATABASE_URL (%s), migrated", db.Name, statetest.Redact(serverURL))
	return db.URL, drop, nil
}

// inUseTables are the tables whose rows the demo would disturb, and what a
// row of each is called.
var inUseTables = []struct{ table, what string }{
	{"tasks", "task(s)"},
	{"boot_action", "boot action context(s)"},
	{"boot_action_status", "boot action status(es)"},
	{"build_data", "build data row(s)"},
	{"active_instance", "leader record(s)"},
	{"leader_term", "leadership term(s)"},
}

// refuseInUse returns ErrDatabaseInUse, saying what the database holds, if
// any of inUseTables exists and has rows. It only reads.
func refuseInUse(ctx context.Context, conn *pgx.Conn, url string) error {
	names := make([]string, len(inUseTables))
	for i, t := range inUseTables {
		names[i] = t.table
	}
	// Count at most 1001 rows: enough to say "1000+" without scanning a big table.
	rows, err := db.New().CountTableRowsUpTo(ctx, conn, db.CountTableRowsUpToParams{RowLimit: 1001, Tables: names})
	if err != nil {
		return fmt.Errorf("demo: inspect the database: %w", err)
	}
	counts := make(map[string]int64, len(rows))
	for _, r := range rows {
		counts[r.TableName] = r.RowCount
	}
	var held []string
	for _, t := range inUseTables { // in inUseTables' order; a missing table holds nothing
		switch n := counts[t.table]; {
		case n > 1000:
			held = append(held, "1000+ "+t.what)
		case n > 0:
			held = append(held, fmt.Sprintf("%d %s", n, t.what))
		}
	}
	if len(held) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s holds %s; the demo claims tasks, writes boot action keys and takes leadership, "+
		"so it needs a database of its own: omit --database-url and it makes a fresh one (nothing was written)",
		ErrDatabaseInUse, statetest.Redact(url), strings.Join(held, ", "))
}

const siteDocument = `---
schema: drydock/Region/v1
metadata: {name: demo-site}
data: {tag_definitions: [], authorized_keys: []}
`

// designServer writes the design to a temporary directory and serves it on
// a local HTTP server.
func designServer() (dir, url string, stop func(), err error) {
	dir, err = os.MkdirTemp("", "statemgmt-demo-")
	if err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(siteDocument), 0o644); err != nil {
		return "", "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-yaml")
		w.Header().Set("ETag", `"site-v1"`)
		_, _ = io.WriteString(w, siteDocument)
	})}
	go func() { _ = srv.Serve(ln) }()
	return dir, "http://" + ln.Addr().String() + "/site.yaml", func() { _ = srv.Close() }, nil
}

// run is the state of one demo.
type run struct {
	cfg      Config
	out      *lineWriter
	store    *statestore.Store
	pool     *pgxpool.Pool
	resolver *fetch.Resolver
	fileURI  string
	httpURL  string
	electors []*statestore.Elector

	// half is how many nodes complete before the leader is killed: the
	// other completions wait for the kill (see the package docs).
	half    int
	halfway chan struct{} // closed when half the nodes are complete
	killed  chan struct{} // closed once the leader's session is killed

	mu         sync.Mutex
	claims     map[uuid.UUID]int
	passed     int // completions let through before the kill
	completed  int // completions done
	leaderName string
	leaderTerm int64
	fetched    bool
	killedTerm int64
	killedAt   time.Time
	failover   time.Duration
	fencedErr  error
	done       chan struct{}
	doneOnce   sync.Once
}

// lead is what the elected instance does.
func (d *run) lead(ctx context.Context, name string, term int64) error {
	d.mu.Lock()
	d.leaderName, d.leaderTerm = name, term
	first := !d.fetched
	d.fetched = true
	killed := d.killedTerm != 0 && d.failover == 0
	if killed {
		d.failover = time.Since(d.killedAt)
	}
	d.mu.Unlock()
	d.out.printf("%s elected leader, term %d", name, term)
	if killed {
		d.out.printf("failover: %s took over %v after the kill", name, d.failover.Round(time.Millisecond))
	}
	leader := d.store.AsLeader(term)

	if first {
		for _, uri := range []string{d.fileURI, d.httpURL} {
			res, err := d.resolver.Fetch(ctx, uri)
			if err != nil {
				return err
			}
			d.out.printf("%s resolved %s: %d bytes, %s, sha256 %s…", name, res.URL, res.Size, res.ContentType, res.SHA256[:12])
		}
	}
	// The deploy task and its per-node subtasks, created once, fenced.
	err := leader.InTx(ctx, func(ctx context.Context, tx *statestore.Store) error {
		if err := tx.CheckLeader(ctx, term); err != nil {
			return err
		}
		if _, err := tx.GetTask(ctx, deployTaskID); err == nil {
			return nil
		} else if !errors.Is(err, statestore.ErrNotFound) {
			return err
		}
		batch := []statestore.NewTask{{ID: deployTaskID, Action: "deploy_nodes", DesignRef: d.httpURL, CreatedBy: name, Status: statestore.StatusRequested}}
		for i := 0; i < d.cfg.Nodes; i++ {
			batch = append(batch, statestore.NewTask{ParentID: &deployTaskID, Action: "deploy_node", DesignRef: d.httpURL,
				CreatedBy: name, RequestContext: []byte(fmt.Sprintf(`{"node": "node%02d"}`, i+1))})
		}
		if _, err := tx.CreateTasks(ctx, batch...); err != nil {
			return err
		}
		d.out.printf("%s created deploy_nodes %s with %d deploy_node subtasks", name, deployTaskID, d.cfg.Nodes)
		return nil
	})
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		// The workers here never die, so nothing should be stale; a leader
		// does this all the same.
		if _, err := leader.RequeueStaleTasks(ctx, time.Now().Add(-time.Minute)); err != nil {
			return err
		}
		active, err := d.store.ListSubtasks(ctx, deployTaskID, statestore.ActiveSubtasks)
		if err != nil {
			return err
		}
		d.mu.Lock()
		electedAfterKill := d.killedTerm != 0 && term > d.killedTerm
		d.mu.Unlock()
		// Only a leader elected after the kill completes deploy_nodes, so
		// the failover always happens before the end.
		if len(active) == 0 && electedAfterKill {
			err := leader.InTx(ctx, func(ctx context.Context, tx *statestore.Store) error {
				if err := tx.CheckLeader(ctx, term); err != nil {
					return err
				}
				t, err := tx.GetTask(ctx, deployTaskID)
				if err != nil || t.Status == statestore.StatusComplete {
					return err
				}
				// Only a claim makes a task running: queue the deploy task,
				// claim it (the only deploy_nodes task) and complete it
				// under that attempt, all in this transaction.
				if t.Status == statestore.StatusRequested {
					queued := statestore.StatusQueued
					if t, err = tx.UpdateTask(ctx, deployTaskID, t.Version, statestore.TaskUpdate{Status: &queued}); err != nil {
						return err
					}
				}
				if t.Status == statestore.StatusQueued {
					claimed, err := tx.ClaimTasks(ctx, name, 1, "deploy_nodes")
					if err != nil {
						return err
					}
					if len(claimed) != 1 || claimed[0].ID != deployTaskID {
						return fmt.Errorf("demo: claimed %d deploy_nodes tasks, want the deploy task", len(claimed))
					}
					t = claimed[0]
				}
				done, rs, msg := statestore.StatusComplete, statestore.ResultSuccess, fmt.Sprintf("%d nodes deployed", d.cfg.Nodes)
				_, err = tx.UpdateTask(ctx, deployTaskID, t.Version, statestore.TaskUpdate{
					Status: &done, ResultStatus: &rs, ResultMessage: &msg, Attempt: t.Attempt})
				return err
			})
			if err != nil {
				return err
			}
			d.doneOnce.Do(func() { close(d.done) })
		}
		select {
		case <-ctx.Done():
		case <-time.After(150 * time.Millisecond):
		}
	}
	return nil
}

// work deploys nodes: claim a subtask, report progress, collect data,
// record the boot action, complete.
func (d *run) work(ctx context.Context, name string) {
	for ctx.Err() == nil {
		tasks, err := d.store.ClaimTasksWait(ctx, name, 1, "deploy_node")
		if err != nil {
			continue
		}
		for _, t := range tasks {
			d.mu.Lock()
			d.claims[t.ID]++
			d.mu.Unlock()
			node := strings.Trim(strings.TrimPrefix(string(t.RequestContext), `{"node": `), `"}`)
			if err := d.deployNode(ctx, name, node, t); err != nil && ctx.Err() == nil {
				d.out.printf("%s: %s failed: %v", name, node, err)
			}
		}
	}
}

func (d *run) deployNode(ctx context.Context, worker, node string, t *statestore.Task) error {
	for _, step := range []string{"power on via IPMI", "PXE boot", "install operating system"} {
		time.Sleep(time.Duration(100+rand.IntN(150)) * time.Millisecond)
		if _, err := d.store.AppendMessage(ctx, t.ID, statestore.NewMessage{Message: step, Context: node, ContextType: "node",
			Extra: []byte(fmt.Sprintf(`{"worker": %q}`, worker))}); err != nil {
			return err
		}
	}
	lshw := fmt.Sprintf(`{"id": %q, "class": "system", "cpus": 64, "memory_gib": 512}`, node)
	if _, err := d.store.InsertBuildData(ctx, statestore.NewBuildData{NodeName: node, TaskID: t.ID, Generator: "lshw",
		DataFormat: "application/json", DataElement: lshw}); err != nil {
		return err
	}
	if _, _, err := d.store.CreateBootActionContext(ctx, node, t.ID); err != nil {
		return err
	}
	if _, err := d.store.CreateBootActionStatus(ctx, statestore.NewBootActionStatus{NodeName: node, ActionName: "hw_config",
		TaskID: t.ID, Status: statestore.ResultSuccess}); err != nil {
		return err
	}
	if err := d.awaitTurn(ctx); err != nil {
		return err
	}
	if _, err := d.store.CompleteTasks(ctx, statestore.ResultSuccess, t.Claim()); err != nil {
		return err
	}
	d.mu.Lock()
	d.completed++
	if d.completed == d.half {
		close(d.halfway)
	}
	d.mu.Unlock()
	return nil
}

// awaitTurn lets the first half of the completions through and holds the
// others back until the leader has been killed.
func (d *run) awaitTurn(ctx context.Context) error {
	d.mu.Lock()
	if d.passed < d.half {
		d.passed++
		d.mu.Unlock()
		return nil
	}
	d.mu.Unlock()
	select {
	case <-d.killed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// watch prints progress, kills the leader half-way and waits for the end.
func (d *run) watch(ctx context.Context) error {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	halfway := d.halfway
	for {
		select {
		case <-d.done:
			d.progress(ctx)
			return nil
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("demo: did not finish in time: %w", ctx.Err())
			}
			return fmt.Errorf("demo: interrupted before the end (cleaning up): %w", ctx.Err())
		case <-tick.C:
			d.progress(ctx)
		case <-halfway:
			halfway = nil
			d.progress(ctx)
			if err := d.killLeader(ctx); err != nil {
				return err
			}
		}
	}
}

func (d *run) progress(ctx context.Context) int {
	kids, err := d.store.ListSubtasks(ctx, deployTaskID, statestore.AllSubtasks)
	if err != nil {
		return 0
	}
	by := map[statestore.TaskStatus]int{}
	msgs := int64(0)
	for _, k := range kids {
		by[k.Status]++
		msgs += k.LastMessageSeq
	}
	d.mu.Lock()
	leader, term := d.leaderName, d.leaderTerm
	d.mu.Unlock()
	d.out.printf("leader %s (term %d) | nodes: %d complete, %d running, %d queued | %d messages",
		orDash(leader), term, by[statestore.StatusComplete], by[statestore.StatusRunning], by[statestore.StatusQueued], msgs)
	return by[statestore.StatusComplete]
}

// killLeader terminates the leader's backend, as a crash would end it.
func (d *run) killLeader(ctx context.Context) error {
	var l *statestore.Leader
	for {
		var err error
		if l, err = d.store.Leader(ctx); err != nil {
			return err
		}
		d.mu.Lock()
		d.killedTerm, d.killedAt = l.Term, time.Now()
		d.mu.Unlock()
		ok, err := db.New().TerminateBackend(ctx, d.pool, int32(l.BackendPID))
		if err != nil {
			return fmt.Errorf("demo: kill the leader's backend: %w", err)
		}
		if ok {
			break
		}
		// That leader's session ended on its own just now (a loaded
		// machine): kill whoever leads next.
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo: kill the leader: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	d.mu.Lock()
	complete := d.completed
	d.mu.Unlock()
	close(d.killed)
	d.out.printf("KILLED the leader %s (term %d) with %d of %d nodes complete: its database session is gone",
		l.Hostname, l.Term, complete, d.cfg.Nodes)
	// The deposed term may still try to write: fencing refuses it.
	for {
		cur, err := d.store.Leader(ctx)
		if err == nil && cur.Term > l.Term {
			_, ferr := d.store.AsLeader(l.Term).RequeueStaleTasks(ctx, time.Now())
			d.mu.Lock()
			d.fencedErr = ferr
			d.mu.Unlock()
			d.out.printf("fenced write with the old term %d: %v", l.Term, ferr)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo: no new leader after the kill: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// summary prints the outcome and checks the invariants.
func (d *run) summary(ctx context.Context) error {
	page, err := d.store.ListTasks(ctx, statestore.TaskFilter{Limit: 10000, WithMessages: true})
	if err != nil {
		return err
	}
	by := map[string]int{}
	var problems []string
	messages := 0
	for _, t := range page.Tasks {
		by[string(t.Status)]++
		messages += len(t.Messages)
		for i, m := range t.Messages {
			if m.Sequence != int64(i+1) {
				problems = append(problems, fmt.Sprintf("task %s: message %d has sequence %d", t.ID, i+1, m.Sequence))
				break
			}
		}
		if int64(len(t.Messages)) != t.LastMessageSeq {
			problems = append(problems, fmt.Sprintf("task %s: %d messages, last sequence %d", t.ID, len(t.Messages), t.LastMessageSeq))
		}
		if t.Status != statestore.StatusComplete {
			problems = append(problems, fmt.Sprintf("task %s (%s) is %s, not complete", t.ID, t.Action, t.Status))
		}
	}
	d.mu.Lock()
	for id, n := range d.claims {
		if n > 1 {
			problems = append(problems, fmt.Sprintf("task %s claimed %d times", id, n))
		}
	}
	claimed := len(d.claims)
	failover, fencedErr := d.failover, d.fencedErr
	d.mu.Unlock()
	if claimed != d.cfg.Nodes {
		problems = append(problems, fmt.Sprintf("%d node tasks claimed, want %d", claimed, d.cfg.Nodes))
	}
	if !errors.Is(fencedErr, statestore.ErrNotLeader) {
		problems = append(problems, fmt.Sprintf("the deposed leader's fenced write was not refused: %v", fencedErr))
	}
	history, err := d.store.LeaderHistory(ctx, 100)
	if err != nil {
		return err
	}
	sort.Slice(history, func(i, j int) bool { return history[i].Term < history[j].Term })
	for i := 1; i < len(history); i++ {
		prev, cur := history[i-1], history[i]
		if cur.Term != prev.Term+1 || prev.EndedAt == nil || prev.EndedAt.After(cur.ElectedAt) {
			problems = append(problems, fmt.Sprintf("leadership terms %d and %d overlap or skip", prev.Term, cur.Term))
		}
	}
	var buildRows, bootRows int
	if err := d.pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM build_data), (SELECT count(*) FROM boot_action_status)").Scan(&buildRows, &bootRows); err != nil {
		return err
	}

	d.out.printf("---- summary ----")
	d.out.printf("tasks: %d (%s)", len(page.Tasks), counts(by))
	d.out.printf("messages: %d; build data rows: %d; boot action statuses: %d", messages, buildRows, bootRows)
	for _, h := range history {
		end := "leading until the demo stopped"
		if h.EndedAt != nil {
			end = h.EndReason
		}
		d.out.printf("term %d: %s (%s)", h.Term, h.Hostname, end)
	}
	d.out.printf("failover after the kill: %v", failover.Round(time.Millisecond))
	if len(problems) > 0 {
		for _, p := range problems {
			d.out.printf("INVARIANT BROKEN: %s", p)
		}
		return fmt.Errorf("demo: %d invariant(s) broken", len(problems))
	}
	d.out.printf("invariants hold: every task claimed once, message sequences gap-free, one leader at a time, stale term fenced")
	return nil
}

func counts(by map[string]int) string {
	var parts []string
	for k, v := range by {
		parts = append(parts, fmt.Sprintf("%d %s", v, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// lineWriter prints timestamped lines, safe for concurrent use.
type lineWriter struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func (l *lineWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "[%5.1fs] %s\n", time.Since(l.start).Seconds(), fmt.Sprintf(format, args...))
}
