package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

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
