package statestore_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/drydock-go/statemgmt/fetch"
	"github.com/drydock-go/statemgmt/statestore"
)

// ExampleOptions_telemetry hands the application's meter and tracer
// providers to the store, the elector and the resolver, as
// docs/observability.md shows (no-op providers here; an application passes
// its SDK's).
func ExampleOptions_telemetry() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := newExampleDB(ctx)
	defer e.close()
	e.setenv("STATEMGMT_ELECTOR_URL")
	pool := e.pool
	logger := slog.New(slog.DiscardHandler)
	var mp metric.MeterProvider = metricnoop.NewMeterProvider()
	var tp trace.TracerProvider = tracenoop.NewTracerProvider()

	run := func() error {
		// snippet:start observability-providers
		store := statestore.New(pool, statestore.Options{
			Logger:         logger,
			MeterProvider:  mp, // nil: otel.GetMeterProvider()
			TracerProvider: tp, // nil: otel.GetTracerProvider()
		})
		defer store.Close() // also unregisters the queue gauges

		elector, err := statestore.NewElector(statestore.ElectorConfig{
			ConnString:    os.Getenv("STATEMGMT_ELECTOR_URL"),
			MeterProvider: mp, // nil: the global one
		})
		if err != nil {
			return err
		}
		defer elector.Close() // after Run returns: unregisters the leadership gauges

		resolver, err := fetch.New(fetch.Options{MeterProvider: mp, TracerProvider: tp})
		if err != nil {
			return err
		}
		defer resolver.Close()
		// snippet:end observability-providers
		_, err = store.CreateTask(ctx, statestore.NewTask{Action: "noop"})
		return err
	}
	fmt.Println(run())
	// Output:
	// <nil>
}
