// Package cli is statectl, the operator's tool: cobra commands over the
// statestore and fetch packages, with table, JSON and YAML output.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/drydock-go/statemgmt/statestore"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// usageError marks errors that are the caller's wording (exit code 2).
type usageError struct{ err error }

// Error implements error.
func (u usageError) Error() string { return u.err.Error() }

// Unwrap returns the wrapped error.
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// env is what every command shares: where to write, how to connect.
type env struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	databaseURL    string
	logger         *slog.Logger
}

// Main runs statectl with args (without the program name) and returns the
// exit code. Errors go to stderr on one line.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{stdout: stdout, stderr: stderr, stdin: stdin,
		logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	root := e.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(stderr, "statectl: "+oneLine(err.Error()))
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return ExitUsage
	}
	return ExitError
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// isCobraUsage recognises cobra's own argument and flag errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "flag needs an argument",
		"invalid argument", "accepts ", "requires at least", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func (e *env) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "statectl",
		Short:         "Inspect and steer the orchestrator's state store",
		SilenceErrors: true,
		SilenceUsage:  true,
		Long: `statectl reads and changes the state the orchestrator keeps in PostgreSQL.

Connection: --database-url, else $DATABASE_URL, else libpq defaults (PGHOST, PGUSER, ...).`,
	}
	root.PersistentFlags().StringVar(&e.databaseURL, "database-url", "", "PostgreSQL connection URL (default $DATABASE_URL, then libpq defaults)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(e.migrateCommand(), e.taskCommand(), e.msgCommand(), e.buildDataCommand(),
		e.bootActionCommand(), e.leaderCommand(), e.designCommand(), e.demoCommand(), e.serveCommand())
	return root
}

// connString picks the connection string: flag, DATABASE_URL, libpq defaults.
func (e *env) connString() string {
	if e.databaseURL != "" {
		return e.databaseURL
	}
	return os.Getenv("DATABASE_URL")
}

// connectError says that nothing answered without repeating the URL (it may
// hold a password).
func connectError(err error) error {
	return fmt.Errorf("cannot connect to PostgreSQL (set --database-url or DATABASE_URL, or the PG* variables): %w", err)
}

// store opens a pool and a store; close with the returned func.
func (e *env) store(ctx context.Context) (*statestore.Store, func(), error) {
	return e.storeWith(ctx, statestore.Options{Logger: e.logger})
}

// storeWith is store with the given store options.
func (e *env) storeWith(ctx context.Context, opts statestore.Options) (*statestore.Store, func(), error) {
	cfg, err := pgxpool.ParseConfig(e.connString())
	if err != nil {
		return nil, nil, usagef("the database URL cannot be parsed")
	}
	cfg.MaxConns = 4
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, connectError(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, nil, connectError(err)
	}
	s := statestore.New(pool, opts)
	return s, func() { s.Close(); pool.Close() }, nil
}

// conn opens one direct connection (for migrations).
func (e *env) conn(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(e.connString())
	if err != nil {
		return nil, usagef("the database URL cannot be parsed")
	}
	cfg.ConnectTimeout = 5 * time.Second
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, connectError(err)
	}
	return c, nil
}

// output is a -o/--output choice.
type output struct{ format string }

func addOutputFlag(cmd *cobra.Command, o *output, name, short string) {
	cmd.Flags().StringVarP(&o.format, name, short, "table", "output format: table, json or yaml")
}

func (o *output) check() error {
	switch o.format {
	case "table", "json", "yaml":
		return nil
	}
	return usagef("unknown output format %q (want table, json or yaml)", o.format)
}

// write prints v as JSON or YAML, or calls table for the aligned table.
func (o *output) write(w io.Writer, v any, table func(tw *tabwriter.Writer)) error {
	switch o.format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		// Through JSON so field names and omitted fields match the JSON form.
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var generic any
		if err := yaml.Unmarshal(b, &generic); err != nil {
			return err
		}
		out, err := yaml.Marshal(generic)
		if err != nil {
			return err
		}
		_, err = w.Write(out)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// parseAge reads 30d, 12h, 90m, 45s (and anything time.ParseDuration takes).
func parseAge(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		// At most what a time.Duration holds (~292 years): more would wrap
		// around to a negative age, a cutoff in the future.
		const maxDays = int(math.MaxInt64 / int64(24*time.Hour))
		if _, err := fmt.Sscanf(n, "%d", &days); err != nil || days < 0 || days > maxDays || fmt.Sprint(days) != n {
			return 0, usagef("--older-than %q: want a number of days like 30d, or a duration like 12h", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, usagef("--older-than %q: want a number of days like 30d, or a duration like 12h", s)
	}
	return d, nil
}
