package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/drydock-go/statemgmt/fetch"
	"github.com/drydock-go/statemgmt/statestore"
)

func (e *env) migrateCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "migrate", Short: "Migrate the schema: up, down [N], status"}
	run := func(f func(ctx context.Context, args []string) error) func(*cobra.Command, []string) error {
		return func(c *cobra.Command, args []string) error { return f(c.Context(), args) }
	}
	var downYes bool
	down := &cobra.Command{Use: "down [N]", Short: "Migrate down N versions (default 1); lists the tables and rows it would drop and asks first", Args: cobra.MaximumNArgs(1),
		Example: "  statectl migrate down        # one version, asks\n  statectl migrate down 3 --yes",
		RunE: run(func(ctx context.Context, args []string) error {
			n := 1
			if len(args) == 1 {
				v, err := strconv.Atoi(args[0])
				if err != nil || v < 1 {
					return usagef("down %q: N must be a positive number of versions", args[0])
				}
				n = v
			}
			conn, err := e.conn(ctx)
			if err != nil {
				return err
			}
			defer conn.Close(context.WithoutCancel(ctx))
			cur, err := statestore.SchemaVersion(ctx, conn)
			if err != nil {
				return err
			}
			target := max(cur-int32(n), 0)
			if !downYes {
				plan, err := statestore.PlanMigrateDown(ctx, conn, target)
				if err != nil {
					return err
				}
				if err := e.confirmDown(plan); err != nil {
					return err
				}
			}
			res, err := statestore.MigrateTo(ctx, conn, target, e.logger)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "schema at version %d (was %d)\n", res.To, res.From)
			return nil
		})}
	down.Flags().BoolVar(&downYes, "yes", false, "do not ask for confirmation")
	cmd.AddCommand(
		&cobra.Command{Use: "up", Short: "Migrate to the latest version", Args: cobra.NoArgs,
			RunE: run(func(ctx context.Context, _ []string) error {
				conn, err := e.conn(ctx)
				if err != nil {
					return err
				}
				defer conn.Close(context.WithoutCancel(ctx))
				res, err := statestore.Migrate(ctx, conn, e.logger)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "schema at version %d (was %d; applied %d)\n", res.To, res.From, len(res.Applied))
				return nil
			})},
		down,
		&cobra.Command{Use: "status", Short: "Show the schema version", Args: cobra.NoArgs,
			RunE: run(func(ctx context.Context, _ []string) error {
				conn, err := e.conn(ctx)
				if err != nil {
					return err
				}
				defer conn.Close(context.WithoutCancel(ctx))
				cur, err := statestore.SchemaVersion(ctx, conn)
				if err != nil {
					return err
				}
				latest := statestore.LatestSchemaVersion()
				state := "up to date"
				if cur < latest {
					state = fmt.Sprintf("%d migration(s) pending", latest-cur)
				}
				fmt.Fprintf(e.stdout, "version %d of %d: %s\n", cur, latest, state)
				return nil
			})},
	)
	return cmd
}

// confirmDown shows what a down migration would destroy and asks; anything
// but y/yes cancels.
func (e *env) confirmDown(plan statestore.DownPlan) error {
	if len(plan.Tables) == 0 {
		fmt.Fprintf(e.stderr, "migrate down from version %d to %d drops no table.\n", plan.From, plan.To)
	} else {
		fmt.Fprintf(e.stderr, "migrate down from version %d to %d DROPS %d table(s) holding %d row(s) in all:\n", plan.From, plan.To, len(plan.Tables), plan.Rows())
		for _, t := range plan.Tables {
			fmt.Fprintf(e.stderr, "  %-20s %d rows\n", t.Table, t.Rows)
		}
	}
	fmt.Fprint(e.stderr, "continue? [y/N] ")
	answer, _ := bufio.NewReader(e.stdin).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return errors.New("migrate down cancelled: nothing changed")
	}
	return nil
}

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
		CreatedBy: t.CreatedBy, UpdatedAt: t.UpdatedAt, ClaimedBy: t.ClaimedBy, TerminatedBy: t.TerminatedBy,
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

// optionalID parses an optional UUID flag: nil when the flag is empty.
func optionalID(s, flag string) (*uuid.UUID, error) {
	if s == "" {
		return nil, nil
	}
	id, err := parseID(s, flag)
	if err != nil {
		return nil, err
	}
	return &id, nil
}

