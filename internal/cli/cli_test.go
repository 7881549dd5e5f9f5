package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.yaml.in/yaml/v3"

	"github.com/drydock-go/statemgmt/internal/leadertest"
	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// TestMain builds statectl once for the tests that run the binary
// (binary_test.go), then runs every test with statetest's server.
func TestMain(m *testing.M) { os.Exit(buildStatectlThen(m)) }

type result struct {
	code           int
	stdout, stderr string
}

// run runs statectl in-process against url.
func run(t *testing.T, url, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	if url != "" {
		args = append([]string{"--database-url", url}, args...)
	}
	code := Main(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func (r result) want(t *testing.T, code int, contains ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	for _, c := range contains {
		if !strings.Contains(r.stdout+r.stderr, c) {
			t.Fatalf("output lacks %q\nstdout: %s\nstderr: %s", c, r.stdout, r.stderr)
		}
	}
	if code != 0 && strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
		t.Fatalf("error is not one line on stderr: %q", r.stderr)
	}
}

func setup(t *testing.T) (string, *statestore.Store) {
	t.Helper()
	db := statetest.New(t)
	pool, err := pgxpool.New(context.Background(), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := statestore.New(pool, statestore.Options{})
	t.Cleanup(s.Close)
	return db.URL, s
}

// migrate down lists the tables it would drop with their rows and asks;
// anything but yes changes nothing (issue 22: it used to drop everything
// without a word).
func TestMigrateDownAsksWithTablesAndRows(t *testing.T) {
	url, s := setup(t)
	ctx := context.Background()
	if _, err := s.CreateTasks(ctx, statestore.NewTask{Action: "noop"}, statestore.NewTask{Action: "noop"}); err != nil {
		t.Fatal(err)
	}
	n := statestore.LatestSchemaVersion()
	for _, answer := range []string{"", "n\n", "no\n", "maybe\n"} {
		r := run(t, url, answer, "migrate", "down", "99")
		if r.code != 1 || !strings.Contains(r.stderr, "cancelled: nothing changed") {
			t.Fatalf("answer %q: exit %d, stderr %q; want 1 and cancelled", answer, r.code, r.stderr)
		}
		for _, want := range []string{fmt.Sprintf("from version %d to 0 DROPS", n), "tasks", "2 rows", "result_message", "0 rows", "continue? [y/N]"} {
			if !strings.Contains(r.stderr, want) {
				t.Fatalf("answer %q: prompt lacks %q:\n%s", answer, want, r.stderr)
			}
		}
		run(t, url, "", "migrate", "status").want(t, 0, fmt.Sprintf("version %d of %d: up to date", n, n))
	}
	if page, err := s.ListTasks(ctx, statestore.TaskFilter{}); err != nil || len(page.Tasks) != 2 {
		t.Fatalf("tasks after cancelled down: %v, %v", page, err)
	}
	r := run(t, url, "y\n", "migrate", "down", "99")
	r.want(t, 0, "schema at version 0", "tasks")
	run(t, url, "", "migrate", "status").want(t, 0, fmt.Sprintf("version 0 of %d", n))
}

func TestMigrateCommands(t *testing.T) {
	url := statetest.NewEmpty(t).URL
	n := statestore.LatestSchemaVersion() // derived: migrations are added
	run(t, url, "", "migrate", "status").want(t, 0, fmt.Sprintf("version 0 of %d: %d migration(s) pending", n, n))
	run(t, url, "", "migrate", "up").want(t, 0, fmt.Sprintf("schema at version %d (was 0; applied %d)", n, n))
	run(t, url, "", "migrate", "down", "2", "--yes").want(t, 0, fmt.Sprintf("schema at version %d (was %d)", n-2, n))
	run(t, url, "", "migrate", "status").want(t, 0, fmt.Sprintf("version %d of %d: 2 migration(s) pending", n-2, n))
	run(t, url, "", "migrate", "down", "zero").want(t, 2, "N must be a positive number")
	run(t, url, "", "migrate", "up").want(t, 0, fmt.Sprintf("schema at version %d", n))
}

func TestTaskCommands(t *testing.T) {
	ctx := context.Background()
	url, s := setup(t)
	r := run(t, url, "", "task", "create", "--action", "deploy_nodes", "--design-ref", "http://d/site.yaml", "--by", "ops", "-o", "json")
	r.want(t, 0)
	var created taskView
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil {
		t.Fatalf("task create -o json: %v\n%s", err, r.stdout)
	}
	if created.Action != "deploy_nodes" || created.Status != "queued" || created.CreatedBy != "ops" {
		t.Fatalf("created = %+v", created)
	}
	parent, _ := uuid.Parse(created.ID)
	kid, err := s.CreateSubtask(ctx, parent, statestore.NewTask{Action: "deploy_node"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendMessages(ctx, kid.ID, statestore.NewMessage{Message: "powering on", Context: "node01"},
		statestore.NewMessage{Message: "IPMI timeout", Error: true, Context: "node01"}); err != nil {
		t.Fatal(err)
	}

	run(t, url, "", "task", "list").want(t, 0, "ACTION", created.ID, kid.ID.String(), "deploy_node")
	r = run(t, url, "", "task", "list", "--action", "deploy_node", "-o", "json")
	r.want(t, 0)
	var listed struct{ Items []taskView }
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || len(listed.Items) != 1 || listed.Items[0].ID != kid.ID.String() {
		t.Fatalf("list --action -o json = %v, %s", err, r.stdout)
	}
	r = run(t, url, "", "task", "list", "--parent", created.ID, "-o", "yaml")
	r.want(t, 0)
	var y map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &y); err != nil || len(y["items"].([]any)) != 1 {
		t.Fatalf("list -o yaml = %v\n%s", err, r.stdout)
	}
	run(t, url, "", "task", "list", "--limit", "1").want(t, 0, "more: --cursor")

	run(t, url, "", "task", "show", kid.ID.String()).want(t, 0, "errors:", "1", "#1", "powering on", "ERROR node01", "IPMI timeout")
	run(t, url, "", "task", "tree", created.ID).want(t, 0, "deploy_nodes "+created.ID, "  deploy_node "+kid.ID.String())
	run(t, url, "", "task", "show", uuid.NewString()).want(t, 1, "not found")
	run(t, url, "", "task", "show", "not-a-uuid").want(t, 2, "is not a UUID")
	run(t, url, "", "task", "list", "--status", "done").want(t, 2, `--status "done" is not a task status`)
	run(t, url, "", "task", "list", "-o", "xml").want(t, 2, "unknown output format")
	run(t, url, "", "task", "list", "--bogus").want(t, 2, "unknown flag")
	run(t, url, "", "task", "create").want(t, 2, "--action is required")
	run(t, url, "", "task", "create", "--action", "Bad Action").want(t, 2, `--action "Bad Action": must be`)
	run(t, url, "", "frobnicate").want(t, 2, "unknown command")

	// Purge keeps trees with work in progress and says so; with nothing to
	// delete it does not ask (a script without --yes must not fail for that).
	r = run(t, url, "n\n", "task", "purge", "--older-than", "0s")
	r.want(t, 0,
		"finished (every task complete or terminated), deleted: 0 tasks",
		"active (work may be in progress), kept (--include-active deletes them): 2 tasks (queued 2)", "nothing to delete")
	if strings.Contains(r.stderr, "[y/N]") {
		t.Errorf("purge with nothing to delete asked:\n%s", r.stderr)
	}
	run(t, url, "", "task", "purge", "--older-than", "0s", "--yes").want(t, 0, "purged 0 tasks and 0 messages in 1 batches; kept 1 active trees")
	run(t, url, "", "task", "terminate", created.ID, "--by", "ops").want(t, 0, "terminated: 2 task(s) changed")
	run(t, url, "n\n", "task", "purge", "--older-than", "0s").want(t, 1, "deleted: 2 tasks (terminated 2)", "kept (--include-active deletes them): 0 tasks", "purge cancelled")
	run(t, url, "", "task", "purge", "--older-than", "0s", "--yes").want(t, 0, "purged 2 tasks and 2 messages in 1 batches")
	other, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_node"})
	if err != nil {
		t.Fatal(err)
	}
	run(t, url, "", "task", "purge", "--older-than", "0s", "--yes", "--include-active").want(t, 0,
		"ACTIVE (work may be in progress), deleted too (--include-active): 1 tasks (queued 1)", "purged 1 tasks")
	run(t, url, "", "task", "show", other.ID.String()).want(t, 1, "not found")
	run(t, url, "", "task", "purge", "--older-than", "thirty").want(t, 2, "want a number of days")
}

func TestMessagesBuildDataBootActionsLeader(t *testing.T) {
	ctx := context.Background()
	url, s := setup(t)
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_node"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendMessages(ctx, task.ID, statestore.NewMessage{Message: "one"}, statestore.NewMessage{Message: "two"}); err != nil {
		t.Fatal(err)
	}
	run(t, url, "", "msg", "tail", task.ID.String()).want(t, 0, "#1", "one", "#2", "two")
	run(t, url, "", "msg", "tail", uuid.NewString()).want(t, 1, "not found")

	if _, err := s.InsertBuildData(ctx, statestore.NewBuildData{NodeName: "node01", TaskID: task.ID, Generator: "lshw",
		DataFormat: "application/json", DataElement: `{"cpus": 64}`}); err != nil {
		t.Fatal(err)
	}
	run(t, url, "", "builddata", "list", "--node", "node01").want(t, 0, "GENERATOR", "lshw", "application/json", "12")
	run(t, url, "", "builddata", "list", "--node", "node01", "--latest", "--full").want(t, 0, `{"cpus": 64}`)
	run(t, url, "", "builddata", "list", "--node", "node01", "--task", task.ID.String(), "-o", "json").want(t, 0, `"data_size": 12`)
	run(t, url, "", "builddata", "list").want(t, 2, "--node is required")
	// Pages: a second record, one a page; the cursor printed leads to the other.
	if _, err := s.InsertBuildData(ctx, statestore.NewBuildData{NodeName: "node01", TaskID: task.ID, Generator: "dmesg",
		DataFormat: "text/plain", DataElement: "boot"}); err != nil {
		t.Fatal(err)
	}
	first := run(t, url, "", "builddata", "list", "--node", "node01", "--limit", "1")
	first.want(t, 0, "dmesg", "more: --cursor ")
	cursor := strings.TrimSpace(strings.TrimPrefix(first.stderr, "more: --cursor "))
	second := run(t, url, "", "builddata", "list", "--node", "node01", "--limit", "1", "--cursor", cursor)
	second.want(t, 0, "lshw")
	if strings.Contains(second.stdout, "dmesg") || strings.Contains(second.stderr, "more:") {
		t.Fatalf("second page: %+v", second)
	}
	run(t, url, "", "builddata", "list", "--node", "node01", "--limit", "1", "-o", "json").want(t, 0, `"next": "`)

	_, key, err := s.CreateBootActionContext(ctx, "node01", task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateBootActionStatus(ctx, statestore.NewBootActionStatus{NodeName: "node01", ActionName: "hw_config", TaskID: task.ID, Status: statestore.ResultSuccess}); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"table", "json", "yaml"} {
		r := run(t, url, "", "bootaction", "list", "--node", "node01", "-o", format)
		r.want(t, 0, "hw_config", "success")
		if strings.Contains(r.stdout, key.RevealHex()) {
			t.Fatalf("bootaction list -o %s printed the key", format)
		}
	}
	run(t, url, "", "bootaction", "list", "--node", "nosuch").want(t, 1, "not found")

	run(t, url, "", "leader", "show").want(t, 1, "no instance has ever led")
	el, err := statestore.NewElector(statestore.ElectorConfig{ConnString: url, Hostname: "orch-a"})
	if err != nil {
		t.Fatal(err)
	}
	leadertest.Lead(t, el, 0)
	run(t, url, "", "leader", "show").want(t, 0, "term:", "1", "orch-a", "leading")
	run(t, url, "", "leader", "show", "-o", "json").want(t, 0, `"term": 1`)
}

func TestDesignFetch(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // a stray file named after a flag value would land here
	doc := filepath.Join(dir, "site.yaml")
	if err := os.WriteFile(doc, []byte("kind: Site\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	uri := "file://" + doc

	// No file, or "-": the document itself on stdout, the metadata on stderr.
	for _, args := range [][]string{{}, {"--out-file", "-"}} {
		r := run(t, "", "", append([]string{"design", "fetch", uri}, args...)...)
		r.want(t, 0)
		if r.stdout != "kind: Site\n" || !strings.Contains(r.stderr, "sha256:") {
			t.Fatalf("design fetch %v: stdout %q (want the document), stderr %q (want the metadata)", args, r.stdout, r.stderr)
		}
	}
	// -o is the output format, as everywhere in statectl: it never names a file.
	r := run(t, "", "", "design", "fetch", uri, "-o", "json")
	r.want(t, 0)
	var meta map[string]any
	if err := json.Unmarshal([]byte(r.stderr), &meta); err != nil || meta["size"] != 11.0 || r.stdout != "kind: Site\n" {
		t.Fatalf("-o json: stdout %q, stderr %q (%v)", r.stdout, r.stderr, err)
	}
	run(t, "", "", "design", "fetch", uri, "-o", "copy.yaml").want(t, 2, "unknown output format", "--out-file")
	for _, stray := range []string{"json", "copy.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, stray)); err == nil {
			t.Fatalf("-o wrote a file named %s", stray)
		}
	}

	// --out-file FILE: the document in FILE, the metadata on stdout.
	outFile := filepath.Join(dir, "copy.yaml")
	run(t, "", "", "design", "fetch", uri, "--out-file", outFile).want(t, 0, "sha256:", "size:", "11", "written to:", outFile)
	if b, err := os.ReadFile(outFile); err != nil || string(b) != "kind: Site\n" {
		t.Fatalf("--out-file wrote %q, %v", b, err)
	}
	r = run(t, "", "", "design", "fetch", uri, "--out-file", outFile, "--output", "yaml")
	r.want(t, 0)
	var y map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &y); err != nil || y["written_to"] != outFile {
		t.Fatalf("--out-file -o yaml: %v\n%s", err, r.stdout)
	}

	// A URI that is not one statectl can fetch is a wrong command line: exit 2.
	run(t, "", "", "design", "fetch", "file:relative").want(t, 2, "absolute path")
	run(t, "", "", "design", "fetch", "gopher://x/y").want(t, 2, "unsupported scheme")
}

// Errors name statectl's own knobs (--root, STATECTL_SERVICE_TOKEN), never the
// Go options behind them.
func TestDesignFetchErrorsNameTheCLIKnobs(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "designs")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	inside := filepath.Join(root, "site.yaml")
	outside := filepath.Join(dir, "other.yaml")
	for _, f := range []string{inside, outside} {
		if err := os.WriteFile(f, []byte("kind: Site\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	noGoNames := func(r result) {
		t.Helper()
		for _, goName := range []string{"Options.", "Roots[", "Tokens", "TokenSource"} {
			if strings.Contains(r.stderr, goName) {
				t.Fatalf("error names the Go option %q: %s", goName, r.stderr)
			}
		}
	}
	r := run(t, "", "", "design", "fetch", "file://"+inside, "--root", filepath.Join(dir, "nonexistent"))
	r.want(t, 2, "--root", "no such directory")
	noGoNames(r)
	r = run(t, "", "", "design", "fetch", "file://"+inside, "--root", inside)
	r.want(t, 2, "--root", "not a directory")
	noGoNames(r)
	r = run(t, "", "", "design", "fetch", "file://"+outside, "--root", root)
	r.want(t, 1, "outside the allowed roots", "--root")
	noGoNames(r)
	t.Chdir(dir)
	run(t, "", "", "design", "fetch", "file://"+inside, "--root", "designs").want(t, 0, "kind: Site") // relative --root

	var auth atomic.Value
	auth.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
		w.Write([]byte("documents"))
	}))
	defer srv.Close()
	t.Setenv("STATECTL_SERVICE_TOKEN", "")
	for _, scheme := range []string{"deckhand+", "promenade+"} {
		r = run(t, "", "", "design", "fetch", scheme+srv.URL+"/revisions/3/rendered-documents")
		r.want(t, 2, "STATECTL_SERVICE_TOKEN")
		noGoNames(r)
	}
	if got := auth.Load().(string); got != "" {
		t.Fatalf("a request went out without a token: %q", got)
	}
	t.Setenv("STATECTL_SERVICE_TOKEN", "tok-123")
	run(t, "", "", "design", "fetch", "deckhand+"+srv.URL+"/revisions/3/rendered-documents").want(t, 0, "documents")
	if got := auth.Load().(string); got != "Bearer tok-123" {
		t.Fatalf("Authorization = %q", got)
	}
}

// A failure after retries is one line on stderr: the error, which counts the
// attempts; no log line besides.
func TestDesignFetchRetriedFailureIsOneLine(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "0") // retry at once
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	r := run(t, "", "", "design", "fetch", srv.URL+"/site.yaml")
	r.want(t, 1, "giving up after 4 attempt(s)", "503") // want() also checks: one line
	if calls.Load() != 4 {
		t.Fatalf("server saw %d requests, want 4", calls.Load())
	}
	if !strings.HasPrefix(r.stderr, "statectl: ") || r.stdout != "" {
		t.Fatalf("stdout %q, stderr %q", r.stdout, r.stderr)
	}
}

func TestConnectionErrors(t *testing.T) {
	r := run(t, "postgres://orch:S3cretPw@127.0.0.1:1/state?connect_timeout=2", "", "task", "list")
	r.want(t, 1, "cannot connect to PostgreSQL")
	if strings.Contains(r.stderr, "S3cretPw") {
		t.Fatalf("the password leaked: %s", r.stderr)
	}
	run(t, "postgres://h:notaport/x", "", "task", "list").want(t, 2, "cannot be parsed")
}
