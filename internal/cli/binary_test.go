package cli

// Tests of statectl as a newcomer or a script meets it (issue 16): through
// the built binary, asserting exit codes, stdout and stderr.

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.yaml.in/yaml/v3"

	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// statectlBin is the statectl binary TestMain built.
var statectlBin string

// buildStatectlThen builds ./cmd/statectl into a temporary directory, runs
// the tests, and removes the directory.
func buildStatectlThen(m *testing.M) int {
	dir, err := os.MkdirTemp("", "statectl-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	statectlBin = filepath.Join(dir, "statectl")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", statectlBin, "github.com/drydock-go/statemgmt/cmd/statectl")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build statectl: %v\n%s", err, out)
		return 1
	}
	return statetest.Main(m)
}

// binRun is one run of the binary.
type binRun struct {
	args           []string
	code           int
	stdout, stderr string
}

// cleanEnv is the environment without the variables that choose a
// database, so that only what a test passes counts.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DATABASE_URL=") || strings.HasPrefix(kv, "PG") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// statectl runs the binary with env (nil: cleanEnv()) and stdin.
func statectl(t *testing.T, env []string, stdin string, args ...string) binRun {
	t.Helper()
	if env == nil {
		env = cleanEnv()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, statectlBin, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := binRun{args: args, stdout: out.String(), stderr: errOut.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("statectl %q: %v", args, err)
	}
	return r
}

// on runs statectl against the database at url.
func on(t *testing.T, url string, args ...string) binRun {
	t.Helper()
	return statectl(t, nil, "", append([]string{"--database-url", url}, args...)...)
}

// want checks the exit code and that stdout+stderr hold every string.
func (r binRun) want(t *testing.T, code int, contains ...string) binRun {
	t.Helper()
	if r.code != code {
		t.Fatalf("statectl %q: exit code %d, want %d\nstdout: %s\nstderr: %s", r.args, r.code, code, r.stdout, r.stderr)
	}
	for _, c := range contains {
		if !strings.Contains(r.stdout+r.stderr, c) {
			t.Fatalf("statectl %q: output lacks %q\nstdout: %s\nstderr: %s", r.args, c, r.stdout, r.stderr)
		}
	}
	return r
}

// wantErrorLine checks an error exit: the code, nothing on stdout, and one
// line on stderr, "statectl: ...", holding every string.
func (r binRun) wantErrorLine(t *testing.T, code int, contains ...string) {
	t.Helper()
	r.want(t, code, contains...)
	if r.stdout != "" {
		t.Errorf("statectl %q: stdout %q, want nothing", r.args, r.stdout)
	}
	if line := strings.TrimSuffix(r.stderr, "\n"); strings.Contains(line, "\n") || !strings.HasPrefix(line, "statectl: ") {
		t.Errorf("statectl %q: stderr is not one line \"statectl: ...\": %q", r.args, r.stderr)
	}
}

// goFieldName matches what a Go field name looks like in a message:
// filter.Statuses[0], query.NodeName, opts.BatchSize, task.Action.
var goFieldName = regexp.MustCompile(`\b[a-z]+\.[A-Z][A-Za-z]*|\[[0-9]+\]`)

// goIdentifier matches a Go function or type name (ListTasks, BuildData,
// InvalidInputError) in a message; PostgreSQL is removed before matching.
var goIdentifier = regexp.MustCompile(`\b[A-Z][a-z]+[A-Z][A-Za-z]*\b`)

// An unknown subcommand anywhere is a usage error (exit 2) naming it, with
// suggestions; a command group without its subcommand prints its usage on
// stderr and exits 2; help asked for is on stdout, exit 0.
func TestBinaryUnknownSubcommandsAndGroups(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"frob"}, []string{`unknown command "frob" for "statectl"`}},
		{[]string{"migrate", "upp"}, []string{`unknown command "upp" for "statectl migrate"`, `did you mean "up"?`}},
		{[]string{"task", "lst"}, []string{`unknown command "lst" for "statectl task"`, `did you mean "list"?`}},
		{[]string{"msg", "tial"}, []string{`unknown command "tial" for "statectl msg"`, `"tail"`}},
		{[]string{"builddata", "lst"}, []string{`unknown command "lst" for "statectl builddata"`, `"list"`}},
		{[]string{"bootaction", "lst"}, []string{`unknown command "lst" for "statectl bootaction"`, `"list"`}},
		{[]string{"leader", "shw"}, []string{`unknown command "shw" for "statectl leader"`, `"show"`}},
		{[]string{"design", "fetc"}, []string{`unknown command "fetc" for "statectl design"`, `"fetch"`}},
		{[]string{"completion", "fsh"}, []string{`unknown command "fsh" for "statectl completion"`, `"fish"`}},
		{[]string{"help", "frob"}, []string{`unknown command "frob" for "statectl"`}},
		{[]string{"help", "task", "lst"}, []string{`unknown command "lst" for "statectl task"`}},
		{[]string{"task", "list", "extra"}, []string{`statectl task list takes no arguments, got "extra" (see statectl task list --help)`}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			statectl(t, nil, "", tc.args...).wantErrorLine(t, ExitUsage, tc.want...)
		})
	}
	for _, group := range [][]string{{}, {"task"}, {"migrate"}, {"msg"}, {"builddata"}, {"bootaction"}, {"leader"}, {"design"}, {"completion"}} {
		r := statectl(t, nil, "", group...)
		path := strings.Join(append([]string{"statectl"}, group...), " ")
		r.want(t, ExitUsage, "Usage:", path+" needs a subcommand")
		if r.stdout != "" {
			t.Errorf("statectl %q: usage on stdout, want stderr: %q", group, r.stdout)
		}
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, "statectl: "+path+" needs a subcommand: ") {
			t.Errorf("statectl %q: last line %q, want the error", group, last)
		}
	}
	for _, args := range [][]string{{"--help"}, {"task", "--help"}, {"help", "task"}, {"help", "migrate", "down"}} {
		r := statectl(t, nil, "", args...).want(t, ExitOK, "Usage:")
		if r.stderr != "" || !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("statectl %q: help not on stdout: stdout %q, stderr %q", args, r.stdout, r.stderr)
		}
	}
}