func parseID(s, what string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, usagef("%s %q is not a UUID", what, s)
	}
	return id, nil
}

func (e *env) taskCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "task", Short: "List, show, create, terminate and purge tasks"}

	var out output
	var statuses, actions []string
	var parent, cursor string
	var limit int
	list := &cobra.Command{Use: "list", Short: "List tasks, newest first", Args: cobra.NoArgs,
		Example: "  statectl task list --status running --action deploy_nodes -o json",
		RunE: func(c *cobra.Command, _ []string) error {
			var err error
			if err = out.check(); err != nil {
				return err
			}
			f := statestore.TaskFilter{Actions: actions, Limit: limit, Cursor: cursor}
			for _, s := range statuses {
				f.Statuses = append(f.Statuses, statestore.TaskStatus(s))
			}
			if f.ParentID, err = optionalID(parent, "--parent"); err != nil {
				return err
			}
			s, closeFn, err := e.store(c.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			page, err := s.ListTasks(c.Context(), f)
			if err != nil {
				return err
			}
			views := []*taskView{}
			for _, t := range page.Tasks {
				views = append(views, viewTask(t))
			}
			err = out.write(e.stdout, struct {
				Tasks []*taskView `json:"tasks"`
				Next  string      `json:"next,omitempty"`
			}{views, page.Next}, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tACTION\tSTATUS\tRESULT\tERRORS\tCREATED\tPARENT")
				for _, v := range views {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", v.ID, v.Action, v.Status, v.Result, v.ErrorCount, ago(v.CreatedAt), orDash(v.Parent))
				}
			})
			if err == nil && page.Next != "" && out.format == "table" {
				fmt.Fprintf(e.stderr, "more: --cursor %s\n", page.Next)
			}
			return err
		}}
	list.Flags().StringSliceVar(&statuses, "status", nil, "only these statuses (repeatable, comma-separated)")
	list.Flags().StringSliceVar(&actions, "action", nil, "only these actions")
	list.Flags().StringVar(&parent, "parent", "", "only subtasks of this task")
	list.Flags().IntVar(&limit, "limit", 50, "page size")
	list.Flags().StringVar(&cursor, "cursor", "", "continue after a previous page")
	addOutputFlag(list, &out, "output", "o")

	var showOut output
	show := &cobra.Command{Use: "show ID", Short: "Show a task with its messages and error count", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, closeFn, id, err := e.openForTask(c, &showOut, args)
			if err != nil {
				return err
			}
			defer closeFn()
			t, err := s.GetTask(c.Context(), id)
			if err != nil {
				return err
			}
			v := viewTask(t)
			return showOut.write(e.stdout, v, func(tw *tabwriter.Writer) {
				for _, kv := range [][2]string{{"id", v.ID}, {"action", v.Action}, {"status", v.Status}, {"result", v.Result},
					{"result message", v.ResultMsg}, {"errors", strconv.Itoa(v.ErrorCount)}, {"parent", orDash(v.Parent)},
					{"subtasks", strconv.Itoa(len(v.Subtasks))}, {"design ref", orDash(v.DesignRef)}, {"created", ago(v.CreatedAt) + " by " + orDash(v.CreatedBy)},
					{"updated", ago(v.UpdatedAt)}, {"claimed by", orDash(v.ClaimedBy)}, {"version", strconv.FormatInt(v.Version, 10)}} {
					fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
				}
				fmt.Fprintf(tw, "messages:\t%d\n", len(v.Messages))
				for _, m := range v.Messages {
					fmt.Fprintf(tw, "  #%d\t%s\t%s\t%s\n", m.Sequence, ago(m.Time), errMark(m.Error)+orDash(m.Context), m.Message)
				}
			})
		}}
	addOutputFlag(show, &showOut, "output", "o")

	var treeOut output
	tree := &cobra.Command{Use: "tree ID", Short: "Show the subtask hierarchy with statuses", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, closeFn, id, err := e.openForTask(c, &treeOut, args)
			if err != nil {
				return err
			}
			defer closeFn()
			root, err := s.GetTask(c.Context(), id)
			if err != nil {
				return err
			}
			rv := viewTask(root)
			rv.Messages = nil
			if err := buildTree(c.Context(), s, root.ID, rv, 0); err != nil {
				return err
			}
			return treeOut.write(e.stdout, rv, func(tw *tabwriter.Writer) {
				var walk func(v *taskView, depth int)
				walk = func(v *taskView, depth int) {
					fmt.Fprintf(tw, "%s%s %s\t%s\t%s\n", strings.Repeat("  ", depth), v.Action, v.ID, v.Status, v.Result)
					for _, ch := range v.Children {
						walk(ch, depth+1)
					}
				}
				walk(rv, 0)
			})
		}}
	addOutputFlag(tree, &treeOut, "output", "o")

	var createOut output
	var action, designRef, createdBy, status string
	create := &cobra.Command{Use: "create", Short: "Create a task", Args: cobra.NoArgs,
		Example: "  statectl task create --action deploy_nodes --design-ref deckhand+https://deckhand/api/v1.0/revisions/3",
		RunE: func(c *cobra.Command, _ []string) error {
			if err := createOut.check(); err != nil {
				return err
			}
			if createdBy == "" {
				createdBy = currentUser()
			}
			s, closeFn, err := e.store(c.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			nt := statestore.NewTask{Action: action, DesignRef: designRef, CreatedBy: createdBy, Status: statestore.TaskStatus(status)}
			if nt.ParentID, err = optionalID(parent, "--parent"); err != nil {
				return err
			}
			t, err := s.CreateTask(c.Context(), nt)
			if err != nil {
				return err
			}
			v := viewTask(t)
			return createOut.write(e.stdout, v, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "created task %s (%s, %s)\n", v.ID, v.Action, v.Status)
			})
		}}
	create.Flags().StringVar(&action, "action", "", "the task's action, e.g. deploy_nodes (required)")
	create.Flags().StringVar(&designRef, "design-ref", "", "URI of the design documents")
	create.Flags().StringVar(&createdBy, "by", "", "who creates it (default: the OS user)")
	create.Flags().StringVar(&status, "status", "queued", "queued or requested")
	create.Flags().StringVar(&parent, "parent", "", "make it a subtask of this task")
	_ = create.MarkFlagRequired("action")
	addOutputFlag(create, &createOut, "output", "o")

	var by string
	terminate := &cobra.Command{Use: "terminate ID", Short: "Terminate a task and all its subtasks", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if by == "" {
				by = currentUser()
			}
			s, closeFn, id, err := e.openForTask(c, nil, args)
			if err != nil {
				return err
			}
			defer closeFn()
			changed, err := s.TerminateTask(c.Context(), id, by)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "terminated: %d task(s) changed\n", len(changed))
			return nil
		}}
	terminate.Flags().StringVar(&by, "by", "", "who terminates (default: the OS user)")

	var olderThan string
	var yes bool
	var batch int
	var includeActive bool
	purge := &cobra.Command{Use: "purge", Short: "Delete old finished task trees with their subtasks and messages", Args: cobra.NoArgs,
		Example: "  statectl task purge --older-than 30d --yes",
		RunE: func(c *cobra.Command, _ []string) error {
			age, err := parseAge(olderThan)
			if err != nil {
				return err
			}
			s, closeFn, err := e.store(c.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			now, err := s.Now(c.Context())
			if err != nil {
				return err
			}
			cutoff := now.Add(-age)
			preview, err := s.PreviewRetention(c.Context(), cutoff)
			if err != nil {
				return err
			}
			// What will go, on stdout: the answer to "what does this do", not a diagnostic.
			fmt.Fprintf(e.stdout, "task trees created before %s:\n", cutoff.Format(time.RFC3339))
			fmt.Fprintf(e.stdout, "  finished (every task complete or terminated), deleted: %s\n", statusCounts(preview.Finished))
			if includeActive {
				fmt.Fprintf(e.stdout, "  ACTIVE (work may be in progress), deleted too (--include-active): %s\n", statusCounts(preview.Active))
			} else {
				fmt.Fprintf(e.stdout, "  active (work may be in progress), kept (--include-active deletes them): %s\n", statusCounts(preview.Active))
			}
			if !yes {
				fmt.Fprintf(e.stderr, "delete these task trees with their subtasks and messages? [y/N] ")
				answer, _ := bufio.NewReader(e.stdin).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return errors.New("purge cancelled")
				}
			}
			var total statestore.RetentionResult
			it := s.NewRetention(cutoff, statestore.RetentionOptions{BatchSize: batch, IncludeActive: includeActive})
			for {
				n, err := it.Next(c.Context())
				if err != nil {
					return fmt.Errorf("after deleting %d tasks: %w", total.Tasks, err)
				}
				if n.Batches == 0 {
					break
				}
				total.Tasks += n.Tasks
				total.Messages += n.Messages
				total.TreesKept += n.TreesKept
				total.TreesBusy += n.TreesBusy
				total.Batches++
				fmt.Fprintf(e.stderr, "purged %d tasks, %d messages so far\n", total.Tasks, total.Messages)
			}
			fmt.Fprintf(e.stdout, "purged %d tasks and %d messages in %d batches; kept %d active trees; skipped %d busy trees (held by another transaction; run purge again)\n",
				total.Tasks, total.Messages, total.Batches, total.TreesKept, total.TreesBusy)
			return nil
		}}
	purge.Flags().StringVar(&olderThan, "older-than", "", "age, e.g. 30d or 12h (required)")
	purge.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	purge.Flags().IntVar(&batch, "batch", 500, "task trees per statement")
	purge.Flags().BoolVar(&includeActive, "include-active", false,
		"also delete trees with tasks not complete or terminated (work other instances may be doing)")
	_ = purge.MarkFlagRequired("older-than")

	cmd.AddCommand(list, show, tree, create, terminate, purge)
	return cmd
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

