package drydockimport_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/drydock-go/statemgmt/internal/drydockimport"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// newSQLASCIISource makes a Drydock database in a SQL_ASCII database (what
// many long-lived installations were created with: initdb's default under
// the C locale), filled from cfg. Its varchar columns hold whatever bytes
// were written, invalid UTF-8 included, and pgx hands them over unconverted.
func newSQLASCIISource(t testing.TB, cfg genConfig) (string, *source) {
	t.Helper()
	ctx := context.Background()
	base := statetest.NewEmpty(t)
	admin := connect(t, base.URL)
	name := fmt.Sprintf("ddascii_%d", time.Now().UnixNano())
	// The name is made here, not taken from input.
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+name+` ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base.URL)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Error(err)
		}
	})
	dsn := regexp.MustCompile(`dbname=\S+`).ReplaceAllString(base.URL, "dbname="+name)
	if !strings.Contains(base.URL, "dbname=") {
		u, err := url.Parse(base.URL)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + name
		dsn = u.String()
	}
	conn := connect(t, dsn)
	s := generate(cfg)
	load(ctx, t, conn, s)
	return dsn, s
}

// Hostile bytes from a SQL_ASCII source: invalid UTF-8 in node names (the
// key of boot_action, part of build_data's key and of the importer's
// position), in an action name, a message and a design ref. Each such row
// is rejected with its table, key and reason; the import does not stop, and
// every key and reason it records is valid UTF-8. Broken before the fix:
// the rejection's key (and the boot_action position) carried the raw bytes,
// the target refused them, and the whole import failed.
func TestImportBreakInvalidUTF8FromSQLASCIISource(t *testing.T) {
	ctx := context.Background()
	srcURL, _ := newSQLASCIISource(t, genConfig{Seed: 21, Roots: 2, Fanout: 2, Messages: 60, Nodes: 3, Collections: 1})
	w := connect(t, srcURL)
	bad := "node\xff\xfe"
	for _, q := range []string{
		// The last node in key order, so the page ends on it (the position).
		`UPDATE boot_action SET node_name = $1 WHERE node_name = 'node002'`,
		`UPDATE build_data SET node_name = $1 WHERE node_name = 'node002'`,
		`UPDATE boot_action_status SET action_name = 'hw\xff' WHERE action_name = 'hw_config' AND node_name = 'node001'`,
		`UPDATE result_message SET message = 'caf\xe9' WHERE sequence = 7`,
		// JSON text with invalid UTF-8, double-encoded (Go's decoder would
		// turn the byte into U+FFFD: silently changed data) and plain.
		`UPDATE result_message SET extra = '"{\"u\": \"caf\xe9\"}"' WHERE sequence = 9`,
		`UPDATE result_message SET extra = '{"u": "caf\xe9"}' WHERE sequence = 11`,
		`UPDATE tasks SET design_ref = 'deckhand+\xe9' WHERE task_id = (SELECT task_id FROM tasks WHERE parent_task_id IS NOT NULL ORDER BY task_id LIMIT 1)`,
	} {
		args := []any{}
		if strings.Contains(q, "$1") {
			args = append(args, bad)
		}
		// The escapes are bytes written as they are (SQL_ASCII takes any byte but NUL).
		q = strings.NewReplacer(`\xff`, "\xff", `\xe9`, "\xe9").Replace(q)
		if _, err := w.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, opts := range []drydockimport.Options{{DryRun: true}, {BatchSize: 2}} {
		dstURL := statetest.New(t).URL
		rep, err := runImport(ctx, t, srcURL, dstURL, opts)
		if err != nil {
			t.Fatalf("dry run %v: import failed on hostile bytes: %v", opts.DryRun, err)
		}
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		if !utf8.Valid(b) {
			t.Errorf("dry run %v: report is not valid UTF-8", opts.DryRun)
		}
		for _, tbl := range []string{"boot_action", "build_data"} {
			if tableOf(rep, tbl).Rejected == 0 {
				t.Errorf("dry run %v: %s: nothing rejected: %+v", opts.DryRun, tbl, tableOf(rep, tbl))
			}
		}
		for _, seq := range []string{"sequence 9", "sequence 11"} {
			if got := reasonFor(rep, "result_message", seq); !strings.Contains(got, "UTF-8") {
				t.Errorf("dry run %v: message %s: reason %q, want extra rejected as not UTF-8", opts.DryRun, seq, got)
			}
		}
		if opts.DryRun {
			continue
		}
		// Only the server refuses these (a dry run cannot see them).
		for _, tbl := range []string{"result_message", "tasks", "boot_action_status"} {
			if got := tableOf(rep, tbl); got.Rejected == 0 {
				t.Errorf("%s: nothing rejected: %+v", tbl, got)
			}
		}
		for _, r := range rep.Rejected {
			if !utf8.ValidString(r.Key) || !utf8.ValidString(r.Reason) {
				t.Errorf("rejection %q: %q is not valid UTF-8", r.Key, r.Reason)
			}
		}
		// A third run finds the import done.
		again, err := runImport(ctx, t, srcURL, dstURL, opts)
		if err != nil || !again.AlreadyDone {
			t.Fatalf("second run: %v, already done %v", err, again != nil && again.AlreadyDone)
		}
		// Interrupted right after the batch whose position is the bad node
		// name (build data, then boot actions) and resumed: the same target.
		want := comparable(t, dstURL)
		for _, table := range []string{"build_data", "boot_action"} {
			resumed := statetest.New(t).URL
			cctx, cancel := context.WithCancel(ctx)
			_, err := runImport(cctx, t, srcURL, resumed, drydockimport.Options{BatchSize: 2, AfterBatch: func(tbl string) {
				if tbl == table && strings.Contains(progressOf(t, resumed, table), "hex:") {
					cancel()
				}
			}})
			cancel()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("%s: interrupted import: %v, want context.Canceled (no hex position recorded?)", table, err)
			}
			if _, err := runImport(ctx, t, srcURL, resumed, drydockimport.Options{BatchSize: 2, Resume: true}); err != nil {
				t.Fatalf("%s: resume: %v", table, err)
			}
			if got := comparable(t, resumed); got != want {
				t.Errorf("%s: interrupted at the hostile node name and resumed: target differs from an uninterrupted import", table)
			}
		}
	}
}

// progressOf is the recorded position of a source table in the target.
func progressOf(t testing.TB, url, table string) string {
	t.Helper()
	var pos string
	err := connect(t, url).QueryRow(context.Background(), `SELECT position FROM drydock_import_progress WHERE source_table = $1`, table).Scan(&pos)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	return pos
}

// Timestamps at ±infinity (a value PostgreSQL's timestamp allows and no Go
// time holds) and at year 1 in every timestamp column the importer reads:
// the rows with infinite times are rejected with their table, key and
// reason, the year-1 ones imported as they are, and the import goes on.
// Broken before the fix: scanning 'infinity' failed the page's query, which
// stopped the whole import.
func TestImportBreakInfiniteTimestamps(t *testing.T) {
	ctx := context.Background()
	srcURL, src := newSource(t, genConfig{Seed: 23, Roots: 2, Fanout: 2, Messages: 60, Nodes: 3, Collections: 1})
	w := connect(t, srcURL)
	leaf := src.Tasks[len(src.Tasks)-1].ID // a level-2 task: rejecting it rejects only its messages
	other := src.Tasks[len(src.Tasks)-2].ID
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE tasks SET updated = 'infinity' WHERE task_id = $1`, []any{leaf}},
		{`UPDATE tasks SET created = '0001-01-01 00:00:00', terminated = '-infinity' WHERE task_id = $1`, []any{other}},
		{`UPDATE result_message SET ts = '-infinity' WHERE sequence = 3`, nil},
		{`UPDATE result_message SET ts = '0001-01-01 00:00:00' WHERE sequence = 4`, nil},
		{`UPDATE build_data SET collected_date = 'infinity' WHERE node_name = 'node001' AND generator = 'lshw'`, nil},
		{`UPDATE active_instance SET last_ping = 'infinity'`, nil},
	} {
		if _, err := w.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	for _, opts := range []drydockimport.Options{{DryRun: true}, {}} {
		dstURL := statetest.New(t).URL
		rep, err := runImport(ctx, t, srcURL, dstURL, opts)
		if err != nil {
			t.Fatalf("dry run %v: import failed on an infinite timestamp: %v", opts.DryRun, err)
		}
		for _, c := range []struct{ table, key, reason string }{
			{"tasks", uid(leaf).String(), "updated"},
			{"tasks", uid(other).String(), "terminated"},
			{"result_message", "sequence 3", "ts"},
			{"active_instance", "dummy_key 1", "last_ping"},
		} {
			if got := reasonFor(rep, c.table, c.key); !strings.Contains(got, c.reason) || !strings.Contains(got, "infinit") {
				t.Errorf("dry run %v: %s %s: reason %q, want one naming %s as infinite", opts.DryRun, c.table, c.key, got, c.reason)
			}
		}
		if got := tableOf(rep, "build_data"); got.Rejected != 1 {
			t.Errorf("dry run %v: build data %+v, want the infinite record rejected", opts.DryRun, got)
		}
		if got := tableOf(rep, "result_message"); got.Rejected < 1 || got.Imported == 0 {
			t.Errorf("dry run %v: messages %+v", opts.DryRun, got)
		}
		if opts.DryRun {
			continue
		}
		var ts time.Time
		if err := connect(t, dstURL).QueryRow(ctx, `SELECT ts FROM result_message WHERE ts < '1000-01-01'`).Scan(&ts); err != nil {
			t.Errorf("the year-1 message: %v", err)
		} else if ts.Year() != 1 {
			t.Errorf("the year-1 message has ts %s", ts)
		}
	}
}

