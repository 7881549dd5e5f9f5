package statestore_test

// Round trips of every column of every table through the sqlc-generated code,
// and the CHECK constraints that guard the vocabularies.

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/drydock-go/statemgmt/gen/db"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

var q = db.New()

// jsonEqual compares JSON documents by meaning: jsonb normalises spacing and
// key order.
var jsonEqual = cmp.Transformer("json", func(m json.RawMessage) any {
	if m == nil {
		return nil
	}
	var v any
	if err := json.Unmarshal(m, &v); err != nil {
		return "invalid JSON: " + string(m)
	}
	return v
})

// ts is a fixed time with microsecond precision, as PostgreSQL stores it.
var ts = time.Date(2026, 11, 24, 10, 30, 15, 123456000, time.UTC)

func ptr[T any](v T) *T { return &v }

// recent reports whether a server-set time is within a minute of now.
func recent(t *testing.T, name string, got time.Time) {
	t.Helper()
	if d := time.Since(got); d < -time.Minute || d > time.Minute {
		t.Errorf("%s = %v, want about now", name, got)
	}
}

func TestTaskRoundTrip(t *testing.T) {
	ctx := context.Background()
	pool := statetest.NewPool(t)

	parent, err := q.InsertTask(ctx, pool, db.InsertTaskParams{
		TaskID: uuid.New(), Status: "queued", Action: "deploy_nodes", ResultStatus: "incomplete",
		ResultSuccesses: []string{}, ResultFailures: []string{}, ResultLinks: json.RawMessage(`[]`),
	})
	if err != nil {
		t.Fatal(err)
	}
	p := db.InsertTaskParams{
		TaskID:           uuid.New(),
		ParentTaskID:     &parent.TaskID,
		Status:           "running",
		Action:           "prepare_nodes",
		DesignRef:        "deckhand+https://deckhand.example:8443/e50b4d74",
		NodeFilter:       json.RawMessage(`{"filter_set_type": "union", "filter_set": [{"node_names": ["n1", "n2"]}]}`),
		RequestContext:   json.RawMessage(`{"user": "ops", "request_id": "abc"}`),
		Retry:            2,
		CreatedBy:        "orchestrator-1",
		Terminate:        true,
		ResultStatus:     "partial_success",
		ResultMessage:    "two of three nodes deployed",
		ResultReason:     "node n3 did not answer IPMI",
		ResultErrorCount: 1,
		ResultSuccesses:  []string{"n1", "n2"},
		ResultFailures:   []string{"n3"},
		ResultLinks:      json.RawMessage(`[{"rel": "detail_logs", "href": "https://logs.example/t/1"}]`),
	}
	got, err := q.InsertTask(ctx, pool, p)
	if err != nil {
		t.Fatal(err)
	}
	recent(t, "created_at", got.CreatedAt)
	recent(t, "updated_at", got.UpdatedAt)
	want := &db.Tasks{
		TaskID: p.TaskID, ParentTaskID: p.ParentTaskID,
		Status: p.Status, Action: p.Action, DesignRef: p.DesignRef, NodeFilter: p.NodeFilter,
		RequestContext: p.RequestContext, Retry: p.Retry, CreatedAt: got.CreatedAt, CreatedBy: p.CreatedBy,
		UpdatedAt: got.UpdatedAt, Terminate: p.Terminate, ResultStatus: p.ResultStatus,
		ResultMessage: p.ResultMessage, ResultReason: p.ResultReason, ResultErrorCount: p.ResultErrorCount,
		ResultSuccesses: p.ResultSuccesses, ResultFailures: p.ResultFailures, ResultLinks: p.ResultLinks,
		Version: 1,
	}
	if diff := cmp.Diff(want, got, jsonEqual); diff != "" {
		t.Fatalf("InsertTask returned (-want +got):\n%s", diff)
	}
	read, err := q.GetTask(ctx, pool, p.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, bareTask(t, read), jsonEqual); diff != "" {
		t.Fatalf("GetTask returned (-want +got):\n%s", diff)
	}

	// Columns no insert sets: terminated_at/by, claim, subtask list, sequence.
	if _, err := pool.Exec(ctx, `UPDATE tasks SET terminated_at = $2, terminated_by = 'ops',
		claimed_by = 'worker-7', claimed_at = $2, last_message_seq = 4, attempt = 3
		WHERE task_id = $1`, p.TaskID, ts); err != nil {
		t.Fatal(err)
	}
	read, err = q.GetTask(ctx, pool, p.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	want.TerminatedAt, want.TerminatedBy = &ts, ptr("ops")
	want.ClaimedBy, want.ClaimedAt = ptr("worker-7"), &ts
	want.LastMessageSeq, want.Attempt = 4, 3
	if diff := cmp.Diff(want, bareTask(t, read), jsonEqual); diff != "" {
		t.Fatalf("GetTask after update (-want +got):\n%s", diff)
	}
}

func TestTaskNullJSONStaysNull(t *testing.T) {
	ctx := context.Background()
	pool := statetest.NewPool(t)
	id := uuid.New()
	if _, err := q.InsertTask(ctx, pool, db.InsertTaskParams{
		TaskID: id, Status: "requested", Action: "noop", ResultStatus: "incomplete",
		ResultLinks: json.RawMessage(`[]`),
	}); err != nil {
		t.Fatal(err)
	}
	var nullFilter, nullContext bool
	if err := pool.QueryRow(ctx, "SELECT node_filter IS NULL, request_context IS NULL FROM tasks WHERE task_id = $1", id).
		Scan(&nullFilter, &nullContext); err != nil {
		t.Fatal(err)
	}
	if !nullFilter || !nullContext {
		t.Fatalf("nil json.RawMessage stored as JSON, not SQL NULL (node_filter NULL: %v, request_context NULL: %v)", nullFilter, nullContext)
	}
	got, err := q.GetTask(ctx, pool, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.NodeFilter != nil || got.RequestContext != nil || got.ParentTaskID != nil {
		t.Fatalf("NULLs read back as %q, %q, %v", got.NodeFilter, got.RequestContext, got.ParentTaskID)
	}
}

func TestResultMessageRoundTrip(t *testing.T) {
	ctx := context.Background()
	pool := statetest.NewPool(t)
	task, err := q.InsertTask(ctx, pool, db.InsertTaskParams{
		TaskID: uuid.New(), Status: "running", Action: "deploy_nodes", ResultStatus: "incomplete", ResultLinks: json.RawMessage(`[]`),
	})
	if err != nil {
		t.Fatal(err)
	}
	withTime := db.AppendResultMessageParams{
		TaskID: task.TaskID, Message: "node n1 powered on", Error: false, Context: "n1", ContextType: "node",
		Ts: &ts, Extra: json.RawMessage(`{"ipmi": "10.0.0.1"}`),
	}
	first, err := q.AppendResultMessage(ctx, pool, withTime)
	if err != nil {
		t.Fatal(err)
	}
	want := &db.ResultMessage{TaskID: task.TaskID, Sequence: 1, Message: withTime.Message, Context: "n1",
		ContextType: "node", Ts: ts, Extra: withTime.Extra}
	if diff := cmp.Diff(want, first, jsonEqual); diff != "" {
		t.Fatalf("first message (-want +got):\n%s", diff)
	}
	// Default timestamp is the database's clock; sequence continues.
	second, err := q.AppendResultMessage(ctx, pool, db.AppendResultMessageParams{
		TaskID: task.TaskID, Message: "node n2 failed to PXE boot", Error: true, Context: "n2", ContextType: "node",
	})
	if err != nil {
		t.Fatal(err)
	}
	recent(t, "ts", second.Ts)
	if second.Sequence != 2 || !second.Error || second.Extra != nil {
		t.Fatalf("second message = %+v", second)
	}
	read, err := q.GetResultMessage(ctx, pool, db.GetResultMessageParams{TaskID: task.TaskID, Sequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, read, jsonEqual); diff != "" {
		t.Fatalf("GetResultMessage (-want +got):\n%s", diff)
	}
	// A message for a missing task inserts nothing.
	if _, err := q.AppendResultMessage(ctx, pool, db.AppendResultMessageParams{TaskID: uuid.New(), Message: "x"}); err == nil {
		t.Fatal("appending to a missing task succeeded")
	}
}

func TestBuildDataRoundTrip(t *testing.T) {
	ctx := context.Background()
	pool := statetest.NewPool(t)
	p := db.InsertBuildDataParams{
		NodeName: "node01.rack-a", TaskID: uuid.New(), CollectedAt: &ts, Generator: "lshw",
		DataFormat: "application/json; charset=utf-8", DataElement: `{"id": "node01", "class": "system"}`,
	}
	got, err := q.InsertBuildData(ctx, pool, p)
	if err != nil {
		t.Fatal(err)
	}
	want := &db.BuildData{BuildDataID: got.BuildDataID, NodeName: p.NodeName, TaskID: p.TaskID, CollectedAt: ts,
		Generator: p.Generator, DataFormat: p.DataFormat, DataElement: p.DataElement}
	read, err := q.GetBuildData(ctx, pool, got.BuildDataID)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*db.BuildData{got, read} {
		if diff := cmp.Diff(want, g); diff != "" {
			t.Fatalf("build data (-want +got):\n%s", diff)
		}
	}
	p.CollectedAt = nil
	dflt, err := q.InsertBuildData(ctx, pool, p)
	if err != nil {
		t.Fatal(err)
	}
	recent(t, "collected_at", dflt.CollectedAt)
}

func TestBootActionRoundTrip(t *testing.T) {
	ctx := context.Background()
	pool := statetest.NewPool(t)
	hash := make([]byte, 32)
	for i := range hash {
		hash[i] = byte(i)
	}
	p := db.UpsertBootActionParams{NodeName: "node01", TaskID: uuid.New(), IdentityKeyHash: hash}
	got, err := q.UpsertBootAction(ctx, pool, p)
	if err != nil {
		t.Fatal(err)
	}
	want := &db.BootAction{NodeName: p.NodeName, TaskID: p.TaskID, IdentityKeyHash: hash,
		CreatedAt: got.CreatedAt, UpdatedAt: got.UpdatedAt}
	read, err := q.GetBootAction(ctx, pool, "node01")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, read); diff != "" {
		t.Fatalf("boot action (-want +got):\n%s", diff)
	}
	// Upsert replaces task and key, keeps the row.
	p.TaskID = uuid.New()
	p.IdentityKeyHash = make([]byte, 32)
	again, err := q.UpsertBootAction(ctx, pool, p)
	if err != nil {
		t.Fatal(err)
	}
	if again.TaskID != p.TaskID || !cmp.Equal(again.IdentityKeyHash, p.IdentityKeyHash) || !again.CreatedAt.Equal(got.CreatedAt) {
		t.Fatalf("upsert did not replace: %+v", again)
	}

	sp := db.InsertBootActionStatusParams{ActionID: uuid.New(), NodeName: "node01", ActionName: "hw_config",
		TaskID: p.TaskID, IdentityKeyHash: hash, ActionStatus: "success"}
	status, err := q.InsertBootActionStatus(ctx, pool, sp)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus := &db.BootActionStatus{ActionID: sp.ActionID, NodeName: sp.NodeName, ActionName: sp.ActionName,
		TaskID: sp.TaskID, IdentityKeyHash: hash, ActionStatus: "success", CreatedAt: status.CreatedAt, UpdatedAt: status.UpdatedAt,
		RunSeq: 1} // the first run recorded
	readStatus, err := q.GetBootActionStatus(ctx, pool, sp.ActionID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantStatus, readStatus); diff != "" {
		t.Fatalf("boot action status (-want +got):\n%s", diff)
	}
}

func TestActiveInstanceRoundTrip(t *testing.T) {
	ctx := context.Background()
	pool := statetest.NewPool(t)
	first, err := q.RecordLeader(ctx, pool, db.RecordLeaderParams{Identity: uuid.New(), Hostname: "orch-a", Pid: 4242})
	if err != nil {
		t.Fatal(err)
	}
	second, err := q.RecordLeader(ctx, pool, db.RecordLeaderParams{Identity: uuid.New(), Hostname: "orch-b", Pid: 77})
	if err != nil {
		t.Fatal(err)
	}
	if first.Term != 1 || second.Term != 2 {
		t.Fatalf("terms = %d, %d; want 1, 2", first.Term, second.Term)
	}
	read, err := q.GetActiveInstance(ctx, pool, 42)
	if err != nil {
		t.Fatal(err)
	}
	want := &db.GetActiveInstanceRow{DummyKey: 1, Identity: second.Identity, Term: 2, ElectedAt: second.ElectedAt,
		LastPing: second.LastPing, Hostname: "orch-b", Pid: 77, BackendPid: second.BackendPid, LockHeld: false}
	if diff := cmp.Diff(want, read); diff != "" {
		t.Fatalf("active instance (-want +got):\n%s", diff)
	}
	if read.BackendPid == 0 || read.ResignedAt != nil {
		t.Fatalf("active instance = %+v", read)
	}
	history, err := q.ListLeaderTerms(ctx, pool, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != 2 || history[0].Term != 2 || history[1].EndReason == nil || *history[1].EndReason != "superseded" {
		t.Fatalf("leader history = %+v", history)
	}
}

// TestCheckConstraints inserts one bad value at a time and expects the
// database to refuse it with a check violation naming the constraint.
func TestCheckConstraints(t *testing.T) {
	ctx := context.Background()
	pool := statetest.NewPool(t)
	good := func() db.InsertTaskParams {
		return db.InsertTaskParams{TaskID: uuid.New(), Status: "queued", Action: "noop",
			ResultStatus: "incomplete", ResultLinks: json.RawMessage(`[]`)}
	}
	long := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'x'
		}
		return string(b)
	}
	tests := []struct {
		name       string
		insert     func() error
		constraint string
	}{
		{"unknown task status", func() error { p := good(); p.Status = "done"; _, err := q.InsertTask(ctx, pool, p); return err }, "tasks_status_check"},
		{"status in capitals", func() error { p := good(); p.Status = "QUEUED"; _, err := q.InsertTask(ctx, pool, p); return err }, "tasks_status_check"},
		{"unknown result status", func() error { p := good(); p.ResultStatus = "ok"; _, err := q.InsertTask(ctx, pool, p); return err }, "tasks_result_status_check"},
		{"empty action", func() error { p := good(); p.Action = ""; _, err := q.InsertTask(ctx, pool, p); return err }, "tasks_action_check"},
		{"action with spaces", func() error { p := good(); p.Action = "deploy nodes"; _, err := q.InsertTask(ctx, pool, p); return err }, "tasks_action_check"},
		{"negative retry", func() error { p := good(); p.Retry = -1; _, err := q.InsertTask(ctx, pool, p); return err }, "tasks_retry_nonnegative"},
		{"links not an array", func() error {
			p := good()
			p.ResultLinks = json.RawMessage(`{}`)
			_, err := q.InsertTask(ctx, pool, p)
			return err
		}, "tasks_result_links_array"},
		{"oversized design ref", func() error { p := good(); p.DesignRef = long(2049); _, err := q.InsertTask(ctx, pool, p); return err }, "tasks_design_ref_length"},
		{"oversized message", func() error {
			p := good()
			if _, err := q.InsertTask(ctx, pool, p); err != nil {
				return err
			}
			_, err := q.AppendResultMessage(ctx, pool, db.AppendResultMessageParams{TaskID: p.TaskID, Message: long(65537)})
			return err
		}, "result_message_message_length"},
		{"bad node name", func() error {
			_, err := q.InsertBuildData(ctx, pool, db.InsertBuildDataParams{NodeName: "-bad name", TaskID: uuid.New(),
				Generator: "lshw", DataFormat: "text/plain", DataElement: "x"})
			return err
		}, "build_data_node_name_check"},
		{"data format not a MIME type", func() error {
			_, err := q.InsertBuildData(ctx, pool, db.InsertBuildDataParams{NodeName: "n1", TaskID: uuid.New(),
				Generator: "lshw", DataFormat: "json", DataElement: "x"})
			return err
		}, "build_data_data_format_check"},
		{"empty generator", func() error {
			_, err := q.InsertBuildData(ctx, pool, db.InsertBuildDataParams{NodeName: "n1", TaskID: uuid.New(),
				Generator: "", DataFormat: "text/plain", DataElement: "x"})
			return err
		}, "build_data_generator_check"},
		{"short identity key hash", func() error {
			_, err := q.UpsertBootAction(ctx, pool, db.UpsertBootActionParams{NodeName: "n1", TaskID: uuid.New(), IdentityKeyHash: []byte{1, 2}})
			return err
		}, "boot_action_identity_key_hash_length"},
		{"unknown boot action status", func() error {
			_, err := q.InsertBootActionStatus(ctx, pool, db.InsertBootActionStatusParams{ActionID: uuid.New(), NodeName: "n1",
				ActionName: "hw", TaskID: uuid.New(), IdentityKeyHash: make([]byte, 32), ActionStatus: "running"})
			return err
		}, "boot_action_status_action_status_check"},
		{"empty action name", func() error {
			_, err := q.InsertBootActionStatus(ctx, pool, db.InsertBootActionStatusParams{ActionID: uuid.New(), NodeName: "n1",
				ActionName: "", TaskID: uuid.New(), IdentityKeyHash: make([]byte, 32), ActionStatus: "success"})
			return err
		}, "boot_action_status_action_name_check"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.insert()
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "23514" || pgErr.ConstraintName != tc.constraint {
				t.Fatalf("error = %v, want check violation of %s", err, tc.constraint)
			}
		})
	}
	// Nothing of the rejected rows was written (the first case's task is the
	// only task insert that could have succeeded: the oversized message's).
	var tasks, messages, builds, boots int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM tasks), (SELECT count(*) FROM result_message),
		(SELECT count(*) FROM build_data), (SELECT count(*) FROM boot_action) + (SELECT count(*) FROM boot_action_status)`).
		Scan(&tasks, &messages, &builds, &boots); err != nil {
		t.Fatal(err)
	}
	if tasks != 1 || messages != 0 || builds != 0 || boots != 0 {
		t.Fatalf("rows after rejected inserts: tasks %d (want 1), messages %d, build data %d, boot actions %d", tasks, messages, builds, boots)
	}
}

var _ = cmpopts.EquateEmpty

// bareTask drops the derived subtask list from a read task row.
func bareTask(t *testing.T, r *db.GetTaskRow) *db.Tasks {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var out db.Tasks
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}