func buildTree(ctx context.Context, s *statestore.Store, id uuid.UUID, v *taskView, depth int) error {
	if depth > 50 {
		return errors.New("subtask tree deeper than 50 levels")
	}
	kids, err := s.ListSubtasks(ctx, id, statestore.AllSubtasks)
	if err != nil {
		return err
	}
	for _, k := range kids {
		kv := viewTask(k)
		v.Children = append(v.Children, kv)
		if err := buildTree(ctx, s, k.ID, kv, depth+1); err != nil {
			return err
		}
	}
	return nil
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

func (e *env) msgCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "msg", Short: "Read a task's messages"}
	var follow bool
	var out output
	tail := &cobra.Command{Use: "tail ID", Short: "Print a task's messages; -f follows new ones live", Args: cobra.ExactArgs(1),
		Example: "  statectl msg tail 0192f7c4-... -f",
		RunE: func(c *cobra.Command, args []string) error {
			s, closeFn, id, err := e.openForTask(c, &out, args)
			if err != nil {
				return err
			}
			defer closeFn()
			if _, err := s.GetTask(c.Context(), id); err != nil {
				return err
			}
			print := func(m statestore.ResultMessage) error {
				if out.format == "table" {
					_, err := fmt.Fprintf(e.stdout, "#%d %s %s%s %s\n", m.Sequence, ago(m.Time), errMark(m.Error), orDash(m.Context), m.Message)
					return err
				}
				return out.write(e.stdout, viewMessage(m), nil)
			}
			if !follow {
				for after := int64(0); ; {
					batch, err := s.Messages(c.Context(), id, after, 1000)
					if err != nil {
						return err
					}
					for _, m := range batch {
						if err := print(m); err != nil {
							return err
						}
						after = m.Sequence
					}
					if len(batch) < 1000 {
						return nil
					}
				}
			}
			err = e.follow(c.Context(), s, id, print)
			if errors.Is(err, context.Canceled) {
				return nil // Ctrl-C ends a follow normally
			}
			return err
		}}
	tail.Flags().BoolVarP(&follow, "follow", "f", false, "keep following new messages until interrupted")
	addOutputFlag(tail, &out, "output", "o")
	cmd.AddCommand(tail)
	return cmd
}