// The importer's target backend killed (pg_terminate_backend) in the middle
// of a batch, at every table it writes and at the end of each phase: a
// second session holds a lock the next statement needs, the importer blocks
// inside its batch transaction, and its backend is killed there. Run again
// without --resume it is refused; resumed, it finishes; a third run adds
// nothing; and the target equals an uninterrupted import's.
func TestImportBreakKilledMidBatchResumes(t *testing.T) {
	ctx := context.Background()
	srcURL, _ := newSource(t, smallWithOddities)
	refURL := statetest.New(t).URL
	if _, err := runImport(ctx, t, srcURL, refURL, drydockimport.Options{BatchSize: 200}); err != nil {
		t.Fatal(err)
	}
	want := comparable(t, refURL)
	for _, c := range []struct {
		lock       string // the target table a second session locks
		afterTable string // once this table's batch number afterBatch committed ("" : before the import)
		afterBatch int
	}{
		{"tasks", "", 0},                             // the first COPY of tasks
		{"drydock_import_progress", "tasks", 1},      // the bookkeeping of the orphans' batch
		{"result_message", "result_message", 3},      // mid-table
		{"tasks", "result_message", 15},              // the last message batch: last_message_seq set
		{"build_data", "build_data", 1},              // after the batch of records without a node
		{"boot_action", "build_data", 3},             // the phase boundary
		{"boot_action_status", "boot_action", 1},     // the phase boundary
		{"leader_term", "boot_action_status", 1},     // the leader row
		{"drydock_import", "active_instance", 1},     // recording the end of the import
		{"drydock_import_rejected", "build_data", 2}, // rejected build data of the node batch
	} {
		name := fmt.Sprintf("%s after %s#%d", c.lock, c.afterTable, c.afterBatch)
		dstURL := statetest.New(t).URL
		blocker := connect(t, dstURL)
		watcher := connect(t, dstURL)
		var blockerPID uint32 = blocker.PgConn().PID()
		armed := make(chan error, 1)
		arm := func() {
			tx, err := blocker.Begin(ctx)
			if err == nil {
				// The table name comes from the test's table above.
				_, err = tx.Exec(ctx, `LOCK TABLE `+c.lock+` IN SHARE ROW EXCLUSIVE MODE`)
			}
			armed <- err
		}
		if c.afterTable == "" {
			arm()
		}
		seen := map[string]int{}
		done := make(chan error, 1)
		go func() {
			_, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{BatchSize: 200, AfterBatch: func(table string) {
				if seen[table]++; table == c.afterTable && seen[table] == c.afterBatch {
					arm()
				}
			}})
			done <- err
		}()
		select {
		case err := <-armed:
			if err != nil {
				t.Fatalf("%s: lock: %v", name, err)
			}
		case err := <-done:
			t.Fatalf("%s: the import ended (%v) before the lock was taken: adjust the batch", name, err)
		}
		// Wait (the import's own pace, bounded) until the importer waits for the lock, then kill it.
		deadline := time.Now().Add(2 * time.Minute)
		var victim uint32
		for victim == 0 {
			err := watcher.QueryRow(ctx, `SELECT coalesce((SELECT pid FROM pg_stat_activity WHERE datname = current_database()
				AND wait_event_type = 'Lock' AND pid <> $1 LIMIT 1), 0)`, blockerPID).Scan(&victim)
			if err != nil {
				t.Fatal(err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the importer never waited for the lock", name)
			}
			if victim == 0 {
				time.Sleep(20 * time.Millisecond)
			}
		}
		if _, err := watcher.Exec(ctx, `SELECT pg_terminate_backend($1)`, victim); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err == nil {
			t.Fatalf("%s: the import whose backend was killed reported success", name)
		}
		if _, err := blocker.Exec(ctx, `ROLLBACK`); err != nil {
			t.Fatal(err)
		}
		if _, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{BatchSize: 200}); !errors.Is(err, drydockimport.ErrUnfinished) {
			t.Fatalf("%s: rerun without resume: %v, want ErrUnfinished", name, err)
		}
		rep, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{BatchSize: 200, Resume: true})
		if err != nil {
			t.Fatalf("%s: resume: %v", name, err)
		}
		third, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{BatchSize: 200, Resume: true})
		if err != nil || !third.AlreadyDone {
			t.Fatalf("%s: third run: %v (already done: %v)", name, err, third != nil && third.AlreadyDone)
		}
		if diff := cmp.Diff(rep.Tables, third.Tables); diff != "" {
			t.Errorf("%s: third run's counts differ:\n%s", name, diff)
		}
		if got := comparable(t, dstURL); got != want {
			t.Errorf("%s: killed mid-batch and resumed: target differs from an uninterrupted import:\n%s", name, cmp.Diff(want, got))
		}
	}
}

