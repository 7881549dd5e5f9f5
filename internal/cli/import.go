package cli

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/drydock-go/statemgmt/internal/drydockimport"
)

func (e *env) importCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "import", Short: "Bring state in from another system"}
	var from, to, tz string
	var dryRun, resume, strict bool
	var out output
	dd := &cobra.Command{Use: "drydock", Short: "Import a Drydock database (Alembic head " + drydockimport.AlembicHead + ")", Args: cobra.NoArgs,
		Long: `Copies a Drydock database into this project's schema: tasks with their trees,
result messages numbered per task, build data, boot action contexts and runs
(only the SHA-256 of each key), and the leader row as leadership history.

The source is only read, from one snapshot. The target must be migrated
(statectl migrate up). Progress goes to stderr; the report to stdout.
Exit codes: 0 done (rejected rows are listed in the report), 1 an error, or
with --strict a rejected row (the import stops there), 2 bad flags.`,
		Example: "  statectl import drydock --from postgres://drydock@old/drydock --to postgres://statemgmt@new/statemgmt --dry-run",
		RunE: func(c *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			if to == "" {
				to = e.connString() // like every command: --database-url, then DATABASE_URL
			}
			if from == "" || to == "" {
				return usagef("--from is required, and --to (or --database-url, or DATABASE_URL) names the target")
			}
			loc, err := time.LoadLocation(tz)
			if err != nil || tz == "" || tz == "Local" {
				return usagef("--source-timezone %q is not an IANA time zone name (e.g. UTC, Europe/Berlin)", tz)
			}
			srcCfg, err := pgx.ParseConfig(from)
			if err != nil {
				return usagef("--from cannot be parsed as a PostgreSQL URL")
			}
			dstCfg, err := pgx.ParseConfig(to)
			if err != nil {
				return usagef("--to cannot be parsed as a PostgreSQL URL")
			}
			srcCfg.ConnectTimeout, dstCfg.ConnectTimeout = 10*time.Second, 10*time.Second
			ctx := c.Context()
			src, err := pgx.ConnectConfig(ctx, srcCfg)
			if err != nil {
				return fmt.Errorf("--from: %w", connectError(err))
			}
			defer src.Close(ctx)
			dst, err := pgx.ConnectConfig(ctx, dstCfg)
			if err != nil {
				return fmt.Errorf("--to: %w", connectError(err))
			}
			defer dst.Close(ctx)
			rep, err := drydockimport.Run(ctx, src, dst, drydockimport.Options{SourceTimezone: loc, DryRun: dryRun,
				Resume: resume, Strict: strict, Progress: e.stderr})
			if errors.Is(err, drydockimport.ErrUnfinished) {
				return fmt.Errorf("%w; run again with --resume", err)
			}
			if err != nil {
				return err
			}
			return out.write(e.stdout, rep, func(tw *tabwriter.Writer) { importTable(tw, rep) })
		}}
	dd.Flags().StringVar(&from, "from", "", "the Drydock database (PostgreSQL URL; only read)")
	dd.Flags().StringVar(&to, "to", "", "this project's database (PostgreSQL URL; migrated); default --database-url, then $DATABASE_URL")
	dd.Flags().StringVar(&tz, "source-timezone", "UTC", "time zone the source's timestamps (without zone) were written in")
	dd.Flags().BoolVar(&dryRun, "dry-run", false, "read everything and report, write nothing")
	dd.Flags().BoolVar(&resume, "resume", false, "continue an import that was interrupted")
	dd.Flags().BoolVar(&strict, "strict", false, "stop at the first rejected row (exit 1)")
	addOutputFlag(dd, &out, "output", "o")
	cmd.AddCommand(dd)
	return cmd
}

// maxRejectedShown bounds the rejected rows the table output lists.
const maxRejectedShown = 100

func importTable(tw *tabwriter.Writer, rep *drydockimport.Report) {
	switch {
	case rep.DryRun:
		fmt.Fprintln(tw, "DRY RUN: nothing was written; IMPORTED is what an import would write.")
	case rep.AlreadyDone:
		fmt.Fprintln(tw, "Already imported: nothing was written.")
	}
	fmt.Fprintln(tw, "TABLE\tSOURCE\tIMPORTED\tREJECTED\tTARGET")
	for _, t := range rep.Tables {
		name := t.Table
		if name == drydockimport.TableActiveInstance {
			name += " → leader_term"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", name, t.Source, t.Imported, t.Rejected, t.Target)
	}
	fmt.Fprintf(tw, "\ntruncated messages (127 characters, cut by Drydock, imported as they are): %d\n", rep.Truncated)
	fmt.Fprintf(tw, "tasks found running or terminating (queued again / terminated): %d\n", rep.Recovered)
	if rep.LeaderTerm > 0 {
		fmt.Fprintf(tw, "Drydock's leader recorded as ended term %d; the next election starts above it\n", rep.LeaderTerm)
	}
	for _, n := range rep.SubtaskListNotes {
		fmt.Fprintf(tw, "subtask list: %s (the imported tree follows parent_task_id)\n", n)
	}
	fmt.Fprintf(tw, "rejected rows: %d\n", rep.RejectedTotal)
	if len(rep.Rejected) > 0 {
		fmt.Fprintln(tw, "\nREJECTED\tKEY\tREASON")
		shown := rep.Rejected[:min(len(rep.Rejected), maxRejectedShown)]
		for _, r := range shown {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Table, r.Key, r.Reason)
		}
		if int64(len(shown)) < rep.RejectedTotal {
			where := "all are in the target's drydock_import_rejected"
			if rep.DryRun {
				where = "a dry run keeps none"
			}
			fmt.Fprintf(tw, "… and %d more (-o json lists up to %d; %s)\n", rep.RejectedTotal-int64(len(shown)), drydockimport.MaxListed, where)
		}
	}
}