// printError marks an error of the printing side of a follow (stdout
// closed): it ends the follow, unlike a lost database connection.
type printError struct{ err error }

func (p printError) Error() string { return p.err.Error() }
func (p printError) Unwrap() error { return p.err }

// Backoff of msg tail -f between attempts to reach the database again.
const (
	followRetryMin = 100 * time.Millisecond
	followRetryMax = 5 * time.Second
)

// follow prints task id's messages as they come until ctx ends. When the
// database goes away (a restart, a dropped connection) it says so on
// stderr, retries with a capped backoff that starts over once the database
// answers again, and resumes after the last sequence it printed: nothing
// is printed twice or skipped.
func (e *env) follow(ctx context.Context, s *statestore.Store, id uuid.UUID, print func(statestore.ResultMessage) error) error {
	after := int64(0)
	printed := func(m statestore.ResultMessage) error {
		if err := print(m); err != nil {
			return printError{err}
		}
		after = m.Sequence
		return nil
	}
	backoff := followRetryMin
	for {
		err := s.TailMessages(ctx, id, after, printed)
		var perr printError
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &perr), errors.Is(err, statestore.ErrNotFound), errors.Is(err, statestore.ErrInvalidInput):
			return err
		}
		// The database is unreachable: wait, and try it before tailing again.
		for {
			fmt.Fprintf(e.stderr, "statectl: lost the database (%s); retrying in %s\n", oneLine(err.Error()), backoff)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			if _, err = s.Now(ctx); err == nil {
				backoff = followRetryMin
				fmt.Fprintf(e.stderr, "statectl: reconnected; following after #%d\n", after)
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			backoff = min(backoff*2, followRetryMax)
		}
	}
}

