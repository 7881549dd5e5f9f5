package drydockimport_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/internal/drydockimport"
	"github.com/drydock-go/statemgmt/internal/leadertest"
	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

func TestMain(m *testing.M) { os.Exit(statetest.Main(m)) }

var smallWithOddities = genConfig{Seed: 7, Roots: 6, Fanout: 3, Messages: 3000, Nodes: 8, Collections: 3, Oddities: true}

// newSource makes a Drydock database filled from cfg; it returns its URL.
func newSource(t testing.TB, cfg genConfig) (string, *source) {
	t.Helper()
	ctx := context.Background()
	d := statetest.NewEmpty(t)
	conn, err := pgx.Connect(ctx, d.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	s := generate(cfg)
	load(ctx, t, conn, s)
	return d.URL, s
}

func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// runImport runs one import on fresh connections.
func runImport(ctx context.Context, t testing.TB, srcURL, dstURL string, opts drydockimport.Options) (*drydockimport.Report, error) {
	t.Helper()
	src, err := pgx.Connect(ctx, srcURL)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(context.Background())
	dst, err := pgx.Connect(ctx, dstURL)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close(context.Background())
	return drydockimport.Run(ctx, src, dst, opts)
}

func storeOn(t testing.TB, url string) *statestore.Store {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := statestore.New(pool, statestore.Options{DisableListen: true})
	t.Cleanup(s.Close)
	return s
}

// expectation is what the target must hold, derived from the generator's
// own records with the rules (not with the importer's code).
type expectation struct {
	tasks     map[uuid.UUID]*statestore.Task
	rejected  map[string]bool // task keys
	truncated int64
	messages  int64
}

func uid(b []byte) uuid.UUID { var u uuid.UUID; copy(u[:], b); return u }

func once(doc *string) json.RawMessage {
	if doc == nil {
		return nil
	}
	var inner string
	if err := json.Unmarshal([]byte(*doc), &inner); err != nil {
		return json.RawMessage(*doc) // not double-encoded
	}
	if inner == "null" {
		return nil
	}
	return json.RawMessage(inner)
}

func expect(s *source) *expectation {
	e := &expectation{tasks: map[uuid.UUID]*statestore.Task{}, rejected: map[string]bool{}}
	byID := map[string]*srcTask{}
	for _, t := range s.Tasks {
		byID[string(t.ID)] = t
	}
	badSelf := func(t *srcTask) bool {
		return !slices.Contains([]string{"requested", "queued", "running", "terminating", "terminated", "complete"}, *t.Status) ||
			(t.ResultStatus != nil && !slices.Contains(results, *t.ResultStatus)) ||
			(t.ResultLinks != nil && !strings.HasPrefix(*t.ResultLinks, "[")) ||
			(t.Parent != nil && byID[string(t.Parent)] == nil)
	}
	var rejected func(t *srcTask) bool
	rejected = func(t *srcTask) bool {
		return badSelf(t) || (t.Parent != nil && byID[string(t.Parent)] != nil && rejected(byID[string(t.Parent)]))
	}
	utc := func(p *time.Time) time.Time { return p.UTC() }
	for _, t := range s.Tasks {
		if rejected(t) {
			e.rejected[uid(t.ID).String()] = true
			continue
		}
		x := &statestore.Task{ID: uid(t.ID), Status: statestore.TaskStatus(*t.Status), Action: *t.Action, Version: 1,
			CreatedAt: utc(t.Created), UpdatedAt: utc(t.Created), NodeFilter: nil, RequestContext: once(t.RequestContext),
			Result: statestore.TaskResult{Status: statestore.ResultIncomplete, Links: json.RawMessage(`[]`), Successes: []string{}, Failures: []string{}}}
		if t.Parent != nil {
			p := uid(t.Parent)
			x.ParentID = &p
		}
		if t.Updated != nil {
			x.UpdatedAt = utc(t.Updated)
		}
		if t.NodeFilter != nil {
			x.NodeFilter = json.RawMessage(*t.NodeFilter)
		}
		if t.DesignRef != nil {
			x.DesignRef = *t.DesignRef
		}
		if t.CreatedBy != nil {
			x.CreatedBy = *t.CreatedBy
		}
		if t.Retry != nil {
			x.Retry = int(*t.Retry)
		}
		if t.TerminatedAt != nil {
			at := utc(t.TerminatedAt)
			x.TerminatedAt = &at
		}
		if t.TerminatedBy != nil {
			x.TerminatedBy = *t.TerminatedBy
		}
		x.Terminate = t.Terminate != nil && *t.Terminate
		if t.ResultStatus != nil {
			x.Result.Status = statestore.ResultStatus(*t.ResultStatus)
		}
		if t.ResultMessage != nil {
			x.Result.Message = *t.ResultMessage
		}
		if t.ResultReason != nil {
			x.Result.Reason = *t.ResultReason
		}
		if t.ErrorCount != nil {
			x.Result.ErrorCount = int(*t.ErrorCount)
		}
		if t.Successes != nil {
			x.Result.Successes = t.Successes
		}
		if t.Failures != nil {
			x.Result.Failures = t.Failures
		}
		if t.ResultLinks != nil {
			x.Result.Links = json.RawMessage(*t.ResultLinks)
		}
		switch x.Status { // nobody runs them any more: migration 010's recovery
		case statestore.StatusRunning:
			x.Status, x.Retry = statestore.StatusQueued, x.Retry+1
		case statestore.StatusTerminating:
			x.Status = statestore.StatusTerminated
		}
		e.tasks[x.ID] = x
	}
	// A task's subtasks are the accepted tasks naming it as their parent (the
	// source's lists agree, but for the two the generator broke on purpose:
	// TestImportMatchesSourceTaskByTask checks the report names them).
	for _, x := range e.tasks {
		if x.ParentID != nil && e.tasks[*x.ParentID] != nil {
			p := e.tasks[*x.ParentID]
			p.SubtaskIDs = append(p.SubtaskIDs, x.ID)
		}
	}
	for _, m := range s.Messages {
		if m.TaskID == nil || e.tasks[uid(m.TaskID)] == nil {
			continue
		}
		extra := once(m.Extra)
		if bytes.Contains(extra, []byte(`\u0000`)) || bytes.Contains(extra, []byte(`\ud800`)) {
			continue // refused by jsonb
		}
		x := e.tasks[uid(m.TaskID)]
		rm := statestore.ResultMessage{TaskID: x.ID, Sequence: int64(len(x.Messages) + 1), Extra: extra}
		if m.Message != nil {
			rm.Message = *m.Message
		}
		rm.Error = m.Error != nil && *m.Error
		if m.Context != nil {
			rm.Context = *m.Context
		}
		if m.ContextType != nil {
			rm.ContextType = *m.ContextType
		}
		if m.Ts != nil {
			rm.Time = m.Ts.UTC()
		} else {
			rm.Time = x.CreatedAt
		}
		if len(rm.Message) == 127 {
			e.truncated++
		}
		e.messages++
		x.Messages = append(x.Messages, rm)
		x.LastMessageSeq = rm.Sequence
	}
	return e
}

// jsonEqual compares JSON documents by value (jsonb reformats them).
var jsonEqual = cmp.Transformer("json", func(m json.RawMessage) any {
	if m == nil {
		return nil
	}
	var v any
	if err := json.Unmarshal(m, &v); err != nil {
		return "invalid: " + string(m)
	}
	return v
})

func compareTasks(t *testing.T, st *statestore.Store, want *expectation) {
	t.Helper()
	ctx := context.Background()
	page, err := st.ListTasks(ctx, statestore.TaskFilter{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Tasks) != len(want.tasks) {
		t.Errorf("target holds %d tasks, want %d", len(page.Tasks), len(want.tasks))
	}
	for id, w := range want.tasks {
		got, err := st.GetTask(ctx, id)
		if err != nil {
			t.Errorf("task %s: %v", id, err)
			continue
		}
		if w.Status == statestore.StatusTerminated && w.TerminatedAt == nil && got.TerminatedAt != nil {
			w.TerminatedAt = got.TerminatedAt // recovered: terminated at import time
		}
		for _, x := range []*statestore.Task{w, got} { // empty or nil: the same
			if len(x.SubtaskIDs) == 0 {
				x.SubtaskIDs = nil
			}
			if len(x.Messages) == 0 {
				x.Messages = nil
			}
		}
		if diff := cmp.Diff(w, got, jsonEqual, cmpopts.SortSlices(func(a, b uuid.UUID) bool { return a.String() < b.String() })); diff != "" {
			t.Errorf("task %s (-want +got):\n%s", id, diff)
		}
	}
}

func tableOf(rep *drydockimport.Report, table string) drydockimport.TableReport {
	for _, x := range rep.Tables {
		if x.Table == table {
			return x
		}
	}
	return drydockimport.TableReport{}
}

func reasonFor(rep *drydockimport.Report, table, key string) string {
	for _, r := range rep.Rejected {
		if r.Table == table && r.Key == key {
			return r.Reason
		}
	}
	return ""
}

// The whole import, compared task by task with what the generator wrote,
// with the oddities a long-lived Drydock database has.
func TestImportMatchesSourceTaskByTask(t *testing.T) {
	ctx := context.Background()
	srcURL, src := newSource(t, smallWithOddities)
	dstURL := statetest.New(t).URL
	var progress bytes.Buffer
	rep, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{BatchSize: 400, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	st := storeOn(t, dstURL)
	want := expect(src)
	compareTasks(t, st, want)

	// Report: per table, source = imported + rejected; target = imported (an empty target).
	for _, x := range rep.Tables {
		if x.Source != x.Imported+x.Rejected || x.Target != x.Imported {
			t.Errorf("report %+v: source must be imported + rejected and target imported", x)
		}
	}
	if got := tableOf(rep, "tasks"); got.Imported != int64(len(want.tasks)) || got.Source != int64(len(src.Tasks)) {
		t.Errorf("tasks report %+v, want %d imported of %d", got, len(want.tasks), len(src.Tasks))
	}
	if got := tableOf(rep, "result_message"); got.Imported != want.messages {
		t.Errorf("messages imported %d, want %d", got.Imported, want.messages)
	}
	if rep.Truncated != want.truncated || want.truncated == 0 {
		t.Errorf("truncated %d, want %d (> 0)", rep.Truncated, want.truncated)
	}
	if rep.Recovered != 2 {
		t.Errorf("recovered %d, want 2 (one running, one terminating)", rep.Recovered)
	}
	for _, c := range []struct{ table, key, reason string }{
		{"tasks", uid(src.BadStatusTask).String(), `status "Prepared" is not a task status`},
		{"tasks", uid(src.OrphanTask).String(), "is not in the source"},
		{"tasks", uid(src.Tasks[1].ID).String(), "was rejected"}, // a child of the bad task
		{"result_message", "sequence 7", "is not in the source"},
		{"result_message", "sequence 8", "task_id is NULL"},
		{"result_message", "sequence 9", `\u0000`},
		{"result_message", "sequence 11", "extra: "}, // the server's verdict, found by bisection
		{"boot_action", "node001", "identity_key is 16 bytes, not 32"},
		{"boot_action_status", uid(src.Statuses[0].ActionID).String(), `action_status "running"`},
	} {
		if r := reasonFor(rep, c.table, c.key); !strings.Contains(r, c.reason) {
			t.Errorf("%s %s: reason %q, want one with %q\nall: %+v", c.table, c.key, r, c.reason, rep.Rejected)
		}
	}
	wantNotes := []string{
		fmt.Sprintf("task %s has parent %s, whose subtask list does not name it", uid(src.UnlistedChild), uid(src.UnlistingParent)),
		fmt.Sprintf("task %s lists subtask %s, whose parent_task_id is NULL", uid(src.ListingParent), uid(src.ListedNotChild)),
	}
	slices.Sort(wantNotes)
	if diff := cmp.Diff(wantNotes, rep.SubtaskListNotes); diff != "" {
		t.Errorf("subtask list notes (-want +got):\n%s", diff)
	}
	if got := tableOf(rep, "build_data"); got.Rejected != 3 {
		t.Errorf("build data rejected %d, want 3 (NULL node, bad node name, bad format): %+v", got.Rejected, rep.Rejected)
	}

	// Build data: every accepted record, by node and task.
	var accepted int
	for _, b := range src.BuildData {
		if b.Node == nil || *b.Node == "node 7" || *b.Format == "json" {
			continue
		}
		accepted++
	}
	if got := tableOf(rep, "build_data"); got.Imported != int64(accepted) {
		t.Errorf("build data imported %d, want %d", got.Imported, accepted)
	}
	page, err := st.BuildData(ctx, statestore.BuildDataQuery{NodeName: "node002", Full: true})
	if err != nil || len(page.Records) != 2*smallWithOddities.Collections {
		t.Fatalf("node002 build data: %d records, %v", len(page.Records), err)
	}

	// Boot actions: existing nodes' keys keep verifying, raw and hex; runs keep ULIDs and statuses.
	for i, b := range src.Boot {
		_, err := st.VerifyBootActionKey(ctx, b.Node, b.Key)
		if i == 1 {
			if !errors.Is(err, statestore.ErrNotFound) {
				t.Errorf("%s (short key, rejected): %v, want ErrNotFound", b.Node, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: raw key: %v", b.Node, err)
		}
		if _, err := st.VerifyBootActionKey(ctx, b.Node, []byte(hex.EncodeToString(b.Key))); err != nil {
			t.Errorf("%s: hex key: %v", b.Node, err)
		}
		other := slices.Clone(b.Key)
		other[0] ^= 1
		if _, err := st.VerifyBootActionKey(ctx, b.Node, other); !errors.Is(err, statestore.ErrKeyMismatch) {
			t.Errorf("%s: wrong key: %v, want ErrKeyMismatch", b.Node, err)
		}
	}
	for i, s := range src.Statuses {
		var id statestore.ULID
		copy(id[:], s.ActionID)
		got, err := st.GetBootActionStatus(ctx, id)
		if i == 0 {
			if !errors.Is(err, statestore.ErrNotFound) {
				t.Errorf("status with out-of-vocabulary status: %v, want ErrNotFound", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("status %s: %v", id, err)
		}
		wantStatus := "incomplete"
		if s.Status != nil {
			wantStatus = *s.Status
		}
		if string(got.Status) != wantStatus || got.NodeName != *s.Node || got.ActionName != *s.Name || !got.CreatedAt.Equal(id.Time()) {
			t.Errorf("status %s: %+v, want %s on %s/%s at %s", id, got, wantStatus, *s.Node, *s.Name, id.Time())
		}
	}

	// The leader row is history: no live leader, and a fresh election starts above it.
	if _, err := st.Leader(ctx); !errors.Is(err, statestore.ErrNotFound) {
		t.Errorf("Leader after import: %v, want ErrNotFound (no live leader)", err)
	}
	hist, err := st.LeaderHistory(ctx, 10)
	if err != nil || len(hist) != 1 || hist[0].Identity != uid(src.Identity) || hist[0].EndReason != "superseded" ||
		!hist[0].ElectedAt.Equal(src.LastPing) || hist[0].Term != rep.LeaderTerm {
		t.Fatalf("leader history %+v, %v; want one ended term of %s at %s", hist, err, uid(src.Identity), src.LastPing)
	}
	el, err := statestore.NewElector(statestore.ElectorConfig{ConnString: dstURL})
	if err != nil {
		t.Fatal(err)
	}
	defer el.Close()
	if term := leadertest.Lead(t, el, 0); term <= hist[0].Term {
		t.Fatalf("fresh election: term %d; want above %d", term, hist[0].Term)
	}

	// No raw key anywhere: target rows, report, progress.
	assertNoKeys(t, src, dumpTarget(t, dstURL), "target database")
	b, _ := json.Marshal(rep)
	assertNoKeys(t, src, string(b), "report")
	assertNoKeys(t, src, progress.String(), "progress")
	if !strings.Contains(progress.String(), "rows/s") || !strings.Contains(progress.String(), "import result_message:") {
		t.Errorf("progress lacks rows/s lines:\n%s", progress.String())
	}
}

// dumpTarget renders every row of every table of the target as text.
func dumpTarget(t testing.TB, url string) string {
	t.Helper()
	ctx := context.Background()
	c := connect(t, url)
	tables, err := c.Query(ctx, `SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(tables, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, n := range names {
		var rows string
		// Table names come from the catalog, quoted by quote_ident.
		if err := c.QueryRow(ctx, `SELECT coalesce(string_agg(x::text, E'\n' ORDER BY x::text), '') FROM `+n+` x`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "== %s\n%s\n", n, rows)
	}
	return out.String()
}

// assertNoKeys fails if any source boot action key appears in text, as raw
// bytes or as hex (upper or lower case).
func assertNoKeys(t *testing.T, src *source, text, where string) {
	t.Helper()
	lower := strings.ToLower(text)
	for _, b := range src.Boot {
		if len(b.Key) == 0 {
			continue
		}
		if strings.Contains(text, string(b.Key)) || strings.Contains(lower, hex.EncodeToString(b.Key)) {
			t.Errorf("%s holds the raw key of %s", where, b.Node)
		}
	}
}

// Every minute-ish around daylight-saving changes, InZone reads a naive
// time as PostgreSQL's `timestamp AT TIME ZONE` does.
func TestInZoneAgreesWithPostgreSQL(t *testing.T) {
	ctx := context.Background()
	c := connect(t, statetest.NewEmpty(t).URL)
	for _, z := range []struct {
		zone string
		days []time.Time
	}{
		{"America/New_York", []time.Time{time.Date(2021, 3, 14, 0, 0, 0, 0, time.UTC), time.Date(2021, 11, 7, 0, 0, 0, 0, time.UTC)}},
		{"Europe/Berlin", []time.Time{time.Date(2021, 3, 28, 0, 0, 0, 0, time.UTC), time.Date(2021, 10, 31, 0, 0, 0, 0, time.UTC)}},
		{"Australia/Lord_Howe", []time.Time{time.Date(2021, 4, 4, 0, 0, 0, 0, time.UTC), time.Date(2021, 10, 3, 0, 0, 0, 0, time.UTC)}},
	} {
		loc, err := time.LoadLocation(z.zone)
		if err != nil {
			t.Fatal(err)
		}
		for _, day := range z.days {
			var naive []time.Time
			for m := 0; m < 24*60; m += 5 {
				naive = append(naive, day.Add(time.Duration(m)*time.Minute+17*time.Second))
			}
			rows, err := c.Query(ctx, `SELECT n AT TIME ZONE $2 FROM unnest($1::timestamp[]) AS n`, naive, z.zone)
			if err != nil {
				t.Fatal(err)
			}
			server, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
			if err != nil {
				t.Fatal(err)
			}
			for i, n := range naive {
				if got := drydockimport.InZone(n, loc); !got.Equal(server[i]) {
					t.Errorf("%s %s: InZone %s, PostgreSQL %s", z.zone, n.Format("2006-01-02 15:04:05"), got.UTC(), server[i].UTC())
				}
			}
		}
	}
}

// --source-timezone: naive times are that zone's wall clock, the DST edges as PostgreSQL reads them.
func TestSourceTimezoneAroundDST(t *testing.T) {
	ctx := context.Background()
	srcURL, src := newSource(t, genConfig{Seed: 3, Roots: 3, Fanout: 2, Messages: 20, Nodes: 1, Collections: 1, Oddities: true})
	dstURL := statetest.New(t).URL
	ny, _ := time.LoadLocation("America/New_York")
	if _, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{SourceTimezone: ny}); err != nil {
		t.Fatal(err)
	}
	got, err := storeOn(t, dstURL).GetTask(ctx, uid(src.DSTTask))
	if err != nil {
		t.Fatal(err)
	}
	// 01:30 happened twice on 2021-11-07: the later (EST) one. 02:30 did not exist on 2021-03-14: read with EST.
	if want := time.Date(2021, 11, 7, 6, 30, 0, 0, time.UTC); !got.CreatedAt.Equal(want) {
		t.Errorf("created %s, want %s", got.CreatedAt.UTC(), want)
	}
	if want := time.Date(2021, 3, 14, 7, 30, 0, 0, time.UTC); !got.UpdatedAt.Equal(want) {
		t.Errorf("updated %s, want %s", got.UpdatedAt.UTC(), want)
	}
	// Summer time elsewhere: 2021-11-06 13:00 EDT is 17:00 UTC.
	sparse, err := storeOn(t, dstURL).GetTask(ctx, uid(src.SparseTask))
	if err != nil {
		t.Fatal(err)
	}
	if want := InZoneRef(src.sparseCreated(), -4); !sparse.CreatedAt.Equal(want) {
		t.Errorf("created %s, want %s", sparse.CreatedAt.UTC(), want)
	}
}

func (s *source) sparseCreated() time.Time {
	for _, t := range s.Tasks {
		if bytes.Equal(t.ID, s.SparseTask) {
			return *t.Created
		}
	}
	panic("no sparse task")
}

// InZoneRef reads a naive time with a fixed offset in hours.
func InZoneRef(naive time.Time, hours int) time.Time {
	return naive.Add(-time.Duration(hours) * time.Hour)
}

// A second run adds nothing and says so; a source that changed since is refused.
func TestImportTwiceAddsNothing(t *testing.T) {
	ctx := context.Background()
	srcURL, _ := newSource(t, smallWithOddities)
	dstURL := statetest.New(t).URL
	first, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	before := dumpTarget(t, dstURL)
	second, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !second.AlreadyDone {
		t.Error("second run not reported as already done")
	}
	if diff := cmp.Diff(first.Tables, second.Tables); diff != "" {
		t.Errorf("second report's tables differ (-first +second):\n%s", diff)
	}
	if after := dumpTarget(t, dstURL); after != before {
		t.Error("the second run changed the target")
	}

	// Drydock wrote on after the import: a new run is refused, nothing written.
	if _, err := connect(t, srcURL).Exec(ctx, `INSERT INTO result_message (task_id, message) SELECT task_id, 'late' FROM tasks LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{}); !errors.Is(err, drydockimport.ErrSourceChanged) {
		t.Fatalf("import of a changed source: %v, want ErrSourceChanged", err)
	}
	if after := dumpTarget(t, dstURL); after != before {
		t.Error("the refused run changed the target")
	}
}

// comparable is the target's imported content without what differs between
// two correct imports (identity numbers, import-time clocks).
func comparable(t testing.TB, url string) string {
	t.Helper()
	ctx := context.Background()
	c := connect(t, url)
	var out strings.Builder
	for _, q := range []string{
		`SELECT task_id, parent_task_id, status, action, design_ref, node_filter, request_context, retry, created_at, created_by,
		        updated_at, terminated_by, terminate, result_status, result_message, result_reason, result_error_count,
		        result_successes, result_failures, result_links, version, last_message_seq FROM tasks`,
		`SELECT * FROM result_message`,
		`SELECT node_name, task_id, collected_at, generator, data_format, data_element FROM build_data`,
		`SELECT node_name, task_id, identity_key_hash FROM boot_action`,
		`SELECT action_id, node_name, action_name, task_id, identity_key_hash, action_status, created_at FROM boot_action_status`,
		`SELECT identity, elected_at, ended_at, end_reason FROM leader_term`,
		`SELECT source_table, source_key, reason FROM drydock_import_rejected`,
		`SELECT source_table, rows_read, rows_written, rows_rejected, truncated, recovered, done FROM drydock_import_progress`,
	} {
		var rows string
		if err := c.QueryRow(ctx, `SELECT coalesce(string_agg(x::text, E'\n' ORDER BY x::text), '') FROM (`+q+`) x`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		out.WriteString(rows + "\n--\n")
	}
	return out.String()
}

// An import interrupted after N batches (its context cancelled) and resumed
// ends exactly where an uninterrupted import does; without --resume the
// unfinished import is refused.
func TestInterruptedImportResumes(t *testing.T) {
	ctx := context.Background()
	srcURL, _ := newSource(t, smallWithOddities)
	refURL := statetest.New(t).URL
	if _, err := runImport(ctx, t, srcURL, refURL, drydockimport.Options{BatchSize: 200}); err != nil {
		t.Fatal(err)
	}
	want := comparable(t, refURL)
	seen := map[string]bool{}
	for _, stopAfter := range []int{1, 2, 9, 17, 19, 21, 22, 23} { // tasks, messages, build data, boot actions, statuses
		dstURL := statetest.New(t).URL
		cctx, cancel := context.WithCancel(ctx)
		batches := 0
		var stoppedIn string
		_, err := runImport(cctx, t, srcURL, dstURL, drydockimport.Options{BatchSize: 200, AfterBatch: func(table string) {
			if batches++; batches == stopAfter {
				stoppedIn = table
				cancel()
			}
		}})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("stop after %d batches: %v, want context.Canceled", stopAfter, err)
		}
		seen[stoppedIn] = true
		if _, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{BatchSize: 200}); !errors.Is(err, drydockimport.ErrUnfinished) {
			t.Fatalf("rerun without resume: %v, want ErrUnfinished", err)
		}
		rep, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{BatchSize: 200, Resume: true})
		if err != nil {
			t.Fatalf("resume after %d batches (%s): %v", stopAfter, stoppedIn, err)
		}
		if rep.AlreadyDone {
			t.Fatalf("stop after %d batches: the interrupted import had finished", stopAfter)
		}
		if got := comparable(t, dstURL); got != want {
			t.Errorf("stopped after %d batches (in %s), resumed: target differs from an uninterrupted import", stopAfter, stoppedIn)
		}
	}
	for _, table := range []string{"tasks", "result_message", "build_data", "boot_action", "boot_action_status"} {
		if !seen[table] {
			t.Errorf("no interruption fell in %s (saw %v): adjust the batch numbers", table, seen)
		}
	}
}

// --dry-run reports what an import would do and writes nothing: the
// target's rows and sequences are unchanged.
func TestDryRunWritesNothing(t *testing.T) {
	ctx := context.Background()
	srcURL, src := newSource(t, smallWithOddities)
	dstURL := statetest.New(t).URL
	snapshot := func() string {
		c := connect(t, dstURL)
		var seqs string
		if err := c.QueryRow(ctx, `SELECT string_agg(sequencename || '=' || coalesce(last_value, 0), ',' ORDER BY sequencename) FROM pg_sequences`).Scan(&seqs); err != nil {
			t.Fatal(err)
		}
		return dumpTarget(t, dstURL) + seqs
	}
	before := snapshot()
	dry, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{DryRun: true, BatchSize: 300})
	if err != nil {
		t.Fatal(err)
	}
	if after := snapshot(); after != before {
		t.Fatal("the dry run changed the target")
	}
	real, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{BatchSize: 300})
	if err != nil {
		t.Fatal(err)
	}
	// Same counts, except what only the server refuses (the unpaired surrogate): one message.
	for i, d := range dry.Tables {
		r := real.Tables[i]
		if d.Table == "result_message" {
			d.Imported, d.Rejected = d.Imported-1, d.Rejected+1
		}
		if d.Source != r.Source || d.Imported != r.Imported || d.Rejected != r.Rejected {
			t.Errorf("dry run %+v, real run %+v", d, r)
		}
	}
	if !dry.DryRun || dry.Truncated != real.Truncated || dry.Recovered != real.Recovered {
		t.Errorf("dry run report %+v vs real %+v", dry, real)
	}
	b, _ := json.Marshal(dry)
	assertNoKeys(t, src, string(b), "dry run report")
}

// --strict stops at the first rejected row with its table, key and reason;
// a clean source imports under --strict.
func TestStrictStopsAtFirstRejection(t *testing.T) {
	ctx := context.Background()
	srcURL, src := newSource(t, smallWithOddities)
	dstURL := statetest.New(t).URL
	_, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{Strict: true})
	if !errors.Is(err, drydockimport.ErrRejected) {
		t.Fatalf("strict import of a source with bad rows: %v, want ErrRejected", err)
	}
	for _, want := range []string{"tasks", uid(src.BadStatusTask).String(), `"Prepared"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// Fixed in the source, the import goes on from the batch that held it.
	if _, err := connect(t, srcURL).Exec(ctx, `UPDATE tasks SET status = 'complete' WHERE task_id = $1`, src.BadStatusTask); err != nil {
		t.Fatal(err)
	}
	if _, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{Resume: true}); err != nil {
		t.Fatalf("resume after the fix: %v", err)
	}
	if got, err := storeOn(t, dstURL).GetTask(ctx, uid(src.BadStatusTask)); err != nil || got.Status != statestore.StatusComplete || len(got.SubtaskIDs) != smallWithOddities.Fanout {
		t.Fatalf("the fixed task after resuming: %+v, %v", got, err)
	}
	cleanURL, _ := newSource(t, genConfig{Seed: 9, Roots: 3, Fanout: 2, Messages: 500, Nodes: 3, Collections: 2})
	rep, err := runImport(ctx, t, cleanURL, statetest.New(t).URL, drydockimport.Options{Strict: true})
	if err != nil || rep.RejectedTotal != 0 {
		t.Fatalf("strict import of a clean source: %v, %d rejected", err, rep.RejectedTotal)
	}
}

// The source is read from one snapshot and never written: rows added to it
// while the import runs are not imported (nor counted), and its contents
// are the same afterwards.
func TestImportReadsOneSnapshotAndWritesNoSource(t *testing.T) {
	ctx := context.Background()
	srcURL, src := newSource(t, genConfig{Seed: 11, Roots: 3, Fanout: 2, Messages: 600, Nodes: 2, Collections: 1})
	dstURL := statetest.New(t).URL
	before := dumpTarget(t, srcURL)
	writer := connect(t, srcURL)
	late := uuid.New()
	added := false
	rep, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{BatchSize: 100, AfterBatch: func(table string) {
		if added {
			return
		}
		added = true
		// Committed by another session after the import's snapshot was taken.
		if _, err := writer.Exec(ctx, `INSERT INTO tasks (task_id, status, action, created) VALUES ($1, 'queued', 'noop', now())`, late[:]); err != nil {
			t.Error(err)
		}
		if _, err := writer.Exec(ctx, `INSERT INTO result_message (task_id, message, ts) SELECT task_id, 'late', now() FROM tasks`); err != nil {
			t.Error(err)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := tableOf(rep, "tasks"); got.Source != int64(len(src.Tasks)) || got.Imported != int64(len(src.Tasks)) {
		t.Errorf("tasks %+v, want %d: the late task was seen", got, len(src.Tasks))
	}
	if got := tableOf(rep, "result_message"); got.Source != int64(len(src.Messages)) || got.Imported != int64(len(src.Messages)) {
		t.Errorf("messages %+v, want %d: late messages were seen", got, len(src.Messages))
	}
	if _, err := storeOn(t, dstURL).GetTask(ctx, late); !errors.Is(err, statestore.ErrNotFound) {
		t.Errorf("late task: %v, want ErrNotFound", err)
	}
	if _, err := writer.Exec(ctx, `DELETE FROM result_message WHERE message = 'late'`); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.Exec(ctx, `DELETE FROM tasks WHERE task_id = $1`, late[:]); err != nil {
		t.Fatal(err)
	}
	if after := dumpTarget(t, srcURL); after != before {
		t.Error("the source changed")
	}
}

// A second import into a database while one runs is refused (ErrBusy),
// writing nothing; the first finishes.
func TestConcurrentImportRefused(t *testing.T) {
	ctx := context.Background()
	srcURL, _ := newSource(t, genConfig{Seed: 5, Roots: 2, Fanout: 2, Messages: 300, Nodes: 1, Collections: 1})
	dstURL := statetest.New(t).URL
	var second error
	tried := false
	_, err := runImport(ctx, t, srcURL, dstURL, drydockimport.Options{BatchSize: 100, AfterBatch: func(string) {
		if !tried {
			tried = true
			_, second = runImport(ctx, t, srcURL, dstURL, drydockimport.Options{Resume: true})
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(second, drydockimport.ErrBusy) {
		t.Fatalf("second import while one runs: %v, want ErrBusy", second)
	}
}
