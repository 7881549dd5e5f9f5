package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/drydock-go/statemgmt/statestore"
)

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
			if err = checkPageSize("--limit", limit); err != nil {
				return err
			}
			f := statestore.TaskFilter{Actions: actions, Limit: limit, Cursor: cursor}
			if f.Statuses, err = parseStatuses(c, "--status", statuses, allTaskStatuses); err != nil {
				return err
			}
			if err = checkNotEmpty(c, "--action", actions); err != nil {
				return err
			}
			for _, a := range actions {
				if err := statestore.ValidateAction(a); err != nil {
					return storeFlagError(err, map[string]flagRef{"action": {name: "--action", value: a}})
				}
			}
			if err = checkGivenNotEmpty(c, "--cursor", cursor); err != nil {
				return err
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
				return storeFlagError(err, map[string]flagRef{"filter.Cursor": cursorFlag(cursor)})
			}
			views := []*taskView{}
			for _, t := range page.Tasks {
				views = append(views, viewTask(t))
			}
			err = out.write(e.stdout, newList(views, page.Next), func(tw *tabwriter.Writer) {
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
	list.Flags().IntVar(&limit, "limit", 50, fmt.Sprintf("page size, 1 to %d", maxPageSize))
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
				terminated := "-"
				if v.TerminatedAt != nil || v.TerminatedBy != "" {
					terminated = agoPtr(v.TerminatedAt) + " by " + orDash(v.TerminatedBy)
				}
				for _, kv := range [][2]string{{"id", v.ID}, {"action", v.Action}, {"status", v.Status}, {"result", v.Result},
					{"result message", v.ResultMsg}, {"errors", strconv.Itoa(v.ErrorCount)}, {"parent", orDash(v.Parent)},
					{"subtasks", strconv.Itoa(len(v.Subtasks))}, {"design ref", orDash(v.DesignRef)}, {"created", ago(v.CreatedAt) + " by " + orDash(v.CreatedBy)},
					{"updated", ago(v.UpdatedAt)}, {"claimed by", orDash(v.ClaimedBy)}, {"terminated", terminated},
					{"version", strconv.FormatInt(v.Version, 10)}} {
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
			if err := statestore.ValidateAction(action); err != nil {
				return storeFlagError(err, map[string]flagRef{"action": {name: "--action", value: action}})
			}
			st, err := parseStatus("--status", status, []statestore.TaskStatus{statestore.StatusQueued, statestore.StatusRequested})
			if err != nil {
				return err
			}
			if err := checkGivenNotEmpty(c, "--by", createdBy); err != nil {
				return err
			}
			if createdBy == "" {
				createdBy = currentUser()
			}
			nt := statestore.NewTask{Action: action, DesignRef: designRef, CreatedBy: createdBy, Status: st}
			if nt.ParentID, err = optionalID(parent, "--parent"); err != nil {
				return err
			}
			s, closeFn, err := e.store(c.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			t, err := s.CreateTask(c.Context(), nt)
			if err != nil {
				return storeFlagError(err, map[string]flagRef{"task.Action": {name: "--action", value: action}, "task.DesignRef": {name: "--design-ref", value: designRef},
					"task.CreatedBy": {name: "--by", value: createdBy}, "task.Status": {name: "--status", value: status}, "task.ParentID": {name: "--parent", value: parent},
					"parent_task_id": {name: "--parent", value: parent}})
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
			if err := checkGivenNotEmpty(c, "--by", by); err != nil {
				return err
			}
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
				return storeFlagError(err, map[string]flagRef{"by": {name: "--by", value: by}})
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
			if err := checkRange("--batch", batch, 1, maxPurgeBatch, "task trees per statement"); err != nil {
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
			toDelete := countTasks(preview.Finished)
			if includeActive {
				toDelete += countTasks(preview.Active)
			}
			if toDelete == 0 && !yes {
				fmt.Fprintln(e.stdout, "nothing to delete")
				return nil
			}
			if !yes {
				ok, err := e.confirm("delete these task trees with their subtasks and messages? [y/N] ")
				if err != nil {
					return fmt.Errorf("purge: %w: nothing deleted", err)
				}
				if !ok {
					return errors.New("purge cancelled")
				}
			}
			total, err := s.DeleteTasksCreatedBefore(c.Context(), cutoff, statestore.RetentionOptions{
				BatchSize: batch, IncludeActive: includeActive,
				OnBatch: func(soFar statestore.RetentionResult) {
					fmt.Fprintf(e.stderr, "purged %d tasks, %d messages so far\n", soFar.Tasks, soFar.Messages)
				}})
			if err != nil {
				return fmt.Errorf("after deleting %d tasks: %w", total.Tasks, err)
			}
			fmt.Fprintf(e.stdout, "purged %d tasks and %d messages in %d batches; kept %d active trees; skipped %d busy trees (held by another transaction; run purge again)\n",
				total.Tasks, total.Messages, total.Batches, total.TreesKept, total.TreesBusy)
			return nil
		}}
	purge.Flags().StringVar(&olderThan, "older-than", "", "age, e.g. 30d or 12h (required)")
	purge.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	purge.Flags().IntVar(&batch, "batch", 500, fmt.Sprintf("task trees per statement, 1 to %d", maxPurgeBatch))
	purge.Flags().BoolVar(&includeActive, "include-active", false,
		"also delete trees with tasks not complete or terminated (work other instances may be doing)")
	_ = purge.MarkFlagRequired("older-than")

	cmd.AddCommand(list, show, tree, create, terminate, purge)
	return cmd
}

// maxPurgeBatch is the largest batch the store's retention takes.
const maxPurgeBatch = 100000

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
