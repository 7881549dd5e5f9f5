package statestore_test

// Hostile input at every public entry point: each value either gets a clear
// invalid-input error and changes nothing, or is stored and read back
// byte-for-byte as data and changes only what the call is meant to change.
// Nothing panics.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/internal/hostile"
	"github.com/drydock-go/statemgmt/statestore"
)

// The corpus lives in internal/hostile so the console's tests render the
// same values (see internal/console).
var (
	hostileStrings = hostile.Strings
	hostileJSON    = hostile.JSON
)

// fingerprint summarises every table, to see what a call changed.
func fingerprint(t *testing.T, pool *pgxpool.Pool) map[string]int64 {
	t.Helper()
	var v [8]int64
	err := pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM tasks), (SELECT coalesce(sum(version), 0) FROM tasks),
		(SELECT coalesce(sum(last_message_seq), 0) FROM tasks), (SELECT count(*) FROM result_message),
		(SELECT count(*) FROM build_data), (SELECT count(*) FROM boot_action),
		(SELECT count(*) FROM boot_action_status), (SELECT coalesce(sum(octet_length(result_message)), 0) FROM tasks)`).
		Scan(&v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7])
	if err != nil {
		t.Fatal(err)
	}
	return map[string]int64{"tasks": v[0], "task versions": v[1], "message seqs": v[2], "messages": v[3],
		"build data": v[4], "boot actions": v[5], "boot statuses": v[6], "result text": v[7]}
}

// entryPoint calls one public operation with a hostile value. read, when
// not nil, returns what was stored, for the byte-for-byte check; writes names
// the fingerprint entries an accepted call may change.
type entryPoint struct {
	name   string
	writes []string
	call   func(ctx context.Context, v string) (read func() (string, error), err error)
}

func TestHostileInputEverywhere(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	fixture, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateBootActionContext(ctx, "fixture-node", fixture.ID); err != nil {
		t.Fatal(err)
	}
	taskField := func(get func(*statestore.Task) string, id uuid.UUID) func() (string, error) {
		return func() (string, error) {
			tk, err := s.GetTask(ctx, id)
			if err != nil {
				return "", err
			}
			return get(tk), nil
		}
	}
	update := func(u func(v string) statestore.TaskUpdate, get func(*statestore.Task) string) func(context.Context, string) (func() (string, error), error) {
		return func(ctx context.Context, v string) (func() (string, error), error) {
			cur, err := s.GetTask(ctx, fixture.ID)
			if err != nil {
				return nil, err
			}
			if _, err := s.UpdateTask(ctx, fixture.ID, cur.Version, u(v)); err != nil {
				return nil, err
			}
			return taskField(get, fixture.ID), nil
		}
	}
	message := func(m func(v string) statestore.NewMessage, get func(statestore.ResultMessage) string) func(context.Context, string) (func() (string, error), error) {
		return func(ctx context.Context, v string) (func() (string, error), error) {
			out, err := s.AppendMessage(ctx, fixture.ID, m(v))
			if err != nil {
				return nil, err
			}
			return func() (string, error) {
				msgs, err := s.Messages(ctx, fixture.ID, out.Sequence-1, 1)
				if err != nil || len(msgs) != 1 {
					return "", fmt.Errorf("read back: %v", err)
				}
				return get(msgs[0]), nil
			}, nil
		}
	}
	buildData := func(b func(v string) statestore.NewBuildData, get func(statestore.BuildData) string) func(context.Context, string) (func() (string, error), error) {
		return func(ctx context.Context, v string) (func() (string, error), error) {
			bd, err := s.InsertBuildData(ctx, b(v))
			if err != nil {
				return nil, err
			}
			return func() (string, error) {
				page, err := s.BuildData(ctx, statestore.BuildDataQuery{TaskID: &bd.TaskID, Full: true})
				if err != nil || len(page.Records) != 1 || page.Next != "" {
					return "", fmt.Errorf("read back: %+v, %v", page, err)
				}
				return get(page.Records[0]), nil
			}, nil
		}
	}
	goodBD := func() statestore.NewBuildData {
		return statestore.NewBuildData{NodeName: "n1", TaskID: uuid.New(), Generator: "g", DataFormat: "text/plain", DataElement: "x"}
	}
	readOnly := func(f func(ctx context.Context, v string) error) func(context.Context, string) (func() (string, error), error) {
		return func(ctx context.Context, v string) (func() (string, error), error) { return nil, f(ctx, v) }
	}

	entries := []entryPoint{
		{"CreateTask.Action", []string{"tasks", "task versions"}, func(ctx context.Context, v string) (func() (string, error), error) {
			tk, err := s.CreateTask(ctx, statestore.NewTask{Action: v})
			if err != nil {
				return nil, err
			}
			return taskField(func(x *statestore.Task) string { return x.Action }, tk.ID), nil
		}},
		{"CreateTask.DesignRef", []string{"tasks", "task versions"}, func(ctx context.Context, v string) (func() (string, error), error) {
			tk, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop", DesignRef: v})
			if err != nil {
				return nil, err
			}
			return taskField(func(x *statestore.Task) string { return x.DesignRef }, tk.ID), nil
		}},
		{"CreateTask.CreatedBy", []string{"tasks", "task versions"}, func(ctx context.Context, v string) (func() (string, error), error) {
			tk, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop", CreatedBy: v})
			if err != nil {
				return nil, err
			}
			return taskField(func(x *statestore.Task) string { return x.CreatedBy }, tk.ID), nil
		}},
		{"UpdateTask.ResultMessage", []string{"task versions", "result text"}, update(
			func(v string) statestore.TaskUpdate { return statestore.TaskUpdate{ResultMessage: &v} },
			func(x *statestore.Task) string { return x.Result.Message })},
		{"UpdateTask.ResultReason", []string{"task versions"}, update(
			func(v string) statestore.TaskUpdate { return statestore.TaskUpdate{ResultReason: &v} },
			func(x *statestore.Task) string { return x.Result.Reason })},
		{"UpdateTask.DesignRef", []string{"task versions"}, update(
			func(v string) statestore.TaskUpdate { return statestore.TaskUpdate{DesignRef: &v} },
			func(x *statestore.Task) string { return x.DesignRef })},
		{"UpdateTask.Successes", []string{"task versions"}, update(
			func(v string) statestore.TaskUpdate { return statestore.TaskUpdate{Successes: []string{v}} },
			func(x *statestore.Task) string { return strings.Join(x.Result.Successes, "") })},
		{"UpdateTask.Status", []string{"task versions"}, readOnly(func(ctx context.Context, v string) error {
			cur, err := s.GetTask(ctx, fixture.ID)
			if err != nil {
				return err
			}
			st := statestore.TaskStatus(v)
			_, err = s.UpdateTask(ctx, fixture.ID, cur.Version, statestore.TaskUpdate{Status: &st})
			return err
		})},
		{"UpdateTask.ResultStatus", []string{"task versions"}, readOnly(func(ctx context.Context, v string) error {
			cur, err := s.GetTask(ctx, fixture.ID)
			if err != nil {
				return err
			}
			rs := statestore.ResultStatus(v)
			_, err = s.UpdateTask(ctx, fixture.ID, cur.Version, statestore.TaskUpdate{ResultStatus: &rs})
			return err
		})},
		{"AppendMessage.Message", []string{"messages", "message seqs"}, message(
			func(v string) statestore.NewMessage { return statestore.NewMessage{Message: v} },
			func(m statestore.ResultMessage) string { return m.Message })},
		{"AppendMessage.Context", []string{"messages", "message seqs"}, message(
			func(v string) statestore.NewMessage { return statestore.NewMessage{Message: "m", Context: v} },
			func(m statestore.ResultMessage) string { return m.Context })},
		{"AppendMessage.ContextType", []string{"messages", "message seqs"}, message(
			func(v string) statestore.NewMessage { return statestore.NewMessage{Message: "m", ContextType: v} },
			func(m statestore.ResultMessage) string { return m.ContextType })},
		{"ClaimTasks.claimer", nil, readOnly(func(ctx context.Context, v string) error {
			_, err := s.ClaimTasks(ctx, v, 1, "no_such_action")
			return err
		})},
		{"ClaimTasks.actions", nil, readOnly(func(ctx context.Context, v string) error {
			_, err := s.ClaimTasks(ctx, "w", 1, v)
			return err
		})},
		{"RequeueTasksOfClaimer", nil, readOnly(func(ctx context.Context, v string) error {
			_, err := s.RequeueTasksOfClaimer(ctx, v)
			return err
		})},
		{"ListTasks.Actions", nil, readOnly(func(ctx context.Context, v string) error {
			_, err := s.ListTasks(ctx, statestore.TaskFilter{Actions: []string{v}})
			return err
		})},
		{"ListTasks.Statuses", nil, readOnly(func(ctx context.Context, v string) error {
			_, err := s.ListTasks(ctx, statestore.TaskFilter{Statuses: []statestore.TaskStatus{statestore.TaskStatus(v)}})
			return err
		})},
		{"ListTasks.Cursor", nil, readOnly(func(ctx context.Context, v string) error {
			_, err := s.ListTasks(ctx, statestore.TaskFilter{Cursor: v})
			return err
		})},
		{"TerminateTask.by", nil, readOnly(func(ctx context.Context, v string) error {
			_, err := s.TerminateTask(ctx, uuid.New(), v) // unknown task: nothing to change
			if errors.Is(err, statestore.ErrNotFound) {
				return nil
			}
			return err
		})},
		{"CompleteTasks.status", nil, readOnly(func(ctx context.Context, v string) error {
			_, err := s.CompleteTasks(ctx, statestore.ResultStatus(v), statestore.Claim{TaskID: uuid.New(), Attempt: 1})
			return err
		})},
		{"InsertBuildData.NodeName", []string{"build data"}, buildData(
			func(v string) statestore.NewBuildData { b := goodBD(); b.NodeName = v; return b },
			func(b statestore.BuildData) string { return b.NodeName })},
		{"InsertBuildData.Generator", []string{"build data"}, buildData(
			func(v string) statestore.NewBuildData { b := goodBD(); b.Generator = v; return b },
			func(b statestore.BuildData) string { return b.Generator })},
		{"InsertBuildData.DataFormat", []string{"build data"}, buildData(
			func(v string) statestore.NewBuildData { b := goodBD(); b.DataFormat = v; return b },
			func(b statestore.BuildData) string { return b.DataFormat })},
		{"InsertBuildData.DataElement", []string{"build data"}, buildData(
			func(v string) statestore.NewBuildData { b := goodBD(); b.DataElement = v; return b },
			func(b statestore.BuildData) string { return b.DataElement })},
		{"BuildData.NodeName", nil, readOnly(func(ctx context.Context, v string) error {
			_, err := s.BuildData(ctx, statestore.BuildDataQuery{NodeName: v})
			return err
		})},
		{"CreateBootActionContext.node", []string{"boot actions"}, func(ctx context.Context, v string) (func() (string, error), error) {
			bc, _, err := s.CreateBootActionContext(ctx, v, fixture.ID)
			if err != nil {
				return nil, err
			}
			return func() (string, error) {
				got, err := s.GetBootActionContext(ctx, bc.NodeName)
				if err != nil {
					return "", err
				}
				return got.NodeName, nil
			}, nil
		}},
		{"VerifyBootActionKey.key", nil, readOnly(func(ctx context.Context, v string) error {
			_, err := s.VerifyBootActionKey(ctx, "fixture-node", []byte(v))
			if errors.Is(err, statestore.ErrKeyMismatch) {
				return nil // the expected answer to a wrong key
			}
			if err == nil {
				return errors.New("a hostile key verified")
			}
			return err
		})},
		{"CreateBootActionStatus.ActionName", []string{"boot statuses"}, func(ctx context.Context, v string) (func() (string, error), error) {
			st, err := s.CreateBootActionStatus(ctx, statestore.NewBootActionStatus{NodeName: "fixture-node", ActionName: v, TaskID: fixture.ID})
			if err != nil {
				return nil, err
			}
			return func() (string, error) {
				got, err := s.GetBootActionStatus(ctx, st.ActionID)
				if err != nil {
					return "", err
				}
				return got.ActionName, nil
			}, nil
		}},
		{"CreateBootActionStatus.Status", []string{"boot statuses"}, readOnly(func(ctx context.Context, v string) error {
			// An empty status means the default (incomplete); others must be the vocabulary.
			_, err := s.CreateBootActionStatus(ctx, statestore.NewBootActionStatus{NodeName: "fixture-node", ActionName: "a", TaskID: fixture.ID, Status: statestore.ResultStatus(v)})
			return err
		})},
		{"ParseULID", nil, readOnly(func(_ context.Context, v string) error {
			_, err := statestore.ParseULID(v)
			return err
		})},
	}

	jsonEntries := []entryPoint{
		{"CreateTask.NodeFilter", []string{"tasks", "task versions"}, func(ctx context.Context, v string) (func() (string, error), error) {
			tk, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop", NodeFilter: json.RawMessage(v)})
			if err != nil {
				return nil, err
			}
			return taskField(func(x *statestore.Task) string { return string(x.NodeFilter) }, tk.ID), nil
		}},
		{"CreateTask.RequestContext", []string{"tasks", "task versions"}, func(ctx context.Context, v string) (func() (string, error), error) {
			tk, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop", RequestContext: json.RawMessage(v)})
			if err != nil {
				return nil, err
			}
			return taskField(func(x *statestore.Task) string { return string(x.RequestContext) }, tk.ID), nil
		}},
		{"UpdateTask.Links", []string{"task versions"}, update(
			func(v string) statestore.TaskUpdate { return statestore.TaskUpdate{Links: json.RawMessage(v)} },
			func(x *statestore.Task) string { return string(x.Result.Links) })},
		{"AppendMessage.Extra", []string{"messages", "message seqs"}, message(
			func(v string) statestore.NewMessage {
				return statestore.NewMessage{Message: "m", Extra: json.RawMessage(v)}
			},
			func(m statestore.ResultMessage) string { return string(m.Extra) })},
	}

	tried, stored, rejected := 0, 0, 0
	run := func(e entryPoint, valueName, v string, jsonValue bool) {
		t.Run(e.name+"/"+valueName, func(t *testing.T) {
			tried++
			before := fingerprint(t, pool)
			var read func() (string, error)
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("panic: %v", p)
					}
				}()
				read, err = e.call(ctx, v)
			}()
			after := fingerprint(t, pool)
			if err != nil {
				rejected++
				var inv *statestore.InvalidInputError
				if !errors.As(err, &inv) || inv.Field == "" || inv.Problem == "" {
					t.Fatalf("error %v is not a clear invalid-input error", err)
				}
				if len(v) > 8 && strings.Contains(err.Error(), v) {
					t.Errorf("error repeats the rejected value: %.80q", err.Error())
				}
				for k := range before {
					if before[k] != after[k] {
						t.Fatalf("rejected input changed %s: %d -> %d", k, before[k], after[k])
					}
				}
				return
			}
			stored++
			for k := range before {
				allowed := false
				for _, w := range e.writes {
					allowed = allowed || w == k
				}
				if before[k] != after[k] && !allowed {
					t.Fatalf("accepted input changed %s (%d -> %d), which %s must not touch", k, before[k], after[k], e.name)
				}
			}
			if read == nil {
				return
			}
			got, rerr := read()
			if rerr != nil {
				t.Fatalf("read back: %v", rerr)
			}
			if jsonValue {
				var a, b any
				if json.Unmarshal([]byte(v), &a) != nil || json.Unmarshal([]byte(got), &b) != nil || fmt.Sprint(a) != fmt.Sprint(b) {
					t.Fatalf("JSON read back as %.80q, stored %.80q", got, v)
				}
				return
			}
			if got != v {
				t.Fatalf("read back %.80q, stored %.80q", got, v)
			}
		})
	}
	for _, e := range entries {
		for _, h := range hostileStrings {
			run(e, h.Name, h.V, false)
		}
	}
	for _, e := range jsonEntries {
		for _, h := range hostileJSON {
			run(e, h.Name, h.V, true)
		}
	}
	t.Logf("%d hostile inputs tried: %d stored and read back intact, %d rejected with a clear error", tried, stored, rejected)
	if tried < 200 {
		t.Fatalf("only %d inputs tried", tried)
	}
}
