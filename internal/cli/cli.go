// Package cli is statectl, the operator's tool: cobra commands over the
// statestore and fetch packages, with table, JSON and YAML output.
package cli

import (
	"bufio"
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

// env is what every command shares: where to write, how to connect.
type env struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	databaseURL    string
	logger         *slog.Logger
	// running is set once a command's own RunE starts: an error before
	// that is cobra's (an unknown flag, a missing argument or required
	// flag), a usage error.
	running bool
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
	if errors.As(err, &ue) || !e.running {
		return ExitUsage
	}
	return ExitError
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

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
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{flagParseError(err)} })
	root.AddCommand(e.migrateCommand(), e.taskCommand(), e.msgCommand(), e.buildDataCommand(),
		e.bootActionCommand(), e.leaderCommand(), e.designCommand(), e.demoCommand(), e.versionCommand(), e.importCommand(), e.serveCommand())
	root.SetHelpCommand(helpCommand(root))
	root.InitDefaultCompletionCmd()
	e.strict(root)
	return root
}

// strict walks the command tree: every command group (a noun without its
// verb: statectl, statectl task, ...) refuses an unknown subcommand and
// the lack of one (groupRunE), and every command notes when its own work
// starts (e.running), so that any error before it counts as usage.
func (e *env) strict(c *cobra.Command) {
	if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		c.Args = cobra.ArbitraryArgs
		c.RunE = groupRunE
		c.SuggestionsMinimumDistance = 2
	}
	if check := c.Args; check != nil && !c.HasSubCommands() {
		c.Args = namedArgs(check)
	}
	if run := c.RunE; run != nil {
		if c.PreRunE == nil && c.PreRun == nil {
			c.PreRunE = checkRequiredFlags
		}
		c.RunE = func(c *cobra.Command, args []string) error {
			e.running = true
			return run(c, args)
		}
	}
	for _, sub := range c.Commands() {
		e.strict(sub)
	}
}

// namedArgs wraps a command's argument check so that a wrong number of
// arguments is a usage error naming the argument as its Use line does
// ("statectl task show: missing ID (usage: statectl task show ID; see
// --help)"), not cobra's "accepts 1 arg(s), received 0", nor "unknown
// command" for an argument given to a command that takes none.
func namedArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		err := check(c, args)
		if err == nil {
			return nil
		}
		names := strings.Fields(c.Use)[1:]
		required := 0
		for _, n := range names {
			if !strings.HasPrefix(n, "[") {
				required++
			}
		}
		usage := strings.Join(append([]string{c.CommandPath()}, names...), " ")
		switch {
		case len(names) == 0 && len(args) > 0:
			return usagef("%s takes no arguments, got %q (see %s --help)", c.CommandPath(), args[0], c.CommandPath())
		case len(args) < required:
			return usagef("%s: missing %s (usage: %s; see --help)", c.CommandPath(), names[len(args)], usage)
		case len(args) > len(names):
			return usagef("%s: unexpected argument %q (usage: %s; see --help)", c.CommandPath(), args[len(names)], usage)
		}
		return usageError{err}
	}
}

// groupRunE runs a command group. With an argument, that is an unknown
// subcommand: a usage error naming it, with suggestions. With none, the
// group's usage goes to stderr and it is a usage error too (exit 2, as for
// any incomplete command line: a script whose verb went missing must not
// pass). Help asked for (--help, statectl help ...) goes to stdout, exit 0.
func groupRunE(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return unknownCommand(c, args[0])
	}
	fmt.Fprint(c.ErrOrStderr(), c.UsageString())
	return usagef("%s needs a subcommand: %s (see %s --help)", c.CommandPath(), strings.Join(subcommandNames(c), ", "), c.CommandPath())
}

// unknownCommand is the usage error for an unknown subcommand name of c.
func unknownCommand(c *cobra.Command, name string) error {
	hint := ""
	if s := c.SuggestionsFor(name); len(s) > 0 {
		hint = fmt.Sprintf("; did you mean %s?", strings.Join(quoteAll(s), " or "))
	}
	return usagef("unknown command %q for %q%s (subcommands: %s)", name, c.CommandPath(), hint, strings.Join(subcommandNames(c), ", "))
}

func subcommandNames(c *cobra.Command) []string {
	var names []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	return names
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

// helpCommand is "statectl help [command ...]": the help of a known
// command on stdout (exit 0); an unknown one is a usage error like
// anywhere else (cobra's own prints "Unknown help topic" and exits 0).
func helpCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{Use: "help [command]", Short: "Help about any command", Args: cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			target, rest, err := root.Find(args)
			if err != nil {
				return usageError{err}
			}
			if len(rest) > 0 {
				return unknownCommand(target, rest[0])
			}
			return target.Help()
		}}
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