// Raw boot action keys on rows that are REJECTED never surface: a NULL key,
// keys of 31 and 33 bytes (the latter a real key with a byte more), runs of
// an unknown node and of an out-of-vocabulary status carrying a real key, a
// node name the schema refuses with a real key. Looked for, raw and in hex,
// in the --strict error, the dry run's report and progress, and the real
// import's report, progress and every row of the target.
func TestImportBreakRejectedRowsNeverShowKeys(t *testing.T) {
	ctx := context.Background()
	srcURL, src := newSource(t, genConfig{Seed: 29, Roots: 2, Fanout: 2, Messages: 40, Nodes: 3, Collections: 1})
	w := connect(t, srcURL)
	key := func(b byte) []byte {
		k := make([]byte, 32)
		for i := range k {
			k[i] = b ^ byte(i*7)
		}
		return k
	}
	k1, k2, k3, k4 := key(0x11), key(0x22), key(0x33), key(0x44)
	task := src.Tasks[0].ID
	ulid := func(b byte) []byte {
		id := make([]byte, 16)
		id[5], id[15] = 1, b
		return id
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO boot_action VALUES ('nullkey', $1, NULL)`, []any{task}},
		{`INSERT INTO boot_action VALUES ('short', $1, $2)`, []any{task, k1[:31]}},
		{`INSERT INTO boot_action VALUES ('long', $1, $2)`, []any{task, append(append([]byte{}, k2...), 0)}},
		{`INSERT INTO boot_action VALUES ('bad node', $1, $2)`, []any{task, k3}},
		{`INSERT INTO boot_action VALUES ('shortid', '\x0102', $1)`, []any{k4}},
		{`INSERT INTO boot_action_status VALUES ('ghost', $1, 'hw_config', $2, $3, 'success')`, []any{ulid(1), task, k1}},
		{`INSERT INTO boot_action_status VALUES ('node001', $1, 'hw_config', $2, $3, 'Exploded')`, []any{ulid(2), task, k2}},
		{`INSERT INTO boot_action_status VALUES ('node001', $1, 'hw_config', $2, $3, 'success')`, []any{ulid(3), task, k3[:16]}},
		{`INSERT INTO boot_action_status VALUES ('node001', $1, 'hw_config', $2, NULL, 'success')`, []any{ulid(4), task}},
		{`INSERT INTO boot_action_status VALUES ('node001', '\x0102', 'hw_config', $1, $2, 'success')`, []any{task, k4}},
	} {
		if _, err := w.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	src.Boot = append(src.Boot, &srcBootAction{Key: k1}, &srcBootAction{Key: k2}, &srcBootAction{Key: k3}, &srcBootAction{Key: k4},
		&srcBootAction{Key: k1[:31]}, &srcBootAction{Key: k3[:16]})

	dstURL := statetest.New(t).URL
	var progress strings.Builder
	_, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{Strict: true, Progress: &progress})
	if !errors.Is(err, drydockimport.ErrRejected) {
		t.Fatalf("strict: %v, want ErrRejected", err)
	}
	assertNoKeys(t, src, err.Error(), "the --strict error")
	for _, opts := range []drydockimport.Options{{DryRun: true, Resume: true}, {Resume: true}} {
		progress.Reset()
		opts.Progress = &progress
		rep, err := runImport(ctx, t, srcURL, dstURL, opts)
		if err != nil {
			t.Fatalf("dry run %v: %v", opts.DryRun, err)
		}
		if got := tableOf(rep, "boot_action").Rejected + tableOf(rep, "boot_action_status").Rejected; got != 9 { // all but the ghost node's run (boot_action_status has no foreign key to boot_action)
			t.Errorf("dry run %v: %d boot action rows rejected, want 9: %+v", opts.DryRun, got, rep.Rejected)
		}
		b, _ := json.Marshal(rep)
		assertNoKeys(t, src, string(b), fmt.Sprintf("the report (dry run %v)", opts.DryRun))
		assertNoKeys(t, src, progress.String(), fmt.Sprintf("the progress (dry run %v)", opts.DryRun))
	}
	assertNoKeys(t, src, dumpTarget(t, dstURL), "the target")
}

// While the import runs, another session deletes and updates source rows
// both behind the import's pages (messages and tasks already copied) and
// ahead of them (later messages, build data, boot actions, the leader row)
// and commits. The import still copies exactly the snapshot it started
// from: its target equals an import of the untouched source.
func TestImportBreakSnapshotSurvivesDeletesAndUpdates(t *testing.T) {
	ctx := context.Background()
	srcURL, _ := newSource(t, smallWithOddities)
	refURL := statetest.New(t).URL
	if _, err := runImport(ctx, t, srcURL, refURL, drydockimport.Options{BatchSize: 200}); err != nil {
		t.Fatal(err)
	}
	want := comparable(t, refURL)
	dstURL := statetest.New(t).URL
	w := connect(t, srcURL)
	messages := 0
	if _, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{BatchSize: 200, AfterBatch: func(table string) {
		if table != "result_message" {
			return
		}
		if messages++; messages != 3 {
			return
		}
		for _, q := range []string{
			`DELETE FROM result_message WHERE sequence <= 300 OR sequence > 2500`,
			`UPDATE result_message SET message = 'rewritten', extra = '"{}"' WHERE sequence BETWEEN 301 AND 2500`,
			`UPDATE tasks SET status = 'complete', result_message = 'rewritten', updated = now()`,
			`DELETE FROM tasks WHERE parent_task_id IS NULL`,
			`DELETE FROM build_data WHERE generator = 'lshw'`,
			`UPDATE build_data SET data_element = 'rewritten'`,
			`DELETE FROM boot_action WHERE node_name = 'node000'`,
			`UPDATE boot_action SET identity_key = sha256(identity_key)`,
			`UPDATE boot_action_status SET action_status = 'failure'`,
			`DELETE FROM active_instance`,
		} {
			if _, err := w.Exec(ctx, q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	}}); err != nil {
		t.Fatal(err)
	}
	if messages < 3 {
		t.Fatalf("only %d message batches: the writes never happened", messages)
	}
	if got := comparable(t, dstURL); got != want {
		t.Errorf("the source's concurrent deletes and updates reached the import:\n%s", cmp.Diff(want, got))
	}
}

// Hostile task graphs and ids: a task that is its own parent, a two-task
// cycle, a three-task cycle with a subtree hanging off it, a task id of 15
// bytes with a subtask and a message, a message whose task id has 17 bytes;
// and JSON that decodes to a non-object. The cycle tasks and everything
// below them are rejected with a reason, their messages too; the rest is
// imported; a dry run reports the same; JSON strings, numbers and arrays in
// request_context are kept as what they decode to.
func TestImportBreakCyclesAndOddIDs(t *testing.T) {
	ctx := context.Background()
	srcURL, _ := newSource(t, genConfig{Seed: 31, Roots: 2, Fanout: 2, Messages: 30, Nodes: 1, Collections: 1})
	w := connect(t, srcURL)
	id := func(b byte) []byte { x := make([]byte, 16); x[0], x[15] = 0xee, b; return x }
	self, a1, a2, b1, b2, b3, below, short, shortChild := id(1), id(2), id(3), id(4), id(5), id(6), id(7), id(8)[:15], id(9)
	str, num, arr := id(10), id(11), id(12)
	ins := `INSERT INTO tasks (task_id, parent_task_id, status, action, created, request_context) VALUES ($1, $2, 'complete', 'noop', '2021-01-01', $3)`
	for _, r := range [][]any{
		{self, self, nil}, {a1, a2, nil}, {a2, a1, nil}, {b1, b3, nil}, {b2, b1, nil}, {b3, b2, nil}, {below, b2, nil},
		{short, nil, nil}, {shortChild, short, nil},
		{str, nil, `"\"just text\""`}, {num, nil, `"5"`}, {arr, nil, `"[1, \"two\"]"`},
	} {
		if _, err := w.Exec(ctx, ins, r...); err != nil {
			t.Fatal(err)
		}
	}
	for _, task := range [][]byte{self, a1, b3, below, short, id(13)[:16], append(id(14), 0)} {
		if _, err := w.Exec(ctx, `INSERT INTO result_message (task_id, message, ts) VALUES ($1, 'm', '2021-01-01')`, task); err != nil {
			t.Fatal(err)
		}
	}
	wantRejected := map[string]string{
		uid(self).String(): "cycle", uid(a1).String(): "cycle", uid(a2).String(): "cycle", uid(b1).String(): "cycle",
		uid(b2).String(): "cycle", uid(b3).String(): "cycle", uid(below).String(): "cycle",
		"0x" + fmt.Sprintf("%x", short): "15 bytes", uid(shortChild).String(): "15 bytes",
	}
	for _, opts := range []drydockimport.Options{{DryRun: true}, {BatchSize: 3}} {
		dstURL := statetest.New(t).URL
		rep, err := runImport(ctx, t, srcURL, dstURL, opts)
		if err != nil {
			t.Fatalf("dry run %v: %v", opts.DryRun, err)
		}
		for key, why := range wantRejected {
			if got := reasonFor(rep, "tasks", key); !strings.Contains(got, why) {
				t.Errorf("dry run %v: task %s: reason %q, want one with %q", opts.DryRun, key, got, why)
			}
		}
		if got := tableOf(rep, "tasks"); got.Rejected != int64(len(wantRejected)) {
			t.Errorf("dry run %v: tasks %+v, want %d rejected", opts.DryRun, got, len(wantRejected))
		}
		if got := tableOf(rep, "result_message"); got.Rejected != 7 || got.Imported != 30 {
			t.Errorf("dry run %v: messages %+v, want the 30 generated imported and the 7 added rejected", opts.DryRun, got)
		}
		if opts.DryRun {
			continue
		}
		st := storeOn(t, dstURL)
		for task, want := range map[string]string{string(str): `"just text"`, string(num): `5`, string(arr): `[1, "two"]`} {
			got, err := st.GetTask(ctx, uid([]byte(task)))
			if err != nil {
				t.Fatal(err)
			}
			if string(got.RequestContext) != want {
				t.Errorf("request_context %s, want %s", got.RequestContext, want)
			}
		}
	}
}

// Build data whose node name is the empty string (Drydock's column allows
// it) is rejected and counted like a NULL one, never silently skipped: every
// source row is imported or rejected. Broken before the fix: the records
// without a node were read with IS NULL only and the node pages started
// after ”, so ” records were neither imported, rejected nor counted.
func TestImportBreakEmptyNodeBuildDataAccounted(t *testing.T) {
	ctx := context.Background()
	srcURL, src := newSource(t, genConfig{Seed: 37, Roots: 1, Fanout: 1, Messages: 5, Nodes: 2, Collections: 1})
	if _, err := connect(t, srcURL).Exec(ctx, `INSERT INTO build_data VALUES ('', $1, '2021-01-01', 'lshw', 'application/json', '{}')`, src.Tasks[0].ID); err != nil {
		t.Fatal(err)
	}
	for _, opts := range []drydockimport.Options{{DryRun: true}, {}} {
		rep, err := runImport(ctx, t, srcURL, statetest.New(t).URL, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range rep.Tables {
			if tr.Source != tr.Imported+tr.Rejected {
				t.Errorf("dry run %v: %s: %d in the source, %d imported + %d rejected", opts.DryRun, tr.Table, tr.Source, tr.Imported, tr.Rejected)
			}
		}
		if got := reasonFor(rep, "build_data", `node "", task `+uid(src.Tasks[0].ID).String()+`, generator "lshw", collected 2021-01-01T00:00:00Z`); got == "" {
			t.Errorf("dry run %v: the empty node's record is not among the rejected: %+v", opts.DryRun, rep.Rejected)
		}
	}
}

// An import interrupted right after the batch that ends on a boot action
// run whose action id is not 16 bytes (rejected; its position is the id in
// hex) resumes. Broken before the fix: the recorded position "0x…" was read
// back as a UUID, and every resume failed.
func TestImportBreakResumeAfterShortActionID(t *testing.T) {
	ctx := context.Background()
	srcURL, src := newSource(t, genConfig{Seed: 41, Roots: 1, Fanout: 1, Messages: 5, Nodes: 2, Collections: 1})
	// 0xff… sorts after every ULID of the generator's: with the 6 runs, a
	// full page (not the last) ends on 0xffff.
	if _, err := connect(t, srcURL).Exec(ctx, `INSERT INTO boot_action_status VALUES ('node000', '\xfffe', 'hw_config', $1, NULL, 'success'),
		('node000', '\xffff', 'hw_config', $1, NULL, 'success')`, src.Tasks[0].ID); err != nil {
		t.Fatal(err)
	}
	refURL := statetest.New(t).URL
	if _, err := runImport(ctx, t, srcURL, refURL, drydockimport.Options{BatchSize: 2}); err != nil {
		t.Fatal(err)
	}
	dstURL := statetest.New(t).URL
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, err := runImport(cctx, t, srcURL, dstURL, drydockimport.Options{BatchSize: 2, AfterBatch: func(table string) {
		if table == "boot_action_status" && progressOf(t, dstURL, table) == "0xffff" {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted import: %v, want context.Canceled (position 0xffff never recorded?)", err)
	}
	if _, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{BatchSize: 2, Resume: true}); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if got, want := comparable(t, dstURL), comparable(t, refURL); got != want {
		t.Errorf("resumed import differs from an uninterrupted one:\n%s", cmp.Diff(want, got))
	}
}

// The fingerprint a resume checks is not a checksum: a change in place that
// leaves the row counts, highest message sequence and newest times as they
// were is not noticed. The resume keeps what it imported before and reads
// the rest as it is now. This pins the documented limit (docs: "A changed
// source is refused"), so that a stronger check shows up here.
func TestImportBreakResumeMissesInPlaceChange(t *testing.T) {
	ctx := context.Background()
	srcURL, _ := newSource(t, genConfig{Seed: 43, Roots: 2, Fanout: 2, Messages: 600, Nodes: 1, Collections: 1})
	dstURL := statetest.New(t).URL
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, err := runImport(cctx, t, srcURL, dstURL, drydockimport.Options{BatchSize: 200, AfterBatch: func(table string) {
		if table == "result_message" {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted import: %v", err)
	}
	if _, err := connect(t, srcURL).Exec(ctx, `UPDATE result_message SET message = 'changed' WHERE sequence IN (1, 600)`); err != nil {
		t.Fatal(err)
	}
	if _, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{BatchSize: 200, Resume: true}); err != nil {
		t.Fatalf("resume after an in-place change: %v (refused: update the docs)", err)
	}
	var changed int
	if err := connect(t, dstURL).QueryRow(ctx, `SELECT count(*) FROM result_message WHERE message = 'changed'`).Scan(&changed); err != nil {
		t.Fatal(err)
	}
	if changed != 1 { // message 600 as it is now; message 1 as it was
		t.Errorf("%d changed messages in the target, want 1", changed)
	}
}

// Arrays a varchar[] column allows but Drydock never meant: NULL elements in
// result_successes and a two-dimensional result_failures reject their task
// with the column named; a NULL subtask id is noted. Broken before the fix:
// scanning the NULL element failed the page of tasks, and the import.
func TestImportBreakOddArrays(t *testing.T) {
	ctx := context.Background()
	srcURL, src := newSource(t, genConfig{Seed: 47, Roots: 2, Fanout: 2, Messages: 20, Nodes: 1, Collections: 1})
	w := connect(t, srcURL)
	leaf1, leaf2, root := src.Tasks[len(src.Tasks)-1].ID, src.Tasks[len(src.Tasks)-2].ID, src.Tasks[0].ID
	for q, id := range map[string][]byte{
		`UPDATE tasks SET result_successes = '{NULL,node01}' WHERE task_id = $1`:               leaf1,
		`UPDATE tasks SET result_failures = '{{a,b},{c,d}}' WHERE task_id = $1`:                leaf2,
		`UPDATE tasks SET subtask_id_list = subtask_id_list || NULL::bytea WHERE task_id = $1`: root,
	} {
		if _, err := w.Exec(ctx, q, id); err != nil {
			t.Fatal(err)
		}
	}
	for _, opts := range []drydockimport.Options{{DryRun: true}, {}} {
		rep, err := runImport(ctx, t, srcURL, statetest.New(t).URL, opts)
		if err != nil {
			t.Fatalf("dry run %v: %v", opts.DryRun, err)
		}
		if got := tableOf(rep, "tasks"); got.Source != got.Imported+got.Rejected || got.Rejected != 2 {
			t.Errorf("dry run %v: tasks %+v, want the two leaves rejected", opts.DryRun, got)
		}
		for id, col := range map[string]string{uid(leaf1).String(): "result_successes", uid(leaf2).String(): "result_failures"} {
			if got := reasonFor(rep, "tasks", id); !strings.HasPrefix(got, col) {
				t.Errorf("dry run %v: task %s: reason %q, want one naming %s", opts.DryRun, id, got, col)
			}
		}
		if !slices.ContainsFunc(rep.SubtaskListNotes, func(n string) bool { return strings.Contains(n, "subtask NULL") }) {
			t.Errorf("dry run %v: the NULL subtask id is not noted: %q", opts.DryRun, rep.SubtaskListNotes)
		}
	}
}

// A task whose id the target already holds is rejected, and so is its whole
// subtree, whether its subtasks come in the same batch or a later one: no
// imported subtask ends up under the target's own task of that id. Broken
// before the fix: subtasks in the same batch were imported, their foreign
// key satisfied by the target's task.
func TestImportBreakTaskAlreadyInTargetTakesSubtree(t *testing.T) {
	ctx := context.Background()
	srcURL, src := newSource(t, genConfig{Seed: 53, Roots: 2, Fanout: 2, Messages: 20, Nodes: 1, Collections: 1})
	root := src.Tasks[0].ID
	for _, opts := range []drydockimport.Options{{DryRun: true}, {}, {BatchSize: 2}} {
		dstURL := statetest.New(t).URL
		if _, err := connect(t, dstURL).Exec(ctx, `INSERT INTO tasks (task_id, status, action) VALUES ($1, 'queued', 'noop')`, uid(root)); err != nil {
			t.Fatal(err)
		}
		rep, err := runImport(ctx, t, srcURL, dstURL, opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := reasonFor(rep, "tasks", uid(root).String()); !strings.Contains(got, "already in the target") {
			t.Errorf("%+v: the root's reason %q", opts, got)
		}
		if got := tableOf(rep, "tasks"); got.Rejected != 7 || got.Imported != 7 {
			t.Errorf("%+v: tasks %+v, want the root's tree of 7 rejected and the other 7 imported", opts, got)
		}
		if opts.DryRun {
			continue
		}
		var under int
		if err := connect(t, dstURL).QueryRow(ctx, `SELECT count(*) FROM tasks WHERE parent_task_id = $1`, uid(root)).Scan(&under); err != nil {
			t.Fatal(err)
		}
		if under != 0 {
			t.Errorf("%+v: %d imported subtasks under the target's own task", opts, under)
		}
	}
}

// The source backend killed (pg_terminate_backend) between batches, in each
// phase: the import fails, the resumed one (a new snapshot of the unchanged
// source) ends with the target an uninterrupted import gives.
func TestImportBreakSourceKilledResumes(t *testing.T) {
	ctx := context.Background()
	srcURL, _ := newSource(t, smallWithOddities)
	refURL := statetest.New(t).URL
	if _, err := runImport(ctx, t, srcURL, refURL, drydockimport.Options{BatchSize: 200}); err != nil {
		t.Fatal(err)
	}
	want := comparable(t, refURL)
	killer := connect(t, srcURL)
	for _, stopAfter := range []struct {
		table string
		n     int
	}{{"tasks", 1}, {"result_message", 3}, {"build_data", 2}, {"boot_action", 1}, {"boot_action_status", 1}} {
		dstURL := statetest.New(t).URL
		seen := map[string]int{}
		killed := 0
		_, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{BatchSize: 200, AfterBatch: func(table string) {
			if seen[table]++; table == stopAfter.table && seen[table] == stopAfter.n {
				if err := killer.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
					WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&killed); err != nil {
					t.Error(err)
				}
			}
		}})
		if err == nil || killed != 1 {
			t.Fatalf("%+v: import with its source backend killed: %v (%d killed)", stopAfter, err, killed)
		}
		if _, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{BatchSize: 200, Resume: true}); err != nil {
			t.Fatalf("%+v: resume: %v", stopAfter, err)
		}
		if got := comparable(t, dstURL); got != want {
			t.Errorf("%+v: source killed, resumed: target differs from an uninterrupted import:\n%s", stopAfter, cmp.Diff(want, got))
		}
	}
}
