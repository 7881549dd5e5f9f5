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
		Long: `List a node's build data, newest first, a page at a time.

A node with no build data at all is not found (exit 1), as in bootaction list;
a known node whose data --task or --latest filter out lists nothing (exit 0).`,
		Example: "  statectl builddata list --node node01 --latest --full -o json",
		RunE: func(c *cobra.Command, _ []string) error {
			var err error
			if err = out.check(); err != nil {
				return err
			}
			if err = checkPageSize("--limit", limit); err != nil {
				return err
			}
			if err = checkGivenNotEmpty(c, "--cursor", cursor); err != nil {
				return err
			}
			q := statestore.BuildDataQuery{NodeName: node, Latest: latest, Full: full, Limit: limit, Cursor: cursor}
			if q.TaskID, err = optionalID(task, "--task"); err != nil {
				return err
			}
			if latest && q.TaskID != nil {
				return usagef("--latest and --task cannot be combined: --latest is the newest record of each generator of the node")
			}
			if node == "" {
				return usagef("--node: must not be empty")
			}
			s, closeFn, err := e.store(c.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			flags := map[string]flagRef{"query.NodeName": {name: "--node", value: node}, "query.Cursor": cursorFlag(cursor)}
			page, err := s.BuildData(c.Context(), q)
			if err != nil {
				return storeFlagError(err, flags)
			}
			if len(page.Records) == 0 && cursor == "" {
				known := false
				if q.TaskID != nil || latest {
					some, err := s.BuildData(c.Context(), statestore.BuildDataQuery{NodeName: node, Limit: 1})
					if err != nil {
						return storeFlagError(err, flags)
					}
					known = len(some.Records) > 0
				}
				if !known {
					return unknownNode(node, "no build data")
				}
			}
			rows := page.Records
			err = out.write(e.stdout, newList(rows, page.Next), func(tw *tabwriter.Writer) {
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
	list.Flags().IntVar(&limit, "limit", 100, fmt.Sprintf("page size, 1 to %d", maxPageSize))
	list.Flags().StringVar(&cursor, "cursor", "", "continue after a previous page")
	_ = list.MarkFlagRequired("node")
	addOutputFlag(list, &out, "output", "o")
	cmd.AddCommand(list)
	return cmd
}

// unknownNode is the error of builddata list and bootaction list for a
// node the store holds nothing of that kind for: both exit 1 with this
// wording.
func unknownNode(node, what string) error {
	return fmt.Errorf("node %q not found: %s recorded for it (check the name; a node has none before its deployment reaches that step)", node, what)
}
