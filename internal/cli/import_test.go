package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// drydockSource makes a small Drydock database (the fixture schema, rows as
// Drydock writes them) and returns its URL and the node's raw key. bad adds a
// task with a status outside this project's vocabulary.
func drydockSource(t *testing.T, bad bool) (string, []byte) {
	t.Helper()
	ctx := context.Background()
	d := statetest.NewEmpty(t)
	conn, err := pgx.Connect(ctx, d.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	schema, err := os.ReadFile("../drydockimport/testdata/drydock_schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(0xa0 + i)
	}
	root, child := uuid.New(), uuid.New()
	naive := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	if _, err := conn.Exec(ctx, string(schema)); err != nil {
		t.Fatal(err)
	}
	ident, other := uuid.New(), uuid.New()
	batch := &pgx.Batch{}
	batch.Queue(`INSERT INTO alembic_version VALUES ('4713e7ebca9')`)
	batch.Queue(`INSERT INTO tasks (task_id, parent_task_id, subtask_id_list, status, action, created, updated, request_context, result_status)
		VALUES ($1, NULL, ARRAY[$2::bytea], 'complete', 'deploy_nodes', $3, $3, '"{\"user\": \"ops\"}"', 'success'),
		       ($2, $1, '{}', 'complete', 'deploy_node', $3, $3, NULL, NULL)`, root[:], child[:], naive)
	batch.Queue(`INSERT INTO result_message (task_id, message, error, context, context_type, ts, extra)
		VALUES ($1, 'started', false, 'node01', 'node', $2, '"{\"n\": 1}"'), ($1, $3, true, 'node01', 'node', $2, NULL)`,
		child[:], naive, strings.Repeat("z", 127))
	batch.Queue(`INSERT INTO build_data VALUES ('node01', $1, $2, 'lshw', 'application/json', '{}')`, child[:], naive)
	batch.Queue(`INSERT INTO boot_action VALUES ('node01', $1, $2)`, child[:], key)
	batch.Queue(`INSERT INTO active_instance (identity, last_ping) VALUES ($1, $2)`, ident[:], naive)
	if bad {
		batch.Queue(`INSERT INTO tasks (task_id, status, action, created) VALUES ($1, 'Exploded', 'noop', $2)`, other[:], naive)
	}
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		t.Fatal(err)
	}
	return d.URL, key
}

func noKey(t *testing.T, r result, key []byte) {
	t.Helper()
	all := strings.ToLower(r.stdout + r.stderr)
	if strings.Contains(all, hex.EncodeToString(key)) || strings.Contains(r.stdout+r.stderr, string(key)) {
		t.Fatalf("the raw boot action key appears in statectl's output")
	}
}

// statectl import drydock end to end, through Main: an import (report on
// stdout, progress on stderr), a second run that adds nothing, a dry run,
// bad flags (exit 2), --strict on a bad row (exit 1, one line), and
// connection errors that never print a password.
func TestImportDrydockCommand(t *testing.T) {
	srcURL, key := drydockSource(t, false)
	dstURL := statetest.New(t).URL

	dry := run(t, "", "", "import", "drydock", "--from", srcURL, "--to", dstURL, "--dry-run")
	dry.want(t, 0, "DRY RUN: nothing was written", "tasks")
	noKey(t, dry, key)

	r := run(t, "", "", "import", "drydock", "--from", srcURL, "--to", dstURL)
	r.want(t, 0, "TABLE", "result_message", "truncated messages (127 characters, cut by Drydock, imported as they are): 1",
		"recorded as ended term 1", "rows/s")
	if !strings.Contains(r.stderr, "import tasks: 2/2 rows") {
		t.Fatalf("progress on stderr lacks the tasks line:\n%s", r.stderr)
	}
	noKey(t, r, key)
	// The imported data through statectl's own readers.
	run(t, dstURL, "", "builddata", "list", "--node", "node01").want(t, 0, "lshw")

	again := run(t, "", "", "import", "drydock", "--from", srcURL, "--to", dstURL, "-o", "json")
	again.want(t, 0)
	var rep struct {
		AlreadyDone bool `json:"already_done"`
		Tables      []struct {
			Table    string `json:"table"`
			Source   int64  `json:"source"`
			Imported int64  `json:"imported"`
			Target   int64  `json:"target"`
		} `json:"tables"`
	}
	if err := json.Unmarshal([]byte(again.stdout), &rep); err != nil {
		t.Fatalf("json report: %v\n%s", err, again.stdout)
	}
	if !rep.AlreadyDone || len(rep.Tables) != 6 || rep.Tables[0].Table != "tasks" || rep.Tables[0].Target != 2 || rep.Tables[1].Target != 2 {
		t.Fatalf("second run's report: %+v", rep)
	}

	for _, bad := range [][]string{
		{"--to", dstURL},
		{"--from", srcURL, "--to", dstURL, "--source-timezone", "Mars/Olympus"},
		{"--from", srcURL, "--to", dstURL, "--source-timezone", ""},
		{"--from", "::not a url::", "--to", dstURL},
		{"--from", srcURL, "--to", dstURL, "--frobnicate"},
	} {
		run(t, "", "", append([]string{"import", "drydock"}, bad...)...).want(t, 2)
	}

	// A target that is not migrated, a source that is not Drydock's: exit 1, saying so.
	run(t, "", "", "import", "drydock", "--from", srcURL, "--to", statetest.NewEmpty(t).URL).want(t, 1, "statectl migrate up")
	// Without --to the target is --database-url (then DATABASE_URL), as for every command.
	run(t, statetest.NewEmpty(t).URL, "", "import", "drydock", "--from", srcURL).want(t, 1, "statectl migrate up")
	run(t, "", "", "import", "drydock", "--from", dstURL, "--to", statetest.New(t).URL).want(t, 1, "not a Drydock database")

	badURL, _ := drydockSource(t, true)
	strict := run(t, "", "", "import", "drydock", "--from", badURL, "--to", statetest.New(t).URL, "--strict")
	strict.want(t, 1, "--strict: tasks", `status "Exploded" is not a task status`)
	lenient := run(t, "", "", "import", "drydock", "--from", badURL, "--to", statetest.New(t).URL)
	lenient.want(t, 0, "rejected rows: 1", "Exploded")

	pw := run(t, "", "", "import", "drydock", "--from", "postgres://drydock:s3cr3t-pw@127.0.0.1:1/drydock?connect_timeout=2", "--to", dstURL)
	pw.want(t, 1, "--from")
	if strings.Contains(pw.stdout+pw.stderr, "s3cr3t-pw") {
		t.Fatalf("the password appears in the output: %s", pw.stderr)
	}
}
