package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/drydock-go/statemgmt/internal/demo"
)

// maxDemoNodes bounds --nodes so that a run fits the demo's time limit on a
// loaded machine.
const maxDemoNodes = 200

func (e *env) demoCommand() *cobra.Command {
	var nodes int
	cmd := &cobra.Command{Use: "demo", Short: "Run the whole system once on a fresh database and check it", Args: cobra.NoArgs,
		Long: `demo runs a provisioning run on a database, checks its invariants and exits
non-zero if any fails.

Which database, said on the first line of output:
  --database-url URL   runs in that very database, which must hold no tasks,
                       boot actions, build data or leadership (the demo
                       refuses a database in use and writes nothing to it);
                       it is kept afterwards, to look at with statectl.
  $DATABASE_URL        (without --database-url) makes its own fresh database
                       on that server (its user needs CREATE DATABASE) and
                       drops it at the end.
  neither              makes its own fresh database on a reachable local
                       server, else in a throwaway cluster started from the
                       local PostgreSQL binaries, and drops it at the end.

The run: three orchestrator instances elect a leader, the leader resolves a
design document from file:// and HTTP and fans deploy_nodes out into
per-node subtasks, workers deploy the nodes, and the leader is killed when
half the nodes are complete (the rest wait for the kill) and another takes
over and finishes. It cleans up after itself, also on Ctrl-C.`,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkRange("--nodes", nodes, 1, maxDemoNodes, "nodes to deploy"); err != nil {
				return err
			}
			cfg := demo.Config{DatabaseURL: e.databaseURL, Nodes: nodes, Out: e.stdout}
			switch serverURL := os.Getenv("DATABASE_URL"); {
			case e.databaseURL != "":
				fmt.Fprintln(e.stdout, "demo: running in the database of --database-url (refused if in use; kept afterwards)")
			case serverURL != "":
				cfg.ServerURL = serverURL
				fmt.Fprintln(e.stdout, "demo: making its own database on the server of DATABASE_URL (dropped at the end; --database-url runs in a given database instead)")
			default:
				fmt.Fprintln(e.stdout, "demo: making its own database on a local server or a throwaway cluster (dropped at the end)")
			}
			return demo.Run(c.Context(), cfg)
		}}
	cmd.Flags().IntVar(&nodes, "nodes", 12, fmt.Sprintf("how many nodes to deploy, 1 to %d", maxDemoNodes))
	return cmd
}
