package statestore_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/drydock-go/statemgmt/statestore"
)

// burnSetup is one telemetry configuration of BenchmarkBurnInstrumentation.
type burnSetup struct {
	name string
	opts func(b *testing.B) statestore.Options
	off  bool // build the store without instrumentation
	drop bool // restore the indexes as they were before (indexesBefore)
}

// indexesBefore puts back the claim and recovery indexes without the
// columns the queue statistics read (the down part of the migration).
const indexesBefore = `
CREATE INDEX tasks_claimed_plain_idx ON tasks (claimed_at) WHERE status IN ('running', 'terminating');
DROP INDEX tasks_claimed_idx;
ALTER INDEX tasks_claimed_plain_idx RENAME TO tasks_claimed_idx;
CREATE INDEX tasks_queued_plain_idx ON tasks (created_at, task_id) WHERE status = 'queued';
DROP INDEX tasks_queued_idx;
ALTER INDEX tasks_queued_plain_idx RENAME TO tasks_queued_idx;`

var burnSetups = []burnSetup{
	{name: "before", opts: func(*testing.B) statestore.Options { return statestore.Options{} }, off: true, drop: true},
	{name: "off", opts: func(*testing.B) statestore.Options { return statestore.Options{} }, off: true},
	{name: "noop", opts: func(*testing.B) statestore.Options {
		return statestore.Options{MeterProvider: metricnoop.NewMeterProvider(), TracerProvider: tracenoop.NewTracerProvider()}
	}},
	{name: "global", opts: func(*testing.B) statestore.Options { return statestore.Options{} }},
	{name: "sdk", opts: func(b *testing.B) statestore.Options {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()),
			sdktrace.WithSampler(sdktrace.AlwaysSample()))
		b.Cleanup(func() {
			_ = mp.Shutdown(context.Background())
			_ = tp.Shutdown(context.Background())
		})
		return statestore.Options{MeterProvider: mp, TracerProvider: tp}
	}},
}

// BenchmarkBurnInstrumentation is the burn bench (bench/burn.go: workers
// claim 100 queued tasks at a time and complete each batch in one
// statement) under five setups, each on its own database:
//
//	before  no instrumentation, and the claim and recovery indexes
//	        without the INCLUDE columns of the queue statistics: the code
//	        before the instrumentation
//	off     no instrumentation, with the wider indexes (their cost)
//	noop    the OpenTelemetry API's no-op providers
//	global  the default: the global providers, no SDK installed
//	sdk     the SDK: metrics aggregated by a manual reader (not collected
//	        during the run), every span sampled and batched to an exporter
//	        that drops them
//
// One op is one round: every setup burns STATEMGMT_BURN_TASKS (default
// 5000) freshly queued tasks with 4 workers, in a rotating order, so that
// the machine's load drifts across all setups alike. Each setup's median
// over the rounds is reported as <setup>-tasks/s, and its median ratio to
// "before" of the same round as <setup>-vs-before (with the quartiles of
// those ratios, -p25 and -p75: the noise). Run:
//
//	go test -run '^$' -bench BurnInstrumentation -benchtime 15x ./statestore/
func BenchmarkBurnInstrumentation(b *testing.B) {
	const workers = 4
	n := 5000
	if v := os.Getenv("STATEMGMT_BURN_TASKS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 100 {
			b.Fatalf("STATEMGMT_BURN_TASKS=%q: want a number ≥ 100", v)
		}
	}
	ctx := context.Background()
	stores := make([]*statestore.Store, len(burnSetups))
	for i, setup := range burnSetups {
		restore := statestore.SetTelemetryOffForTest(setup.off)
		stores[i], _ = newStore(b, setup.opts(b))
		restore()
		if setup.drop {
			if err := stores[i].ExecForTest(ctx, indexesBefore); err != nil {
				b.Fatal(err)
			}
		}
	}
	rates := make([][]float64, len(burnSetups))
	ratios := make([][]float64, len(burnSetups))
	b.ResetTimer()
	for round := 0; round < b.N; round++ {
		got := make([]float64, len(burnSetups))
		for k := range burnSetups {
			i := (round + k) % len(burnSetups)
			b.StopTimer()
			queueTasks(b, stores[i], n)
			b.StartTimer()
			start := time.Now()
			burnDown(b, stores[i], workers)
			got[i] = float64(n) / time.Since(start).Seconds()
		}
		for i := range burnSetups {
			rates[i] = append(rates[i], got[i])
			ratios[i] = append(ratios[i], got[i]/got[0])
		}
	}
	b.StopTimer()
	for i, setup := range burnSetups {
		b.ReportMetric(median(rates[i]), setup.name+"-tasks/s")
		if i > 0 {
			b.ReportMetric(median(ratios[i]), setup.name+"-vs-before")
			// The spread of the round-by-round ratios: the machine's noise.
			b.ReportMetric(quantile(ratios[i], 0.25), setup.name+"-vs-before-p25")
			b.ReportMetric(quantile(ratios[i], 0.75), setup.name+"-vs-before-p75")
		}
	}
}

// burnDown claims and completes every queued task with the given number
// of workers, 100 at a time.
func burnDown(b *testing.B, s *statestore.Store, workers int) {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("w%d", w)
			for {
				tasks, err := s.ClaimTasks(ctx, name, 100)
				if err != nil || len(tasks) == 0 {
					errs <- err
					return
				}
				claims := make([]statestore.Claim, len(tasks))
				for i, t := range tasks {
					claims[i] = t.Claim()
				}
				if _, err := s.CompleteTasks(ctx, statestore.ResultSuccess, claims...); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}

func median(xs []float64) float64 { return quantile(xs, 0.5) }

// quantile interpolates the q-quantile of xs (0 ≤ q ≤ 1).
func quantile(xs []float64, q float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	pos := q * float64(len(s)-1)
	lo := int(pos)
	if lo+1 >= len(s) {
		return s[lo]
	}
	return s[lo] + (pos-float64(lo))*(s[lo+1]-s[lo])
}
