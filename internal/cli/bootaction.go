package cli

import (
	"errors"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/drydock-go/statemgmt/statestore"
)

func (e *env) bootActionCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "bootaction", Short: "Read a node's boot actions (never their keys)"}
	var out output
	var node string
	list := &cobra.Command{Use: "list", Short: "Show a node's boot action context and statuses", Args: cobra.NoArgs,
		Long: `Show a node's boot action context and the status of each of its boot actions
(never the key).

A node with no boot action context is not found (exit 1), as in builddata list.`,
		Example: "  statectl bootaction list --node node01",
		RunE: func(c *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			if node == "" {
				return usagef("--node: must not be empty")
			}
			s, closeFn, err := e.store(c.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			flags := map[string]flagRef{"node": {name: "--node", value: node}}
			bctx, err := s.GetBootActionContext(c.Context(), node)
			if errors.Is(err, statestore.ErrNotFound) {
				return unknownNode(node, "no boot action context")
			}
			if err != nil {
				return storeFlagError(err, flags)
			}
			statuses, err := s.BootActionStatuses(c.Context(), node)
			if err != nil {
				return storeFlagError(err, flags)
			}
			type statusView struct {
				ActionID string    `json:"action_id"`
				Action   string    `json:"action"`
				Status   string    `json:"status"`
				Task     string    `json:"task"`
				Updated  time.Time `json:"updated_at"`
			}
			type contextView struct {
				Node    string    `json:"node"`
				Task    string    `json:"task"`
				Updated time.Time `json:"updated_at"`
			}
			var items []statusView
			for _, st := range statuses {
				items = append(items, statusView{st.ActionID.String(), st.ActionName, string(st.Status), st.TaskID.String(), st.UpdatedAt})
			}
			sort.Slice(items, func(i, j int) bool { return items[i].Action < items[j].Action })
			// The list shape of every list command, with the node's context beside it.
			view := struct {
				Context contextView `json:"context"`
				listView[statusView]
			}{contextView{bctx.NodeName, bctx.TaskID.String(), bctx.UpdatedAt}, newList(items, "")}
			return out.write(e.stdout, view, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "node %s, deployed by task %s, context updated %s\n", view.Context.Node, view.Context.Task, ago(view.Context.Updated))
				fmt.Fprintln(tw, "ACTION ID\tACTION\tSTATUS\tUPDATED")
				for _, st := range view.Items {
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
