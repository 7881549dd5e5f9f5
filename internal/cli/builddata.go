package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/drydock-go/statemgmt/statestore"
)

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
