package cli

import (
	"encoding/json"
	"fmt"
	"os/user"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/drydock-go/statemgmt/statestore"
)

// taskView is a task as statectl prints it.
type taskView struct {
	ID           string          `json:"id"`
	Parent       string          `json:"parent,omitempty"`
	Action       string          `json:"action"`
	Status       string          `json:"status"`
	Result       string          `json:"result"`
	ResultMsg    string          `json:"result_message,omitempty"`
	ErrorCount   int             `json:"error_count"`
	DesignRef    string          `json:"design_ref,omitempty"`
	CreatedAt    time.Time       `json:"created_at"`
	CreatedBy    string          `json:"created_by,omitempty"`
	UpdatedAt    time.Time       `json:"updated_at"`
	ClaimedBy    string          `json:"claimed_by,omitempty"`
	TerminatedAt *time.Time      `json:"terminated_at,omitempty"`
	TerminatedBy string          `json:"terminated_by,omitempty"`
	Version      int64           `json:"version"`
	Subtasks     []string        `json:"subtasks,omitempty"`
	NodeFilter   json.RawMessage `json:"node_filter,omitempty"`
	Messages     []messageView   `json:"messages,omitempty"`
	Children     []*taskView     `json:"children,omitempty"`
}

type messageView struct {
	Sequence    int64     `json:"sequence"`
	Time        time.Time `json:"time"`
	Error       bool      `json:"error"`
	Context     string    `json:"context,omitempty"`
	ContextType string    `json:"context_type,omitempty"`
	Message     string    `json:"message"`
}

func viewTask(t *statestore.Task) *taskView {
	v := &taskView{ID: t.ID.String(), Action: t.Action, Status: string(t.Status), Result: string(t.Result.Status),
		ResultMsg: t.Result.Message, ErrorCount: t.Result.ErrorCount, DesignRef: t.DesignRef, CreatedAt: t.CreatedAt,
		CreatedBy: t.CreatedBy, UpdatedAt: t.UpdatedAt, ClaimedBy: t.ClaimedBy, TerminatedAt: t.TerminatedAt, TerminatedBy: t.TerminatedBy,
		Version: t.Version, NodeFilter: t.NodeFilter}
	if t.ParentID != nil {
		v.Parent = t.ParentID.String()
	}
	for _, s := range t.SubtaskIDs {
		v.Subtasks = append(v.Subtasks, s.String())
	}
	for _, m := range t.Messages {
		v.Messages = append(v.Messages, viewMessage(m))
	}
	return v
}

func viewMessage(m statestore.ResultMessage) messageView {
	return messageView{Sequence: m.Sequence, Time: m.Time, Error: m.Error, Context: m.Context, ContextType: m.ContextType, Message: m.Message}
}

// openForTask checks the output flag (when out is not nil) and the task id
// argument, then opens the store; close it with the returned func.
func (e *env) openForTask(c *cobra.Command, out *output, args []string) (*statestore.Store, func(), uuid.UUID, error) {
	if out != nil {
		if err := out.check(); err != nil {
			return nil, nil, uuid.Nil, err
		}
	}
	id, err := parseID(args[0], "task id")
	if err != nil {
		return nil, nil, uuid.Nil, err
	}
	s, closeFn, err := e.store(c.Context())
	if err != nil {
		return nil, nil, uuid.Nil, err
	}
	return s, closeFn, id, nil
}

// agoPtr is ago of an optional time: "-" when nil.
func agoPtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return ago(*t)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func errMark(isErr bool) string {
	if isErr {
		return "ERROR "
	}
	return ""
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "statectl"
}

// statusCounts prints task counts by status in lifecycle order, e.g.
// "3 tasks (complete 2, terminated 1)".
// countTasks is the number of tasks a count by status holds.
func countTasks(m map[statestore.TaskStatus]int64) int64 {
	var n int64
	for _, c := range m {
		n += c
	}
	return n
}

func statusCounts(m map[statestore.TaskStatus]int64) string {
	var total int64
	var parts []string
	for _, st := range []statestore.TaskStatus{statestore.StatusRequested, statestore.StatusQueued, statestore.StatusRunning,
		statestore.StatusTerminating, statestore.StatusTerminated, statestore.StatusComplete} {
		if n := m[st]; n > 0 {
			total += n
			parts = append(parts, fmt.Sprintf("%s %d", st, n))
		}
	}
	if total == 0 {
		return "0 tasks"
	}
	return fmt.Sprintf("%d tasks (%s)", total, strings.Join(parts, ", "))
}