// store opens a pool and a store on a database migrated to the version this
// statectl knows (checkSchema); close with the returned func.
func (e *env) store(ctx context.Context) (*statestore.Store, func(), error) {
	s, closeFn, err := e.openStore(ctx, 5*time.Second, statestore.Options{Logger: e.logger})
	if err != nil {
		return nil, nil, err
	}
	if err := e.checkSchema(ctx, s); err != nil {
		closeFn()
		return nil, nil, err
	}
	return s, closeFn, nil
}

// openStore opens a pool and a store with opts, waiting up to timeout for
// the database to answer, without checking the schema (statectl serve
// reports it on /readyz); close with the returned func.
func (e *env) openStore(ctx context.Context, timeout time.Duration, opts statestore.Options) (*statestore.Store, func(), error) {
	cfg, err := pgxpool.ParseConfig(e.connString())
	if err != nil {
		return nil, nil, usagef("the database URL (--database-url or DATABASE_URL) cannot be parsed")
	}
	cfg.MaxConns = 4
	cfg.ConnConfig.ConnectTimeout = timeout
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, connectError(err)
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, nil, connectError(err)
	}
	s := statestore.New(pool, opts)
	return s, func() { s.Close(); pool.Close() }, nil
}

// checkSchema refuses a database whose schema is missing or behind the
// version this statectl knows, saying so and how to migrate, instead of
// letting the first query fail with 'relation "tasks" does not exist'. A
// schema newer than this statectl gets a warning on stderr.
func (e *env) checkSchema(ctx context.Context, s *statestore.Store) error {
	v, err := s.ReadSchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("read the database's schema version: %w", err)
	}
	latest := statestore.LatestSchemaVersion()
	switch {
	case v == 0:
		return fmt.Errorf("the database is not migrated (schema version 0 of %d): run \"statectl migrate up\" on it (same --database-url or DATABASE_URL) first", latest)
	case v < latest:
		return fmt.Errorf("the database's schema is at version %d of %d (%d migration(s) pending): run \"statectl migrate up\" on it (same --database-url or DATABASE_URL) first", v, latest, latest-v)
	case v > latest:
		fmt.Fprintf(e.stderr, "statectl: warning: the database's schema is at version %d, newer than this statectl knows (%d): use a newer statectl\n", v, latest)
	}
	return nil
}

// conn opens one direct connection (for migrations).
func (e *env) conn(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(e.connString())
	if err != nil {
		return nil, usagef("the database URL (--database-url or DATABASE_URL) cannot be parsed")
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
	return usagef("-o/--output %q: unknown output format (want table, json or yaml)", o.format)
}

// write prints v as JSON or YAML, or calls table for the aligned table.
func (o *output) write(w io.Writer, v any, table func(tw *tabwriter.Writer)) error {
	switch o.format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		out, err := toYAML(v)
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

// writeRecord prints one record of a stream (msg tail): in JSON one
// compact object on one line (JSON Lines), in YAML one document opened by
// "---", so that a reader of either stream gets every record back however
// many there are; table prints the table form.
func (o *output) writeRecord(w io.Writer, v any, table func() error) error {
	switch o.format {
	case "json":
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	case "yaml":
		out, err := toYAML(v)
		if err != nil {
			return err
		}
		_, err = w.Write(append([]byte("---\n"), out...))
		return err
	}
	return table()
}

// toYAML renders v through JSON, so that field names and omitted fields
// match the JSON form.
func toYAML(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var generic any
	if err := yaml.Unmarshal(b, &generic); err != nil {
		return nil, err
	}
	return yaml.Marshal(generic)
}

// listView is what every list command prints with -o json or -o yaml:
// the items of one page (an array, empty rather than null) and the cursor
// of the next page (null on the last page; pass it to --cursor).
type listView[T any] struct {
	Items []T     `json:"items"`
	Next  *string `json:"next"`
}

func newList[T any](items []T, next string) listView[T] {
	l := listView[T]{Items: items}
	if l.Items == nil {
		l.Items = []T{}
	}
	if next != "" {
		l.Next = &next
	}
	return l
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

// confirm asks on stderr and reads one answer from stdin: true only for y or
// yes. End of input is a no; a failing stdin is an error (nothing is done).
func (e *env) confirm(prompt string) (bool, error) {
	fmt.Fprint(e.stderr, prompt)
	answer, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read the answer from stdin: %w", err)
	}
	a := strings.ToLower(strings.TrimSpace(answer))
	return a == "y" || a == "yes", nil
}