func (e *env) buildDataCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "builddata", Short: "Read data collected from nodes"}
	var out output
	var node, task, cursor string
	var latest, full bool
	var limit int
	list := &cobra.Command{Use: "list", Short: "List a node's build data, newest first, a page at a time", Args: cobra.NoArgs,
		Example: "  statectl builddata list --node node01 --latest --full -o json",
		RunE: func(c *cobra.Command, _ []string) error {
			var err error
			if err = out.check(); err != nil {
				return err
			}
			q := statestore.BuildDataQuery{NodeName: node, Latest: latest, Full: full, Limit: limit, Cursor: cursor}
			if q.TaskID, err = optionalID(task, "--task"); err != nil {
				return err
			}
			s, closeFn, err := e.store(c.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			page, err := s.BuildData(c.Context(), q)
			if err != nil {
				return err
			}
			rows := page.Records
			err = out.write(e.stdout, struct {
				Records []statestore.BuildData `json:"records"`
				Next    string                 `json:"next,omitempty"`
			}{rows, page.Next}, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tNODE\tTASK\tCOLLECTED\tGENERATOR\tFORMAT\tBYTES")
				for _, r := range rows {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\n", r.ID, r.NodeName, r.TaskID, ago(r.CollectedAt), r.Generator, r.DataFormat, r.DataSize)
				}
				if full {
					for _, r := range rows {
						fmt.Fprintf(tw, "\n--- %d %s %s\n%s\n", r.ID, r.NodeName, r.Generator, r.DataElement)
					}
				}
			})
			if err == nil && page.Next != "" && out.format == "table" {
				fmt.Fprintf(e.stderr, "more: --cursor %s\n", page.Next)
			}
			return err
		}}
	list.Flags().StringVar(&node, "node", "", "node name (required)")
	list.Flags().StringVar(&task, "task", "", "only data collected by this task")
	list.Flags().BoolVar(&latest, "latest", false, "only the newest record of each generator")
	list.Flags().BoolVar(&full, "full", false, "include the data itself")
	list.Flags().IntVar(&limit, "limit", 100, "page size")
	list.Flags().StringVar(&cursor, "cursor", "", "continue after a previous page")
	_ = list.MarkFlagRequired("node")
	addOutputFlag(list, &out, "output", "o")
	cmd.AddCommand(list)
	return cmd
}

