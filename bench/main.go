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
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"time"

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
	riverSweep  string
	claim       int
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

func main() {
	var cfg config
	scenario := flag.String("scenario", "all", "burn, latency, latencysteps, append, wakeups, appendbatch, read, failover, failover-db, testdb, fanout, batch or all")
	flag.StringVar(&cfg.databaseURL, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (default $DATABASE_URL, else a test database of its own)")
	flag.BoolVar(&cfg.small, "small", false, "small sizes: a smoke test, not a measurement")
	flag.IntVar(&cfg.tasks, "n", 100000, "burn: tasks/jobs to burn down")
	flag.IntVar(&cfg.workers, "workers", 8, "burn/latency/append: concurrent workers (wakeups: twice as many writers)")
	flag.Float64Var(&cfg.rate, "rate", 20, "latency: tasks enqueued per second")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "latency: how long to enqueue; wakeups: time per variant (three runs of a third)")
	flag.IntVar(&cfg.messages, "messages", 100000, "append: messages per variant")
	flag.IntVar(&cfg.readTasks, "read-tasks", 1000, "read: tasks (10 messages each)")
	flag.IntVar(&cfg.trials, "trials", 20, "failover/testdb: trials")
	flag.StringVar(&cfg.riverSweep, "river-max-workers", "100,500,2000", "burn: River's MaxWorkers to sweep (comma-separated; -small: 100; none: River not run)")
	flag.IntVar(&cfg.claim, "claim", 100, "burn: tasks per ClaimTasks")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (both systems: this process is the client of each) to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: -cpuprofile: %v\n", err)
			os.Exit(2)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "bench: -cpuprofile: %v\n", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	if cfg.small {
		cfg.tasks, cfg.duration, cfg.messages, cfg.readTasks, cfg.trials = 2000, 3*time.Second, 5000, 200, 5
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	defer statetest.Shutdown(context.Background()) //nolint:errcheck // best effort at exit

	scenarios := map[string]func(context.Context, *config, *bench) error{
		"burn": burn, "latency": latency, "append": appendScenario, "read": read, "failover": failover, "testdb": testdb,
		"wakeups": wakeups, "appendbatch": appendBatch,
		"fanout": fanout, "batch": batchScenario, "failover-db": failoverDB, "latencysteps": latencySteps,
	}
	order := []string{"burn", "latency", "latencysteps", "append", "wakeups", "appendbatch", "read", "failover", "failover-db", "testdb", "fanout", "batch"}
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