// Every command's bad flag values and arguments: exit 2, one line naming
// the flag (never a Go field name), nothing on stdout, nothing written.
func TestBinaryBadFlagValues(t *testing.T) {
	url, s := setup(t)
	ctx := context.Background()
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_node"})
	if err != nil {
		t.Fatal(err)
	}
	id := task.ID.String()
	long := func(n int) string { return strings.Repeat("x", n) }
	nilID := uuid.Nil.String()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		// task list
		{[]string{"task", "list", "--status", "runing"}, []string{`--status "runing" is not a task status (one of: requested, queued, running, terminating, terminated, complete)`}},
		{[]string{"task", "list", "--status", ""}, []string{"--status", "at least one value"}},
		{[]string{"task", "list", "--status", "queued,"}, []string{"--status", "a value is empty"}},
		{[]string{"task", "list", "--action", "Bad Action"}, []string{`--action "Bad Action": must be 1-64 characters`}},
		{[]string{"task", "list", "--action", ""}, []string{"--action", "at least one value"}},
		{[]string{"task", "list", "--parent", "nope"}, []string{`--parent "nope" is not a UUID`}},
		{[]string{"task", "list", "--parent", nilID}, []string{"--parent", "nil UUID"}},
		{[]string{"task", "list", "--limit", "0"}, []string{"--limit 0: must be between 1 and 10000"}},
		{[]string{"task", "list", "--limit", "-5"}, []string{"--limit -5: must be between 1 and 10000"}},
		{[]string{"task", "list", "--limit", "10001"}, []string{"--limit 10001: must be between 1 and 10000"}},
		{[]string{"task", "list", "--limit", "ten"}, []string{`--limit "ten": want a whole number`}},
		{[]string{"task", "list", "--cursor", "garbage"}, []string{`--cursor "garbage": is not a cursor statectl printed for this listing`}},
		{[]string{"task", "list", "--cursor", ""}, []string{"--cursor: must not be empty"}},
		{[]string{"task", "list", "-o", "xml"}, []string{`-o/--output "xml": unknown output format`}},
		{[]string{"task", "list", "--bogus"}, []string{"unknown flag: --bogus"}},
		// task show, tree
		{[]string{"task", "show", "nope"}, []string{`task id "nope" is not a UUID`}},
		{[]string{"task", "show", nilID}, []string{"task id", "nil UUID"}},
		{[]string{"task", "show"}, []string{"statectl task show: missing ID (usage: statectl task show ID; see --help)"}},
		{[]string{"task", "show", id, id}, []string{`statectl task show: unexpected argument "` + id + `" (usage: statectl task show ID; see --help)`}},
		{[]string{"task", "tree"}, []string{"statectl task tree: missing ID"}},
		{[]string{"task", "terminate"}, []string{"statectl task terminate: missing ID"}},
		{[]string{"msg", "tail"}, []string{"statectl msg tail: missing ID"}},
		{[]string{"task", "show", id, "-o", "xml"}, []string{`-o/--output "xml"`}},
		{[]string{"task", "tree", "nope"}, []string{`task id "nope" is not a UUID`}},
		{[]string{"task", "tree", id, "-o", "xml"}, []string{`-o/--output "xml"`}},
		// task create
		{[]string{"task", "create"}, []string{"--action is required (see statectl task create --help)"}},
		{[]string{"task", "create", "--action", "Bad Action"}, []string{`--action "Bad Action": must be 1-64 characters`}},
		{[]string{"task", "create", "--action", ""}, []string{`--action "": must not be empty`}},
		{[]string{"task", "create", "--action", "noop", "--status", "running"}, []string{`--status "running" is not a task status (one of: queued, requested)`}},
		{[]string{"task", "create", "--action", "noop", "--status", "bogus"}, []string{`--status "bogus"`}},
		{[]string{"task", "create", "--action", "noop", "--parent", "nope"}, []string{`--parent "nope" is not a UUID`}},
		{[]string{"task", "create", "--action", "noop", "--design-ref", long(2049)}, []string{"--design-ref", "the limit is 2048"}},
		{[]string{"task", "create", "--action", "noop", "--by", ""}, []string{"--by: must not be empty"}},
		{[]string{"task", "create", "--action", "noop", "--by", long(257)}, []string{"--by", "the limit is 256"}},
		{[]string{"task", "create", "--action", "noop", "-o", "xml"}, []string{`-o/--output "xml"`}},
		// task terminate
		{[]string{"task", "terminate", "nope"}, []string{`task id "nope" is not a UUID`}},
		{[]string{"task", "terminate", id, "--by", ""}, []string{"--by: must not be empty"}},
		{[]string{"task", "terminate", id, "--by", long(257)}, []string{"--by", "the limit is 256"}},
		// task purge
		{[]string{"task", "purge", "--yes"}, []string{"--older-than is required"}},
		{[]string{"task", "purge", "--older-than", "thirty", "--yes"}, []string{`--older-than "thirty"`}},
		{[]string{"task", "purge", "--older-than", "-1d", "--yes"}, []string{`--older-than "-1d"`}},
		{[]string{"task", "purge", "--older-than", "-5m", "--yes"}, []string{`--older-than "-5m"`}},
		{[]string{"task", "purge", "--older-than", "1d", "--batch", "0", "--yes"}, []string{"--batch 0: must be between 1 and 100000"}},
		{[]string{"task", "purge", "--older-than", "1d", "--batch", "-1", "--yes"}, []string{"--batch -1: must be between 1 and 100000"}},
		{[]string{"task", "purge", "--older-than", "1d", "--batch", "100001", "--yes"}, []string{"--batch 100001"}},
		// msg tail
		{[]string{"msg", "tail", "nope"}, []string{`task id "nope" is not a UUID`}},
		{[]string{"msg", "tail", id, "-o", "xml"}, []string{`-o/--output "xml"`}},
		// builddata list
		{[]string{"builddata", "list"}, []string{"--node is required"}},
		{[]string{"builddata", "list", "--node", ""}, []string{"--node: must not be empty"}},
		{[]string{"builddata", "list", "--node", "bad node!"}, []string{`--node "bad node!": must be letters, digits`}},
		{[]string{"builddata", "list", "--node", "node01", "--task", "nope"}, []string{`--task "nope" is not a UUID`}},
		{[]string{"builddata", "list", "--node", "node01", "--limit", "0"}, []string{"--limit 0: must be between 1 and 10000"}},
		{[]string{"builddata", "list", "--node", "node01", "--cursor", "garbage"}, []string{`--cursor "garbage": is not a cursor statectl printed for this listing`}},
		{[]string{"builddata", "list", "--node", "node01", "--latest", "--task", id}, []string{"--latest and --task cannot be combined"}},
		{[]string{"builddata", "list", "--node", "node01", "-o", "xml"}, []string{`-o/--output "xml"`}},
		// bootaction list
		{[]string{"bootaction", "list"}, []string{"--node is required"}},
		{[]string{"bootaction", "list", "--node", ""}, []string{"--node: must not be empty"}},
		{[]string{"bootaction", "list", "--node", "bad node!"}, []string{`--node "bad node!": must be letters, digits`}},
		{[]string{"bootaction", "list", "--node", "node01", "-o", "xml"}, []string{`-o/--output "xml"`}},
		// leader show
		{[]string{"leader", "show", "-o", "xml"}, []string{`-o/--output "xml"`}},
		{[]string{"leader", "show", "now"}, []string{`statectl leader show takes no arguments, got "now"`}},
		// design fetch
		{[]string{"design", "fetch", "gopher://x/y"}, []string{`the URI argument: unsupported scheme "gopher"`}},
		{[]string{"design", "fetch", "site.yaml"}, []string{`the URI argument: unsupported scheme: no scheme`}},
		{[]string{"design", "fetch", "file://host/etc/hosts"}, []string{`the URI argument: invalid URI: file URI must not name a host`}},
		{[]string{"design", "fetch", "https://user:secretpw@designs.example/site.yaml#md5=x"}, []string{"the URI argument: invalid URI"}},
		{[]string{"design", "fetch", "file:///etc/hosts", "-o", "xml"}, []string{`-o/--output "xml"`, "--out-file"}},
		{[]string{"design", "fetch", "file:///etc/hosts", "--root", "/nonexistent-statectl-root"}, []string{"--root /nonexistent-statectl-root: no such directory"}},
		{[]string{"design", "fetch"}, []string{"statectl design fetch: missing URI (usage: statectl design fetch URI; see --help)"}},
		{[]string{"design", "fetch", "file:///etc/hosts", "--out-file", "/nonexistent-statectl-dir/site.yaml"}, []string{"--out-file /nonexistent-statectl-dir/site.yaml: no such directory"}},
		{[]string{"builddata", "list", "--node", "node01", "--latest=maybe"}, []string{`--latest "maybe": want true or false`}},
		{[]string{"task", "purge", "--older-than", "1d", "--include-active=maybe"}, []string{`--include-active "maybe": want true or false`}},
		{[]string{"migrate", "down", "--yes=maybe"}, []string{`--yes "maybe": want true or false`}},
		{[]string{"msg", "tail", id, "--follow=maybe"}, []string{`--follow "maybe": want true or false`}},
		{[]string{"--database-url"}, []string{"flag needs an argument: --database-url"}},
		// Given empty (a script's unset variable), never DATABASE_URL's database instead.
		{[]string{"--database-url", "", "task", "list"}, []string{"--database-url: must not be empty (omit it to use DATABASE_URL or the PG* variables)"}},
		{[]string{"task", "create", "--action", "noop", "--database-url="}, []string{"--database-url: must not be empty"}},
		{[]string{"demo", "--database-url", " "}, []string{"--database-url: must not be empty"}},
		{[]string{"version", "--database-url", ""}, []string{"--database-url: must not be empty"}},
		// migrate
		{[]string{"migrate", "down", "zero"}, []string{`down "zero": N must be a positive number`}},
		{[]string{"migrate", "down", "0"}, []string{`down "0": N must be a positive number`}},
		{[]string{"migrate", "down", "-1"}, []string{"unknown shorthand flag: '1' in -1"}},
		{[]string{"migrate", "down", "1", "2"}, []string{`statectl migrate down: unexpected argument "2" (usage: statectl migrate down [N]; see --help)`}},
		{[]string{"migrate", "up", "now"}, []string{`statectl migrate up takes no arguments, got "now"`}},
		{[]string{"migrate", "status", "now"}, []string{`statectl migrate status takes no arguments, got "now"`}},
		// demo
		{[]string{"demo", "--nodes", "0"}, []string{"--nodes 0: must be between 1 and 200"}},
		{[]string{"demo", "--nodes", "-1"}, []string{"--nodes -1: must be between 1 and 200"}},
		{[]string{"demo", "--nodes", "201"}, []string{"--nodes 201: must be between 1 and 200"}},
		{[]string{"demo", "--nodes", "many"}, []string{`--nodes "many": want a whole number`}},
		// version
		{[]string{"version", "-o", "xml"}, []string{`-o/--output "xml"`}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := on(t, url, tc.args...)
			r.wantErrorLine(t, ExitUsage, tc.want...)
			if m := goFieldName.FindString(r.stderr); m != "" {
				t.Errorf("statectl %q: the message names the Go field %q: %s", tc.args, m, r.stderr)
			}
			if strings.Contains(r.stderr, "secretpw") {
				t.Errorf("statectl %q: the message holds the URI's password: %s", tc.args, r.stderr)
			}
			if m := goIdentifier.FindString(strings.ReplaceAll(r.stderr, "PostgreSQL", "")); m != "" {
				t.Errorf("statectl %q: the message names the Go function or type %q: %s", tc.args, m, r.stderr)
			}
			if strings.Contains(r.stderr, "arg(s)") {
				t.Errorf("statectl %q: cobra's argument count instead of the argument's name: %s", tc.args, r.stderr)
			}
		})
	}
	statectl(t, nil, "", "--database-url", "postgres://h:notaport/x", "task", "list").
		wantErrorLine(t, ExitUsage, "the database URL (--database-url or DATABASE_URL) cannot be parsed")

	// Nothing was written: still the one task, untouched, and no build data.
	page, err := s.ListTasks(ctx, statestore.TaskFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Tasks) != 1 || page.Tasks[0].Version != task.Version || page.Tasks[0].Status != task.Status {
		t.Errorf("tasks after the bad commands: %d, first %+v; want the one task untouched", len(page.Tasks), page.Tasks[0])
	}
}