func (e *env) bootActionCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "bootaction", Short: "Read a node's boot actions (never their keys)"}
	var out output
	var node string
	list := &cobra.Command{Use: "list", Short: "Show a node's boot action context and statuses", Args: cobra.NoArgs,
		Example: "  statectl bootaction list --node node01",
		RunE: func(c *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			s, closeFn, err := e.store(c.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			bctx, err := s.GetBootActionContext(c.Context(), node)
			if err != nil {
				return err
			}
			statuses, err := s.BootActionStatuses(c.Context(), node)
			if err != nil {
				return err
			}
			type statusView struct {
				ActionID string    `json:"action_id"`
				Action   string    `json:"action"`
				Status   string    `json:"status"`
				Task     string    `json:"task"`
				Updated  time.Time `json:"updated_at"`
			}
			view := struct {
				Node     string       `json:"node"`
				Task     string       `json:"task"`
				Updated  time.Time    `json:"updated_at"`
				Statuses []statusView `json:"statuses"`
			}{Node: bctx.NodeName, Task: bctx.TaskID.String(), Updated: bctx.UpdatedAt, Statuses: []statusView{}}
			for _, st := range statuses {
				view.Statuses = append(view.Statuses, statusView{st.ActionID.String(), st.ActionName, string(st.Status), st.TaskID.String(), st.UpdatedAt})
			}
			return out.write(e.stdout, view, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "node %s, deployed by task %s, context updated %s\n", view.Node, view.Task, ago(view.Updated))
				fmt.Fprintln(tw, "ACTION ID\tACTION\tSTATUS\tUPDATED")
				for _, st := range view.Statuses {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", st.ActionID, st.Action, st.Status, ago(st.Updated))
				}
			})
		}}
	list.Flags().StringVar(&node, "node", "", "node name (required)")
	_ = list.MarkFlagRequired("node")
	addOutputFlag(list, &out, "output", "o")
	cmd.AddCommand(list)
	return cmd
}

func (e *env) leaderCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "leader", Short: "Who leads the orchestrator instances"}
	var out output
	show := &cobra.Command{Use: "show", Short: "Show the current leader and recent terms", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			s, closeFn, err := e.store(c.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			l, err := s.Leader(c.Context())
			if errors.Is(err, statestore.ErrNotFound) {
				return errors.New("no instance has ever led")
			}
			if err != nil {
				return err
			}
			history, err := s.LeaderHistory(c.Context(), 10)
			if err != nil {
				return err
			}
			view := struct {
				Leader  *statestore.Leader      `json:"leader"`
				History []statestore.LeaderTerm `json:"history"`
			}{l, history}
			return out.write(e.stdout, view, func(tw *tabwriter.Writer) {
				state := "leading"
				switch {
				case l.ResignedAt != nil:
					state = "resigned " + ago(*l.ResignedAt)
				case !l.LockHeld:
					state = "gone (lock not held; the next candidate takes over)"
				}
				for _, kv := range [][2]string{{"identity", l.Identity.String()}, {"term", strconv.FormatInt(l.Term, 10)},
					{"host", fmt.Sprintf("%s (pid %d, backend %d)", orDash(l.Hostname), l.PID, l.BackendPID)},
					{"since", ago(l.ElectedAt)}, {"last seen", ago(l.LastPing)}, {"state", state}} {
					fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
				}
				fmt.Fprintln(tw, "\nTERM\tIDENTITY\tHOST\tELECTED\tENDED\tHOW")
				for _, h := range history {
					ended := "-"
					if h.EndedAt != nil {
						ended = ago(*h.EndedAt)
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", h.Term, h.Identity, orDash(h.Hostname), ago(h.ElectedAt), ended, orDash(h.EndReason))
				}
			})
		}}
	addOutputFlag(show, &out, "output", "o")
	cmd.AddCommand(show)
	return cmd
}

