package drydockimport_test

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// drydockSchema is the source schema, as Drydock's Alembic revisions create it.
//
//go:embed testdata/drydock_schema.sql
var drydockSchema string

// genConfig sizes a generated Drydock database.
type genConfig struct {
	Seed        uint64
	Roots       int // task trees, three levels deep: root, Fanout children, Fanout² grandchildren
	Fanout      int
	Messages    int // spread over the tasks in one global sequence
	Nodes       int
	Collections int // build data collections per node (each: lshw and lldp)
	// Oddities adds what a long-lived database has: NULLs, rejected values,
	// dangling references. Off for the benchmark's bulk data.
	Oddities bool
}

// Source-side rows, kept in Go so tests can say what the target must hold
// without the importer's own code.
type srcTask struct {
	ID, Parent     []byte
	Subtasks       [][]byte // nil: NULL list
	Status         *string
	Action         *string
	ResultStatus   *string
	ResultMessage  *string
	ResultReason   *string
	ErrorCount     *int32
	Successes      []string
	Failures       []string
	Retry          *int32
	Created        *time.Time // naive wall clock, as the column holds it
	CreatedBy      *string
	Updated        *time.Time
	DesignRef      *string
	RequestContext *string // the json column's text (double-encoded)
	NodeFilter     *string
	TerminatedAt   *time.Time
	TerminatedBy   *string
	Terminate      *bool
	ResultLinks    *string
}

type srcMessage struct {
	Seq         int32
	TaskID      []byte
	Message     *string
	Error       *bool
	Context     *string
	ContextType *string
	Ts          *time.Time
	Extra       *string
}

type srcBuildData struct {
	Node      *string
	TaskID    []byte
	Collected *time.Time
	Generator *string
	Format    *string
	Element   *string
}

type srcBootAction struct {
	Node   string
	TaskID []byte
	Key    []byte
}

type srcBootStatus struct {
	ActionID []byte
	Node     *string
	Name     *string
	TaskID   []byte
	Key      []byte
	Status   *string
}

type source struct {
	Tasks     []*srcTask
	Messages  []*srcMessage
	BuildData []*srcBuildData
	Boot      []*srcBootAction
	Statuses  []*srcBootStatus
	Identity  []byte
	LastPing  time.Time
	// Oddities the tests look for.
	BadStatusTask, OrphanTask, RunningTask, TerminatingTask, SparseTask, DSTTask []byte
	ListedNotChild, ListingParent, UnlistedChild, UnlistingParent                []byte
}

func sp(s string) *string       { return &s }
func bp(b bool) *bool           { return &b }
func ip(i int32) *int32         { return &i }
func tp(t time.Time) *time.Time { return &t }

func newID(r *rand.Rand) []byte {
	var u uuid.UUID
	for i := range u {
		u[i] = byte(r.Uint32())
	}
	u[6] = u[6]&0x0f | 0x40 // version 4, as Drydock's uuid.uuid4()
	u[8] = u[8]&0x3f | 0x80
	return u[:]
}

// dumps is Python's json.dumps of v, stored into a json column by
// SQLAlchemy: the column holds a JSON string whose text is the document.
func dumps(v any) string {
	inner, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	outer, err := json.Marshal(string(inner))
	if err != nil {
		panic(err)
	}
	return string(outer)
}

var (
	actions  = []string{"deploy_nodes", "prepare_nodes", "verify_site", "prepare_site", "validate_design"}
	subActs  = []string{"power_on_node", "identify_node", "configure_hardware", "apply_node_networking", "deploy_node"}
	finished = []string{"complete", "terminated"}
	results  = []string{"success", "partial_success", "failure", "incomplete", "unreported"}
)