// msg tail -o json writes JSON Lines and -o yaml YAML documents, also when
// following: a JSON Lines reader and a yaml.Decoder read every message back.
func TestBinaryMsgTailStreams(t *testing.T) {
	url, s := setup(t)
	ctx := context.Background()
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"power on", "line one\nline two: {not yaml}", `quotes " and --- and # too`}
	for i, text := range texts {
		if _, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: text, Error: i == 1, Context: "node01"}); err != nil {
			t.Fatal(err)
		}
	}
	wantMsgs := func(t *testing.T, got []messageView, n int) {
		t.Helper()
		if len(got) != n {
			t.Fatalf("read back %d messages, want %d: %+v", len(got), n, got)
		}
		for i, m := range got {
			if m.Sequence != int64(i+1) || m.Message != texts[i] || m.Context != "node01" {
				t.Fatalf("message %d read back as %+v", i+1, m)
			}
		}
	}

	r := on(t, url, "msg", "tail", task.ID.String(), "-o", "json").want(t, ExitOK)
	wantMsgs(t, readJSONLines(t, r.stdout), 3)
	r = on(t, url, "msg", "tail", task.ID.String(), "-o", "yaml").want(t, ExitOK)
	if !strings.HasPrefix(r.stdout, "---\n") || strings.Count(r.stdout, "\n---\n") != 2 {
		t.Fatalf("-o yaml: want 3 documents each opened by ---:\n%s", r.stdout)
	}
	wantMsgs(t, readYAMLDocs(t, r.stdout), 3)

	// -f: the stream goes on as messages come; Ctrl-C ends it with exit 0.
	for _, format := range []string{"json", "yaml"} {
		t.Run("follow "+format, func(t *testing.T) {
			stdout := followUntil(t, url, task.ID, format, func() {
				texts = append(texts, "appended while following "+format)
				if _, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: texts[len(texts)-1], Context: "node01"}); err != nil {
					t.Fatal(err)
				}
			}, "appended while following "+format)
			if format == "json" {
				wantMsgs(t, readJSONLines(t, stdout), len(texts))
			} else {
				wantMsgs(t, readYAMLDocs(t, stdout), len(texts))
			}
		})
	}
}