func (e *env) designCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "design", Short: "Resolve design-document URIs"}
	var out output
	var file string
	var roots []string
	get := &cobra.Command{Use: "fetch URI", Short: "Fetch a design document", Args: cobra.ExactArgs(1),
		Long: `Fetch a design document: the URIs a task's design_ref takes (file://, http(s)://,
deckhand+http(s)://, promenade+http(s)://).

The document goes to stdout, or with --out-file FILE into FILE ("--out-file -"
is stdout; a new FILE is created readable by its owner only, mode 0600, as
design documents may hold credentials). Its metadata (URL, content type, size, sha256) is printed in the
-o/--output format: on stdout when the document went to a file, on stderr when
the document itself is on stdout.

--root DIR (repeatable) confines file:// URIs to DIR: symbolic links may not
lead out, and only regular files are read. deckhand+ and promenade+ URIs send
the token in $STATECTL_SERVICE_TOKEN.`,
		Example: "  statectl design fetch file:///etc/drydock/site.yaml --root /etc/drydock > site.yaml\n" +
			"  statectl design fetch https://user:pass@designs.example/site.yaml --out-file site.yaml -o json\n" +
			"  STATECTL_SERVICE_TOKEN=... statectl design fetch deckhand+https://deckhand/api/v1.0/revisions/3/rendered-documents",
		RunE: func(c *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return usagef("unknown output format %q (want table, json or yaml; to write the document to a file use --out-file FILE)", out.format)
			}
			uri := args[0]
			scheme, _, _ := strings.Cut(strings.ToLower(uri), ":")
			service := strings.HasPrefix(scheme, "deckhand+") || strings.HasPrefix(scheme, "promenade+")
			tok := os.Getenv("STATECTL_SERVICE_TOKEN")
			if service && strings.TrimSpace(tok) == "" {
				return usagef("%s URIs need a service token: set STATECTL_SERVICE_TOKEN", scheme)
			}
			roots, err := checkRoots(roots)
			if err != nil {
				return err
			}
			// The returned error says everything a log line would (the
			// attempts included): the fetch logs nothing, so a failure is
			// one line.
			opts := fetch.Options{Roots: roots, Logger: slog.New(slog.DiscardHandler)}
			if strings.TrimSpace(tok) != "" {
				opts.Tokens = fetch.StaticToken(tok)
			}
			r, err := fetch.New(opts)
			if err != nil {
				return usageError{err}
			}
			defer r.Close()
			res, err := r.Fetch(c.Context(), uri)
			switch {
			case errors.Is(err, fetch.ErrOutsideRoots):
				return fmt.Errorf("%w (allowed by --root: %s)", err, strings.Join(roots, ", "))
			case errors.Is(err, fetch.ErrNoTokenSource), errors.Is(err, fetch.ErrEmptyToken):
				return usagef("%s URIs need a service token: set STATECTL_SERVICE_TOKEN", scheme)
			case err != nil:
				return err
			}
			metaOut := e.stdout
			if file == "" || file == "-" {
				if _, err := e.stdout.Write(res.Data); err != nil {
					return fmt.Errorf("write the document to stdout: %w", err)
				}
				metaOut, file = e.stderr, ""
			} else if err := os.WriteFile(file, res.Data, 0o600); err != nil { // documents may hold credentials
				return fmt.Errorf("--out-file: %w", err)
			}
			meta := struct {
				URL         string `json:"url"`
				ContentType string `json:"content_type"`
				Size        int64  `json:"size"`
				SHA256      string `json:"sha256"`
				WrittenTo   string `json:"written_to,omitempty"`
			}{res.URL, res.ContentType, res.Size, res.SHA256, file}
			return out.write(metaOut, meta, func(tw *tabwriter.Writer) {
				for _, kv := range [][2]string{{"url", meta.URL}, {"content type", orDash(meta.ContentType)},
					{"size", strconv.FormatInt(meta.Size, 10)}, {"sha256", meta.SHA256}, {"written to", orDash(meta.WrittenTo)}} {
					fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
				}
			})
		}}
	get.Flags().StringVar(&file, "out-file", "", `write the document to this file ("-" or none: stdout)`)
	get.Flags().StringArrayVar(&roots, "root", nil, "confine file:// URIs to these directories (repeatable)")
	addOutputFlag(get, &out, "output", "o")
	cmd.AddCommand(get)
	return cmd
}

// checkRoots makes each --root absolute and checks that it is a directory,
// with errors that name the flag.
func checkRoots(roots []string) ([]string, error) {
	out := make([]string, 0, len(roots))
	for _, r := range roots {
		abs, err := filepath.Abs(r)
		if err != nil {
			return nil, usagef("--root %s: %v", r, err)
		}
		fi, err := os.Stat(abs)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, usagef("--root %s: no such directory", r)
		case err != nil:
			return nil, usagef("--root %s: %v", r, err)
		case !fi.IsDir():
			return nil, usagef("--root %s: not a directory", r)
		}
		out = append(out, abs)
	}
	return out, nil
}

// statusCounts prints task counts by status in lifecycle order, e.g.
// "3 tasks (complete 2, terminated 1)".
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