// generate builds the source data in Go (deterministic for a seed).
func generate(cfg genConfig) *source {
	r := rand.New(rand.NewPCG(cfg.Seed, 19))
	s := &source{Identity: newID(r)}
	base := time.Date(2021, 11, 6, 12, 0, 0, 0, time.UTC) // naive wall clocks; the DST change of America/New_York is 2021-11-07 02:00
	s.LastPing = base.Add(40 * time.Hour)
	clock := base
	tick := func() time.Time { clock = clock.Add(time.Duration(1+r.IntN(90)) * time.Second); return clock }
	var leaves []*srcTask // level 2: rejecting one rejects nothing else
	var newTask func(parent *srcTask, level int) *srcTask
	newTask = func(parent *srcTask, level int) *srcTask {
		created := tick()
		t := &srcTask{ID: newID(r), Status: sp(finished[r.IntN(2)]), Created: tp(created), Updated: tp(created.Add(time.Minute)),
			CreatedBy: sp("drydock-api"), DesignRef: sp("deckhand+http://deckhand:9000/api/v1.0/revisions/7/rendered-documents"),
			RequestContext: sp(dumps(map[string]any{"user": "ops", "roles": []string{"admin"}, "request_id": fmt.Sprint(r.Uint32())})),
			NodeFilter:     sp(`{"filter_set_type": "union", "filter_set": [{"filter_type": "union", "node_names": ["node01"]}]}`),
			ResultStatus:   sp(results[r.IntN(len(results))]), ResultMessage: sp("finished"), ResultReason: sp("n/a"),
			ErrorCount: ip(0), Successes: []string{"node01"}, Failures: []string{}, Retry: ip(int32(r.IntN(3))),
			Terminate: bp(false), ResultLinks: sp(`[{"rel": "detail_logs", "href": "http://x/logs"}]`)}
		if level == 0 {
			t.Action = sp(actions[r.IntN(len(actions))])
		} else {
			t.Action = sp(subActs[r.IntN(len(subActs))])
			t.Parent = parent.ID
			parent.Subtasks = append(parent.Subtasks, t.ID)
		}
		if *t.Status == "terminated" {
			t.TerminatedAt, t.TerminatedBy, t.Terminate = tp(created.Add(2*time.Minute)), sp("ops"), bp(true)
		}
		s.Tasks = append(s.Tasks, t)
		if level < 2 {
			t.Subtasks = [][]byte{} // an empty list until a subtask is added
			for range cfg.Fanout {
				newTask(t, level+1)
			}
		} else {
			leaves = append(leaves, t)
			if r.IntN(2) == 0 {
				t.Subtasks = [][]byte{} // leaves: some '{}', some NULL
			}
		}
		return t
	}
	for range cfg.Roots {
		newTask(nil, 0)
	}
	lastRoot := s.Tasks[len(s.Tasks)-(1+cfg.Fanout+cfg.Fanout*cfg.Fanout)]
	var sparse *srcTask
	if cfg.Oddities {
		// Out-of-vocabulary status: rejected, with its whole subtree and messages.
		bad := s.Tasks[0]
		bad.Status = sp("Prepared")
		s.BadStatusTask = bad.ID
		// A subtask whose parent is gone (Drydock's purge left it).
		orphan := &srcTask{ID: newID(r), Parent: newID(r), Status: sp("complete"), Action: sp("noop"), Created: tp(tick())}
		s.Tasks = append(s.Tasks, orphan)
		s.OrphanTask = orphan.ID
		// Work in flight when Drydock stopped.
		run, term := leaves[len(leaves)-1], leaves[len(leaves)-2]
		run.Status, run.TerminatedAt, run.TerminatedBy, run.Terminate = sp("running"), nil, nil, bp(false)
		term.Status, term.TerminatedAt = sp("terminating"), nil
		s.RunningTask, s.TerminatingTask = run.ID, term.ID
		// NULL in every column Drydock allows it (all but the key; status,
		// action and created are what every Drydock task has).
		sparse = &srcTask{ID: newID(r), Status: sp("queued"), Action: sp("noop"), Created: tp(tick())}
		s.Tasks = append(s.Tasks, sparse)
		s.SparseTask = sparse.ID
		// Naive times inside the DST change (America/New_York): 01:30 occurs
		// twice on 2021-11-07; 02:30 does not exist on 2021-03-14.
		dst := lastRoot
		dst.Created, dst.Updated = tp(time.Date(2021, 11, 7, 1, 30, 0, 0, time.UTC)), tp(time.Date(2021, 3, 14, 2, 30, 0, 0, time.UTC))
		s.DSTTask = dst.ID
		// A result status outside the vocabulary, and result_links that are
		// not an array: rejected.
		// Subtask lists that disagree with parent_task_id: one names a task
		// that has no parent, one leaves out a child.
		lastRoot.Subtasks = append(lastRoot.Subtasks, sparse.ID)
		s.ListedNotChild, s.ListingParent = sparse.ID, lastRoot.ID
		var second *srcTask // a level-1 task of an accepted tree
		for _, t := range s.Tasks {
			if string(t.ID) == string(leaves[len(leaves)-5].Parent) {
				second = t
			}
		}
		s.UnlistedChild, s.UnlistingParent = second.Subtasks[0], second.ID
		second.Subtasks = second.Subtasks[1:]
		leaves[len(leaves)-3].ResultStatus = sp("succeeded")
		leaves[len(leaves)-4].ResultLinks = sp(`{"rel": "x"}`)
	}

	// Messages: one global sequence over random tasks, as workers appended them.
	for i := range cfg.Messages {
		t := s.Tasks[r.IntN(len(s.Tasks))]
		text := strings.Repeat("x", 20+r.IntN(60))
		if r.IntN(10) == 0 {
			text = strings.Repeat("y", 127) // cut by Drydock
		}
		m := &srcMessage{Seq: int32(i + 1), TaskID: t.ID, Message: sp(text), Error: bp(r.IntN(7) == 0),
			Context: sp(fmt.Sprintf("node%02d", r.IntN(20))), ContextType: sp("node"), Ts: tp(tick()),
			Extra: sp(dumps(map[string]any{"attempt": r.IntN(5), "detail": "ok"}))}
		s.Messages = append(s.Messages, m)
	}
	if cfg.Oddities && len(s.Messages) > 10 {
		for _, i := range []int{3, 4, 5, 8, 9, 10} {
			s.Messages[i].TaskID = sparse.ID // a task that is imported
		}
		s.Messages[3].Extra, s.Messages[3].Context, s.Messages[3].ContextType, s.Messages[3].Error = nil, nil, nil, nil
		s.Messages[4].Message, s.Messages[4].Ts = nil, nil               // no text, no time: the task's created
		s.Messages[5].Extra = sp(dumps(nil))                             // "null": SQL NULL
		s.Messages[6].TaskID = newID(r)                                  // a task that is not there
		s.Messages[7].TaskID = nil                                       // no task
		s.Messages[8].Extra = sp(dumps(map[string]any{"nul": "a\x00b"})) // jsonb refuses \u0000: the server rejects it
		s.Messages[9].Extra = sp(`{"plain": true}`)                      // not double-encoded: kept as it is
		// An unpaired surrogate escape: valid JSON to Go, refused by jsonb (the server's verdict).
		s.Messages[10].Extra = sp(`"{\"s\": \"\\ud800\"}"`)
	}

	// Build data: each node collected repeatedly.
	for n := range cfg.Nodes {
		node := fmt.Sprintf("node%03d", n)
		for c := range cfg.Collections {
			at := base.Add(time.Duration(c) * time.Hour)
			task := s.Tasks[r.IntN(len(s.Tasks))].ID
			s.BuildData = append(s.BuildData,
				&srcBuildData{Node: sp(node), TaskID: task, Collected: tp(at), Generator: sp("lshw"), Format: sp("application/json"),
					Element: sp(fmt.Sprintf(`{"node": %q, "collection": %d}`, node, c))},
				&srcBuildData{Node: sp(node), TaskID: task, Collected: tp(at), Generator: sp("lldp"), Format: sp("text/plain"),
					Element: sp(strings.Repeat("lldp neighbour\n", 3))})
		}
		key := make([]byte, 32)
		for i := range key {
			key[i] = byte(r.Uint32())
		}
		task := s.Tasks[r.IntN(len(s.Tasks))].ID
		s.Boot = append(s.Boot, &srcBootAction{Node: node, TaskID: task, Key: key})
		for a, name := range []string{"hw_config", "os_install", "promjoin"} {
			id := make([]byte, 16)
			ms := uint64(base.Add(time.Duration(n*10+a) * time.Minute).UnixMilli())
			for i := range 6 {
				id[i] = byte(ms >> (8 * (5 - i)))
			}
			for i := 6; i < 16; i++ {
				id[i] = byte(r.Uint32())
			}
			s.Statuses = append(s.Statuses, &srcBootStatus{ActionID: id, Node: sp(node), Name: sp(name), TaskID: task, Key: key,
				Status: sp(results[r.IntN(len(results))])})
		}
	}
	if cfg.Oddities && cfg.Nodes > 3 {
		s.BuildData = append(s.BuildData,
			&srcBuildData{Node: nil, TaskID: s.Tasks[2].ID, Collected: tp(base), Generator: sp("lshw"), Format: sp("application/json"), Element: sp("{}")},
			&srcBuildData{Node: sp("node 7"), TaskID: s.Tasks[2].ID, Collected: tp(base), Generator: sp("lshw"), Format: sp("application/json"), Element: sp("{}")},
			&srcBuildData{Node: sp("node001"), TaskID: s.Tasks[2].ID, Collected: tp(base), Generator: sp("lshw"), Format: sp("json"), Element: sp("{}")},
			&srcBuildData{Node: sp("node001"), TaskID: s.Tasks[2].ID, Collected: tp(base), Generator: sp("dmesg"), Format: sp("text/plain"), Element: nil},
		)
		s.Boot[1].Key = s.Boot[1].Key[:16] // a short key: rejected
		s.Statuses[0].Status = sp("running")
		s.Statuses[1].Status = nil
	}
	return s
}

