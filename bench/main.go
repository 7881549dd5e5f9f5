// Command bench measures statemgmt against River (github.com/riverqueue/river)
// and against the original's ways of doing things, in the same run on the
// same PostgreSQL, so the comparison holds on a noisy machine.
//
//	cd bench && go run . -scenario burn            # one scenario
//	cd bench && go run . -scenario all -small      # every scenario, small (make bench)
//
// stdout: one JSON object per line {scenario, system, metric, value, unit,
// params}, and a final "ratio" line per scenario (ours / theirs). stderr: a
// human summary, and progress every 2 s during long runs.
//
// It lives in its own module so River never enters the library's
// dependency graph.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

type config struct {
	databaseURL string
	small       bool
	tasks       int
	workers     int
	rate        float64
	duration    time.Duration
	messages    int
	readTasks   int
	trials      int
}

// record is one output line.
type record struct {
	Scenario string         `json:"scenario"`
	System   string         `json:"system"`
	Metric   string         `json:"metric"`
	Value    float64        `json:"value"`
	Unit     string         `json:"unit"`
	Params   map[string]any `json:"params,omitempty"`
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func main() {
	var cfg config
	scenario := flag.String("scenario", "all", "burn, latency, append, wakeups, appendbatch, read, failover, testdb, fanout, batch or all")
	flag.StringVar(&cfg.databaseURL, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (default $DATABASE_URL, else a test database of its own)")
	flag.BoolVar(&cfg.small, "small", false, "small sizes: a smoke test, not a measurement")
	flag.IntVar(&cfg.tasks, "n", 100000, "burn: tasks/jobs to burn down")
	flag.IntVar(&cfg.workers, "workers", 8, "burn/latency/append: concurrent workers (wakeups: twice as many writers)")
	flag.Float64Var(&cfg.rate, "rate", 20, "latency: tasks enqueued per second")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "latency: how long to enqueue; wakeups: time per variant (three runs of a third)")
	flag.IntVar(&cfg.messages, "messages", 100000, "append: messages per variant")
	flag.IntVar(&cfg.readTasks, "read-tasks", 1000, "read: tasks (10 messages each)")
	flag.IntVar(&cfg.trials, "trials", 20, "failover/testdb: trials")
	flag.Parse()
	if cfg.small {
		cfg.tasks, cfg.duration, cfg.messages, cfg.readTasks, cfg.trials = 2000, 3*time.Second, 5000, 200, 5
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	defer statetest.Shutdown(context.Background()) //nolint:errcheck // best effort at exit

	scenarios := map[string]func(context.Context, *config, *bench) error{
		"burn": burn, "latency": latency, "append": appendScenario, "read": read, "failover": failover, "testdb": testdb,
		"wakeups": wakeups, "appendbatch": appendBatch,
		"fanout": fanout, "batch": batchScenario,
	}
	order := []string{"burn", "latency", "append", "wakeups", "appendbatch", "read", "failover", "testdb", "fanout", "batch"}
	if *scenario != "all" {
		if _, ok := scenarios[*scenario]; !ok {
			fmt.Fprintf(os.Stderr, "bench: unknown scenario %q (want %s or all)\n", *scenario, strings.Join(order, ", "))
			os.Exit(2)
		}
		order = []string{*scenario}
	}
	b := &bench{out: json.NewEncoder(os.Stdout)}
	for _, name := range order {
		fmt.Fprintf(os.Stderr, "== %s\n", name)
		if err := scenarios[name](ctx, &cfg, b); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", name, err)
			os.Exit(1)
		}
	}
}

type bench struct{ out *json.Encoder }

func (b *bench) emit(r record) {
	_ = b.out.Encode(r)
	fmt.Fprintf(os.Stderr, "  %-10s %-22s %12.2f %s\n", r.System, r.Metric, r.Value, r.Unit)
}

// ratio emits ours/theirs for a metric.
func (b *bench) ratio(scenario, metric string, ours, theirs float64, note string) {
	if theirs == 0 {
		return
	}
	b.emit(record{Scenario: scenario, System: "ratio", Metric: metric + " ours/theirs", Value: ours / theirs, Unit: note})
}

// database gives a scenario empty tables of both systems: a fresh database
// from the test-database provider, or the given one truncated.
func database(ctx context.Context, cfg *config) (string, func(), error) {
	url, cleanup := cfg.databaseURL, func() {}
	if url == "" {
		srv, err := statetest.DefaultServer(ctx)
		if err != nil {
			return "", nil, err
		}
		db, err := srv.CreateDatabase(ctx)
		if err != nil {
			return "", nil, err
		}
		url = db.URL
		cleanup = func() { _ = srv.DropDatabase(context.Background(), db.Name) }
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	if _, err := statestore.Migrate(ctx, conn, quiet); err != nil {
		return "", nil, err
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return "", nil, err
	}
	defer pool.Close()
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return "", nil, err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return "", nil, fmt.Errorf("river migrations: %w", err)
	}
	if cfg.databaseURL != "" {
		if _, err := conn.Exec(ctx, `TRUNCATE tasks, result_message, build_data, boot_action, boot_action_status,
			active_instance, leader_term, river_job, river_leader, river_queue`); err != nil {
			return "", nil, fmt.Errorf("reset tables: %w", err)
		}
	}
	return url, cleanup, nil
}

func newPool(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = maxConns
	return pgxpool.NewWithConfig(ctx, cfg)
}

// progress prints f() every 2 s until the returned stop is called.
func progress(label string, f func() string) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(os.Stderr, "  … %s: %s\n", label, f())
			}
		}
	}()
	return func() { close(done) }
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pgxTx is the transaction type of River's pgx driver.
type pgxTx = pgx.Tx

// quietStore opens a store on a fresh database of the scenario's own (see
// database) over a pool of 4 connections; closeAll closes the store and the
// pool and drops the database.
func quietStore(ctx context.Context, cfg *config, opts statestore.Options) (*statestore.Store, *pgxpool.Pool, func(), error) {
	url, cleanup, err := database(ctx, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	pool, err := newPool(ctx, url, 4)
	if err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	s := statestore.New(pool, opts)
	return s, pool, func() { s.Close(); pool.Close(); cleanup() }, nil
}
