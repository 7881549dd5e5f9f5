package cli

import (
	"github.com/spf13/cobra"

	"github.com/drydock-go/statemgmt/internal/demo"
)

func (e *env) demoCommand() *cobra.Command {
	var nodes int
	cmd := &cobra.Command{Use: "demo", Short: "Run the whole system once on a fresh database and check it", Args: cobra.NoArgs,
		Long: `demo gets a fresh database (a new one on a reachable local server, else a
throwaway cluster from the local PostgreSQL binaries; --database-url to use a
given one, which must hold no tasks, boot actions, build data or leadership:
the demo refuses a database in use and writes nothing to it), then runs a
provisioning run: three orchestrator instances elect a leader, the leader
resolves a design document from file:// and HTTP and fans deploy_nodes out
into per-node subtasks, workers deploy the nodes, and the leader is killed
when half the nodes are complete (the rest wait for the kill) and another
takes over and finishes. It checks its invariants and exits non-zero if any
fails; it cleans up after itself, also on Ctrl-C.`,
		RunE: func(c *cobra.Command, _ []string) error {
			return demo.Run(c.Context(), demo.Config{DatabaseURL: e.databaseURL, Nodes: nodes, Out: e.stdout})
		}}
	cmd.Flags().IntVar(&nodes, "nodes", 12, "how many nodes to deploy")
	return cmd
}
