package statestore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/drydock-go/statemgmt/statestore"
)

// BenchmarkBurnInstrumentation is the burn bench (bench/burn.go: workers
// claim 100 queued tasks at a time and complete each batch in one
// statement) under four telemetry setups, one after the other in each
// round so that -count interleaves them:
//
//	before  the store built without instrumentation, and the metrics'
//	        index (tasks_active_action_idx) dropped: the code before it
//	off     without instrumentation, with the index: the index's cost is
//	        off against before

//	noop    the OpenTelemetry API's no-op providers
//	global  the default: the global providers, with no SDK installed
//	sdk     the SDK: metrics aggregated (a manual reader, never collected
//	        during the run), every span sampled and batched to an exporter
//	        that drops them
//
// One op is one task. Run it with a fixed count of tasks, e.g.
//
//	go test -run '^$' -bench BurnInstrumentation -benchtime 20000x -count 5 ./statestore/
func BenchmarkBurnInstrumentation(b *testing.B) {
	const workers = 4
	setups := []struct {
		name string
		opts func(b *testing.B) statestore.Options
		off  bool
		drop bool // drop the metrics' index
	}{
		{"before", func(*testing.B) statestore.Options { return statestore.Options{} }, true, true},
		{"off", func(*testing.B) statestore.Options { return statestore.Options{} }, true, false},
		{"noop", func(*testing.B) statestore.Options {
			return statestore.Options{MeterProvider: metricnoop.NewMeterProvider(), TracerProvider: tracenoop.NewTracerProvider()}
		}, false, false},
		{"global", func(*testing.B) statestore.Options { return statestore.Options{} }, false, false},
		{"sdk", func(b *testing.B) statestore.Options {
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()),
				sdktrace.WithSampler(sdktrace.AlwaysSample()))
			b.Cleanup(func() {
				_ = mp.Shutdown(context.Background())
				_ = tp.Shutdown(context.Background())
			})
			var m metric.MeterProvider = mp
			var t trace.TracerProvider = tp
			return statestore.Options{MeterProvider: m, TracerProvider: t}
		}, false, false},
	}
	for _, setup := range setups {
		b.Run(setup.name, func(b *testing.B) {
			restore := statestore.SetTelemetryOffForTest(setup.off)
			s, _ := newStore(b, setup.opts(b))
			restore()
			ctx := context.Background()
			if setup.drop {
				if err := s.ExecForTest(ctx, "DROP INDEX tasks_active_action_idx"); err != nil {
					b.Fatal(err)
				}
			}
			queueTasks(b, s, b.N)
			b.ResetTimer()
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
			b.StopTimer()
			close(errs)
			for err := range errs {
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}