// readJSONLines reads JSON Lines: every line one complete JSON object.
func readJSONLines(t *testing.T, s string) []messageView {
	t.Helper()
	var out []messageView
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var m messageView
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("line %q is not one JSON object: %v", sc.Text(), err)
		}
		if dec.More() {
			t.Fatalf("line %q holds more than one JSON value", sc.Text())
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// readYAMLDocs reads a stream of YAML documents to its end.
func readYAMLDocs(t *testing.T, s string) []messageView {
	t.Helper()
	var out []messageView
	dec := yaml.NewDecoder(strings.NewReader(s))
	for {
		var m messageView
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("YAML document %d: %v\n%s", len(out)+1, err, s)
		}
		out = append(out, m)
	}
}

// lockedBuffer is a bytes.Buffer safe to read while a process writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// followUntil runs msg tail -f -o format, waits for the messages already
// there, calls more, waits until stdout holds marker, then interrupts it
// and returns its stdout; the exit code must be 0.
func followUntil(t *testing.T, url string, id uuid.UUID, format string, more func(), marker string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, statectlBin, "--database-url", url, "msg", "tail", "-f", "-o", format, id.String())
	cmd.Env = cleanEnv()
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waitFor := func(text string) {
		t.Helper()
		for !strings.Contains(stdout.String(), text) {
			select {
			case err := <-exited:
				t.Fatalf("msg tail -f exited (%v) before printing %q\nstdout: %s\nstderr: %s", err, text, stdout.String(), stderr.String())
			case <-ctx.Done():
				t.Fatalf("never printed %q\nstdout: %s\nstderr: %s", text, stdout.String(), stderr.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	waitFor("--- and # too")
	more()
	waitFor(marker)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Fatalf("msg tail -f after Ctrl-C: %v\nstderr: %s", err, stderr.String())
	}
	return stdout.String()
}

// On a database without the schema, or behind the latest version, every
// command that reads or writes the store says so and how to migrate
// (exit 1), and the check itself writes nothing (not even tern's table).
func TestBinarySchemaNotMigrated(t *testing.T) {
	url := statetest.NewEmpty(t).URL
	latest := statestore.LatestSchemaVersion()
	id := uuid.NewString()
	commands := [][]string{
		{"task", "list"}, {"task", "show", id}, {"task", "tree", id}, {"task", "create", "--action", "noop"},
		{"task", "terminate", id}, {"task", "purge", "--older-than", "1d", "--yes"}, {"msg", "tail", id},
		{"msg", "tail", "-f", id}, {"builddata", "list", "--node", "node01"}, {"bootaction", "list", "--node", "node01"},
		{"leader", "show"},
	}
	for _, args := range commands {
		r := on(t, url, args...)
		r.wantErrorLine(t, ExitError, fmt.Sprintf("the database is not migrated (schema version 0 of %d)", latest), `run "statectl migrate up"`)
		if strings.Contains(r.stderr, "does not exist") {
			t.Errorf("statectl %q: %s", args, r.stderr)
		}
	}
	on(t, url, "version").want(t, ExitOK, fmt.Sprintf("version 0 of %d: not migrated", latest))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var tables int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Fatalf("the checks created %d table(s) in the empty database", tables)
	}

	on(t, url, "migrate", "up").want(t, ExitOK)
	on(t, url, "migrate", "down", "1", "--yes").want(t, ExitOK)
	for _, args := range commands {
		on(t, url, args...).wantErrorLine(t, ExitError,
			fmt.Sprintf("the database's schema is at version %d of %d (1 migration(s) pending)", latest-1, latest), `run "statectl migrate up"`)
	}
	on(t, url, "version").want(t, ExitOK, fmt.Sprintf("version %d of %d: 1 migration(s) pending", latest-1, latest))

	// A schema newer than this statectl: a warning, and the command runs.
	on(t, url, "migrate", "up").want(t, ExitOK)
	if _, err := conn.Exec(ctx, "UPDATE public.schema_version SET version = version + 1"); err != nil {
		t.Fatal(err)
	}
	on(t, url, "task", "list").want(t, ExitOK, "ID", fmt.Sprintf("warning: the database's schema is at version %d, newer than this statectl knows (%d)", latest+1, latest))
}

// statectl version prints the binary's module version and VCS revision
// (what the Go toolchain stamped into it) and the connected database's
// schema version against the latest; with no database it still prints the
// binary's part and exits 0.
func TestBinaryVersion(t *testing.T) {
	info, err := buildinfo.ReadFile(statectlBin)
	if err != nil {
		t.Fatal(err)
	}
	wantRevision := "unknown (built without VCS information)"
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			wantRevision = s.Value
		}
	}
	latest := statestore.LatestSchemaVersion()
	url, _ := setup(t)
	r := on(t, url, "version").want(t, ExitOK, "statectl:", info.Main.Version, "module:", info.Main.Path, "revision:", wantRevision,
		"go:", info.GoVersion, fmt.Sprintf("migrates to version %d", latest), fmt.Sprintf("database schema:  version %d of %d: up to date", latest, latest))
	if r.stderr != "" {
		t.Errorf("stderr: %q", r.stderr)
	}
	r = on(t, url, "version", "-o", "json").want(t, ExitOK)
	var v versionView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("version -o json: %v\n%s", err, r.stdout)
	}
	if v.Version != info.Main.Version || v.Schema.Latest != latest || v.Schema.Database == nil || *v.Schema.Database != latest {
		t.Fatalf("version -o json = %+v", v)
	}
	// Every key docs/operations.md lists is there, the VCS ones null when
	// the binary carries no VCS information (never absent, never a made-up
	// "modified": false).
	var keys map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"module", "version", "revision", "revision_time", "modified", "go_version", "schema"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("version -o json lacks %q:\n%s", k, r.stdout)
		}
	}
	if wantRevision == "unknown (built without VCS information)" {
		for _, k := range []string{"revision", "revision_time", "modified"} {
			if keys[k] != nil {
				t.Errorf("version -o json without VCS information: %q = %v, want null", k, keys[k])
			}
		}
	}

	// No database: DATABASE_URL names a port nothing listens on.
	r = statectl(t, cleanEnv("DATABASE_URL=postgres://statectl:pw@127.0.0.1:1/none?connect_timeout=2"), "", "version").
		want(t, ExitOK, "statectl:", info.Main.Version, "revision:", fmt.Sprintf("migrates to version %d", latest), "no database reachable")
	if strings.Contains(r.stdout+r.stderr, ":pw@") {
		t.Fatalf("the password leaked: %s", r.stdout)
	}
	r = statectl(t, cleanEnv("DATABASE_URL=postgres://127.0.0.1:1/none?connect_timeout=2"), "", "version", "-o", "json").want(t, ExitOK)
	v = versionView{}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Schema.Database != nil || !strings.Contains(v.Schema.State, "no database reachable") {
		t.Fatalf("version -o json without a database: %v\n%s", err, r.stdout)
	}
}