// load writes the source into a database that has the Drydock schema, with
// COPY, the columns as Drydock's to_db writes them.
func load(ctx context.Context, t testing.TB, conn *pgx.Conn, s *source) {
	t.Helper()
	if _, err := conn.Exec(ctx, drydockSchema); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO alembic_version VALUES ('4713e7ebca9')`); err != nil {
		t.Fatal(err)
	}
	copyRows := func(table string, cols []string, n int, row func(i int) []any) {
		t.Helper()
		_, err := conn.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromSlice(n, func(i int) ([]any, error) { return row(i), nil }))
		if err != nil {
			t.Fatalf("load %s: %v", table, err)
		}
	}
	js := func(p *string) any { // a json column's text
		if p == nil {
			return nil
		}
		return *p
	}
	naive := func(p *time.Time) any {
		if p == nil {
			return nil
		}
		return *p
	}
	copyRows("tasks", []string{"task_id", "parent_task_id", "subtask_id_list", "result_status", "result_message", "result_reason",
		"result_error_count", "result_successes", "result_failures", "retry", "status", "created", "created_by", "updated",
		"design_ref", "request_context", "node_filter", "action", "terminated", "terminated_by", "terminate", "result_links"},
		len(s.Tasks), func(i int) []any {
			x := s.Tasks[i]
			var subs any
			if x.Subtasks != nil {
				subs = x.Subtasks
			}
			return []any{x.ID, x.Parent, subs, x.ResultStatus, x.ResultMessage, x.ResultReason, x.ErrorCount, x.Successes, x.Failures,
				x.Retry, x.Status, naive(x.Created), x.CreatedBy, naive(x.Updated), x.DesignRef, js(x.RequestContext), js(x.NodeFilter),
				x.Action, naive(x.TerminatedAt), x.TerminatedBy, x.Terminate, js(x.ResultLinks)}
		})
	copyRows("result_message", []string{"sequence", "task_id", "message", "error", "context", "context_type", "ts", "extra"},
		len(s.Messages), func(i int) []any {
			m := s.Messages[i]
			return []any{m.Seq, m.TaskID, m.Message, m.Error, m.Context, m.ContextType, naive(m.Ts), js(m.Extra)}
		})
	copyRows("build_data", []string{"node_name", "task_id", "collected_date", "generator", "data_format", "data_element"},
		len(s.BuildData), func(i int) []any {
			b := s.BuildData[i]
			return []any{b.Node, b.TaskID, naive(b.Collected), b.Generator, b.Format, b.Element}
		})
	copyRows("boot_action", []string{"node_name", "task_id", "identity_key"}, len(s.Boot), func(i int) []any {
		b := s.Boot[i]
		return []any{b.Node, b.TaskID, b.Key}
	})
	copyRows("boot_action_status", []string{"node_name", "action_id", "action_name", "task_id", "identity_key", "action_status"},
		len(s.Statuses), func(i int) []any {
			b := s.Statuses[i]
			return []any{b.Node, b.ActionID, b.Name, b.TaskID, b.Key, b.Status}
		})
	if _, err := conn.Exec(ctx, `INSERT INTO active_instance (identity, last_ping) VALUES ($1, $2)`, s.Identity, naive(&s.LastPing)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT setval('result_message_sequence_seq', $1)`, len(s.Messages)+1); err != nil {
		t.Fatal(err)
	}
}
