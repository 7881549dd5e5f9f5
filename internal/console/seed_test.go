package console_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/internal/hostile"
	"github.com/drydock-go/statemgmt/internal/leadertest"
	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

func TestMain(m *testing.M) { os.Exit(statetest.Main(m)) }

// fixture is a seeded database: ordinary tasks of several actions and
// statuses, a tree, a task and a node carrying every hostile value, a
// leadership history, and a boot action key that must appear nowhere.
type fixture struct {
	store   *statestore.Store
	pool    *pgxpool.Pool
	tasks   []*statestore.Task // the ordinary tasks, as created
	root    *statestore.Task   // root of the tree
	subtask int                // tasks under root
	evil    *statestore.Task   // the task holding every hostile value
	node    string             // the node with boot actions and build data
	key     statestore.IdentityKey
	// secrets must appear on no page: the boot action key in every form.
	secrets map[string]string
}

// seed builds the fixture: n ordinary tasks (actions deploy_node,
// prepare_site, verify_site in turn; every third claimed, every ninth of
// those completed), a root with subtasks children each with one grandchild.
func seed(t testing.TB, n, children int) *fixture {
	t.Helper()
	ctx := context.Background()
	pool := statetest.NewPool(t)
	s := statestore.New(pool, statestore.Options{})
	t.Cleanup(s.Close)
	f := &fixture{store: s, pool: pool, node: "node-01"}
	actions := []string{"deploy_node", "prepare_site", "verify_site"}
	for start := 0; start < n; start += 1000 {
		batch := make([]statestore.NewTask, 0, 1000)
		for i := start; i < min(n, start+1000); i++ {
			st := statestore.StatusQueued
			if i%5 == 4 {
				st = statestore.StatusRequested
			}
			batch = append(batch, statestore.NewTask{Action: actions[i%3], Status: st, CreatedBy: fmt.Sprintf("seed-%d", i)})
		}
		created, err := s.CreateTasks(ctx, batch...)
		if err != nil {
			t.Fatal(err)
		}
		f.tasks = append(f.tasks, created...)
	}
	// Some of each status: claim a third of the queued deploy_node tasks,
	// complete some of those.
	claimed, err := s.ClaimTasks(ctx, "seed-worker", n/9+1, "deploy_node")
	if err != nil {
		t.Fatal(err)
	}
	var done []statestore.Claim
	for i, c := range claimed {
		if i%3 == 0 {
			done = append(done, c.Claim())
		}
	}
	if len(done) > 0 {
		if _, err := s.CompleteTasks(ctx, statestore.ResultSuccess, done...); err != nil {
			t.Fatal(err)
		}
	}
	f.root, err = s.CreateTask(ctx, statestore.NewTask{Action: "deploy_site", CreatedBy: "operator"})
	if err != nil {
		t.Fatal(err)
	}
	var kids []statestore.NewTask
	ids := make([]uuid.UUID, children)
	for i := range children {
		ids[i] = uuid.Must(uuid.NewV7())
		kids = append(kids, statestore.NewTask{ID: ids[i], ParentID: &f.root.ID, Action: "deploy_node", CreatedBy: "operator"})
	}
	for i := range children {
		kids = append(kids, statestore.NewTask{ParentID: &ids[i], Action: "verify_node", CreatedBy: "operator"})
	}
	for start := 0; start < len(kids); start += 1000 {
		if _, err := s.CreateTasks(ctx, kids[start:min(len(kids), start+1000)]...); err != nil {
			t.Fatal(err)
		}
	}
	f.subtask = 2 * children
	if _, err := s.AppendMessages(ctx, f.root.ID,
		statestore.NewMessage{Message: "site deployment started", Context: "site-a", ContextType: "site"},
		statestore.NewMessage{Message: "node-01 did not answer", Error: true, Context: "node-01", ContextType: "node"}); err != nil {
		t.Fatal(err)
	}
	f.seedHostile(t)
	return f
}

// clip cuts v to n bytes (the store's length limits), keeping it a payload.
func clip(v string, n int) string {
	if len(v) > n {
		return v[:n]
	}
	return v
}

