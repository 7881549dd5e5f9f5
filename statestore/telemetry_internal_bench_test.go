package statestore

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// BenchmarkTelemetryPerBurnBatch measures, without the database, the work
// the instrumentation adds to one batch of the burn bench: the spans of
// ClaimTasks and CompleteTasks and the metrics of 100 tasks claimed and
// completed. One op is one task (the batch's cost / 100), to set against
// the burn's time per task.
func BenchmarkTelemetryPerBurnBatch(b *testing.B) {
	now := time.Now()
	claimed := now.Add(-time.Second)
	tasks := make([]*Task, 100)
	since := make([]time.Time, 100)
	for i := range tasks {
		tasks[i] = &Task{ID: uuid.New(), Action: "noop", Status: StatusComplete, ClaimedAt: &claimed, UpdatedAt: now,
			Result: TaskResult{Status: ResultSuccess}}
		since[i] = claimed.Add(-time.Second)
	}
	setups := []struct {
		name string
		mp   func(b *testing.B) (metric.MeterProvider, trace.TracerProvider)
	}{
		{"noop", func(*testing.B) (metric.MeterProvider, trace.TracerProvider) {
			return metricnoop.NewMeterProvider(), tracenoop.NewTracerProvider()
		}},
		{"global", func(*testing.B) (metric.MeterProvider, trace.TracerProvider) { return nil, nil }},
		{"sdk", func(b *testing.B) (metric.MeterProvider, trace.TracerProvider) {
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()),
				sdktrace.WithSampler(sdktrace.AlwaysSample()))
			b.Cleanup(func() {
				_ = mp.Shutdown(context.Background())
				_ = tp.Shutdown(context.Background())
			})
			return mp, tp
		}},
	}
	for _, setup := range setups {
		b.Run(setup.name, func(b *testing.B) {
			mp, tp := setup.mp(b)
			tel, err := newTelemetry(mp, tp, nil)
			if err != nil {
				b.Fatal(err)
			}
			s := &Store{tel: tel}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += len(tasks) {
				func() (err error) {
					ctx, span := s.start(ctx, "statestore.ClaimTasks")
					defer finish(span, &err)
					s.tasksClaimed(ctx, tasks, since)
					return nil
				}()
				func() (err error) {
					ctx, span := s.start(ctx, "statestore.CompleteTasks")
					defer finish(span, &err)
					s.tasksCompleted(ctx, tasks)
					return nil
				}()
			}
		})
	}
}