// task show prints who terminated the task and when.
func TestBinaryTaskShowTerminated(t *testing.T) {
	url, s := setup(t)
	task, err := s.CreateTask(context.Background(), statestore.NewTask{Action: "deploy_nodes"})
	if err != nil {
		t.Fatal(err)
	}
	id := task.ID.String()
	if r := on(t, url, "task", "show", id).want(t, ExitOK); !regexp.MustCompile(`(?m)^terminated:\s+-$`).MatchString(r.stdout) {
		t.Fatalf("task show of a live task: want \"terminated: -\":\n%s", r.stdout)
	}
	on(t, url, "task", "terminate", id, "--by", "ops-alice").want(t, ExitOK, "terminated: 1 task(s) changed")
	r := on(t, url, "task", "show", id).want(t, ExitOK)
	if !regexp.MustCompile(`(?m)^terminated:\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ by ops-alice$`).MatchString(r.stdout) {
		t.Fatalf("task show lacks the terminated line:\n%s", r.stdout)
	}
	r = on(t, url, "task", "show", id, "-o", "json").want(t, ExitOK)
	var v taskView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.TerminatedBy != "ops-alice" || v.TerminatedAt == nil {
		t.Fatalf("task show -o json: %v\n%s", err, r.stdout)
	}
}

// Every list command has one JSON (and YAML) shape: {"items": [...],
// "next": cursor or null}; following next reaches the last page, whose
// next is null.
func TestBinaryListShapes(t *testing.T) {
	url, s := setup(t)
	ctx := context.Background()
	tasks, err := s.CreateTasks(ctx, statestore.NewTask{Action: "noop"}, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"lshw", "dmesg"} {
		if _, err := s.InsertBuildData(ctx, statestore.NewBuildData{NodeName: "node01", TaskID: tasks[0].ID, Generator: g,
			DataFormat: "text/plain", DataElement: g}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.CreateBootActionContext(ctx, "node01", tasks[0].ID); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"hw_config", "os_config"} {
		if _, err := s.CreateBootActionStatus(ctx, statestore.NewBootActionStatus{NodeName: "node01", ActionName: a,
			TaskID: tasks[0].ID, Status: statestore.ResultSuccess}); err != nil {
			t.Fatal(err)
		}
	}
	type page struct {
		Items []map[string]any `json:"items" yaml:"items"`
		Next  *string          `json:"next" yaml:"next"`
	}
	decode := func(t *testing.T, format, out string) page {
		t.Helper()
		var raw map[string]any
		var err error
		if format == "json" {
			err = json.Unmarshal([]byte(out), &raw)
		} else {
			err = yaml.Unmarshal([]byte(out), &raw)
		}
		if err != nil {
			t.Fatalf("-o %s: %v\n%s", format, err, out)
		}
		if _, ok := raw["items"].([]any); !ok {
			t.Fatalf("-o %s: no items array:\n%s", format, out)
		}
		if n, ok := raw["next"]; !ok || (n != nil && fmt.Sprint(n) == "") {
			t.Fatalf("-o %s: next is neither a cursor nor null:\n%s", format, out)
		}
		var p page
		b, _ := json.Marshal(raw)
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, format := range []string{"json", "yaml"} {
		for _, tc := range []struct {
			args  []string
			paged bool
			key   string
		}{
			{[]string{"task", "list"}, true, "id"},
			{[]string{"builddata", "list", "--node", "node01"}, true, "generator"},
			{[]string{"bootaction", "list", "--node", "node01"}, false, "action"},
		} {
			var got []string
			var p page
			if tc.paged {
				p = decode(t, format, on(t, url, append(tc.args, "--limit", "1", "-o", format)...).want(t, ExitOK).stdout)
				if p.Next == nil || len(p.Items) != 1 {
					t.Fatalf("%q -o %s --limit 1: %+v, want one item and a cursor", tc.args, format, p)
				}
				got = append(got, fmt.Sprint(p.Items[0][tc.key]))
				p = decode(t, format, on(t, url, append(tc.args, "--limit", "1", "--cursor", *p.Next, "-o", format)...).want(t, ExitOK).stdout)
			} else {
				p = decode(t, format, on(t, url, append(tc.args, "-o", format)...).want(t, ExitOK).stdout)
			}
			for _, it := range p.Items {
				got = append(got, fmt.Sprint(it[tc.key]))
			}
			if p.Next != nil || len(got) != 2 {
				t.Fatalf("%q -o %s: items %v, next %v; want 2 items, then next null", tc.args, format, got, p.Next)
			}
		}
	}
	// A known node filtered to nothing: an empty array, not null.
	p := decode(t, "json", on(t, url, "builddata", "list", "--node", "node01", "--task", tasks[1].ID.String(), "-o", "json").want(t, ExitOK).stdout)
	if p.Items == nil || len(p.Items) != 0 || p.Next != nil {
		t.Fatalf("filtered to nothing: %+v", p)
	}
}

// builddata list and bootaction list treat a node the store knows nothing
// of alike: exit 1, `node "X" not found: ...`.
func TestBinaryUnknownNodeAlike(t *testing.T) {
	url, s := setup(t)
	ctx := context.Background()
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, args := range [][]string{
		{"builddata", "list", "--node", "node99"},
		{"builddata", "list", "--node", "node99", "--latest"},
		{"builddata", "list", "--node", "node99", "--task", task.ID.String()},
		{"bootaction", "list", "--node", "node99"},
	} {
		for _, format := range []string{"table", "json"} {
			r := on(t, url, append(args, "-o", format)...)
			r.wantErrorLine(t, ExitError, `statectl: node "node99" not found: `, "recorded for it")
			msgs = append(msgs, r.stderr)
		}
	}
	strip := regexp.MustCompile(`: no [a-z ]+ recorded`)
	if diff := cmp.Diff(strip.ReplaceAllString(msgs[0], ""), strip.ReplaceAllString(msgs[len(msgs)-1], "")); diff != "" {
		t.Errorf("builddata and bootaction word an unknown node differently (-builddata +bootaction):\n%s", diff)
	}
}

// The demo prints ids task show accepts: run on a kept database, every UUID
// it prints resolves. The first line says which database it uses.
func TestBinaryDemoPrintsIDsTaskShowAccepts(t *testing.T) {
	db := statetest.New(t)
	r := statectl(t, cleanEnv("DATABASE_URL=postgres://nobody@127.0.0.1:1/unused"), "", "demo", "--nodes", "1", "--database-url", db.URL).want(t, ExitOK, "invariants hold")
	if first, _, _ := strings.Cut(r.stdout, "\n"); first != "demo: running in the database of --database-url (refused if in use; kept afterwards)" {
		t.Fatalf("first line %q", first)
	}
	ids := regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`).FindAllString(r.stdout, -1)
	if len(ids) == 0 {
		t.Fatalf("the demo printed no task id:\n%s", r.stdout)
	}
	for _, id := range ids {
		on(t, db.URL, "task", "show", id).want(t, ExitOK, "id:", id)
	}
	// No short id (eight hex digits standing alone) anywhere.
	if m := regexp.MustCompile(`(^|[^0-9a-f-])[0-9a-f]{8}([^0-9a-f-]|$)`).FindString(r.stdout); m != "" {
		t.Fatalf("the demo printed a short id %q:\n%s", m, r.stdout)
	}
}

// With DATABASE_URL set and no --database-url, the demo says so on its
// first line, makes its own database on that server, and drops it at the
// end.
func TestBinaryDemoMakesItsOwnDatabaseOnDatabaseURLServer(t *testing.T) {
	ctx := context.Background()
	srv, err := statetest.DefaultServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	serverURL := srv.AdminURL
	if serverURL == "" { // the server answers to libpq defaults
		serverURL = "dbname=postgres"
	}
	r := statectl(t, cleanEnv("DATABASE_URL="+serverURL), "", "demo", "--nodes", "1").want(t, ExitOK, "invariants hold")
	lines := strings.Split(r.stdout, "\n")
	if lines[0] != "demo: making its own database on the server of DATABASE_URL (dropped at the end; --database-url runs in a given database instead)" {
		t.Fatalf("first line %q", lines[0])
	}
	m := regexp.MustCompile(`database: fresh (\S+) on the server of DATABASE_URL`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("the demo does not say which database it made:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "cleaned up: dropped "+m[1]) {
		t.Fatalf("the demo does not say it dropped %s:\n%s", m[1], r.stdout)
	}
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", m[1]).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatalf("the demo's database %s is still there", m[1])
	}
}