// seedHostile stores every hostile value the store accepts in every field
// a page shows.
func (f *fixture) seedHostile(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	s := f.store
	var err error
	all := append(append([]hostile.Value{}, hostile.Markup...), hostile.Strings...)
	ctxJSON, err := json.Marshal(map[string]any{"markup": hostile.Markup})
	if err != nil {
		t.Fatal(err)
	}
	f.evil, err = s.CreateTask(ctx, statestore.NewTask{Action: "hostile", CreatedBy: hostile.Markup[0].V,
		DesignRef: hostile.Markup[1].V, RequestContext: ctxJSON, NodeFilter: json.RawMessage(`{"k":"</pre><script>alert(20)</script>"}`)})
	if err != nil {
		t.Fatal(err)
	}
	var markup []string
	for _, h := range hostile.Markup {
		markup = append(markup, h.V)
	}
	msg, reason := strings.Join(markup, "\n"), hostile.Markup[2].V
	if _, err := s.UpdateTask(ctx, f.evil.ID, f.evil.Version, statestore.TaskUpdate{ResultMessage: &msg,
		ResultReason: &reason, Successes: markup[:4], Failures: markup[4:8],
		Links: json.RawMessage(`[{"href":"javascript:alert(21)","title":"<img src=x onerror=alert(22)>"}]`)}); err != nil {
		t.Fatal(err)
	}
	// Subtasks whose creator is hostile: the tree shows actions, statuses.
	for _, h := range hostile.Markup[:3] {
		if _, err := s.CreateSubtask(ctx, f.evil.ID, statestore.NewTask{Action: "hostile_child", CreatedBy: clip(h.V, 256)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range all {
		m := statestore.NewMessage{Message: h.V, Context: clip(h.V, 1024), ContextType: clip(h.V, 64)}
		if _, err := s.AppendMessage(ctx, f.evil.ID, m); err != nil {
			// The store rejects some (NUL bytes, invalid UTF-8): fine, it says so.
			if !strings.Contains(err.Error(), "invalid") {
				t.Fatalf("append %s: %v", h.Name, err)
			}
		}
	}
	// A node: boot action context (the key must never show), statuses and
	// build data with hostile names and contents.
	bc, key, err := s.CreateBootActionContext(ctx, f.node, f.root.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.key = key
	var digest []byte
	if err := f.pool.QueryRow(ctx, `SELECT identity_key_hash FROM boot_action WHERE node_name = $1`, bc.NodeName).Scan(&digest); err != nil {
		t.Fatal(err)
	}
	f.secrets = map[string]string{"key hex": key.RevealHex(), "key hex upper": strings.ToUpper(key.RevealHex()),
		"digest hex": fmt.Sprintf("%x", digest), "digest hex upper": fmt.Sprintf("%X", digest)}
	for _, h := range hostile.Markup {
		if _, err := s.CreateBootActionStatus(ctx, statestore.NewBootActionStatus{NodeName: f.node,
			ActionName: clip(h.V, 64), TaskID: f.root.ID}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.InsertBuildData(ctx, statestore.NewBuildData{NodeName: f.node, TaskID: f.evil.ID,
			Generator: clip(h.V, 256), DataFormat: "text/plain", DataElement: h.V}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.InsertBuildData(ctx, statestore.NewBuildData{NodeName: f.node, TaskID: f.root.ID,
		Generator: "lshw", DataFormat: "application/json", DataElement: `{"product":"PowerEdge R640","cores":48}`}); err != nil {
		t.Fatal(err)
	}
	// Leadership: a resigned term and a current one, of an instance whose
	// hostname is hostile.
	db := pool2url(t, f.pool)
	e, err := statestore.NewElector(statestore.ElectorConfig{ConnString: db, Hostname: hostile.Markup[1].V})
	if err != nil {
		t.Fatal(err)
	}
	_, resign := leadertest.Lead(t, e, 0)
	resign()
	e.Close()
	// The second term stays led (Run keeps its lock) until the test ends.
	e2, err := statestore.NewElector(statestore.ElectorConfig{ConnString: db, Hostname: "orchestrator-2"})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	elected, ran := make(chan int64, 1), make(chan error, 1)
	go func() {
		ran <- e2.Run(runCtx, func(ctx context.Context, term int64) error {
			elected <- term
			<-ctx.Done()
			return nil
		})
	}()
	t.Cleanup(func() {
		stop()
		if err := <-ran; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("elector: %v", err)
		}
	})
	select {
	case <-elected:
	case err := <-ran:
		t.Fatalf("elector stopped before leading: %v", err)
	}
}

// pool2url is the connection string of the fixture's database.
func pool2url(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	return pool.Config().ConnString()
}
