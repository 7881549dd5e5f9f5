package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

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
	ok, err := e.confirm("continue? [y/N] ")
	if err != nil {
		return fmt.Errorf("migrate down: %w: nothing changed", err)
	}
	if !ok {
		return errors.New("migrate down cancelled: nothing changed")
	}
	return nil
}
