// Package telemetry sets up the OpenTelemetry SDK for statectl's binary:
// a MeterProvider whose metrics a Prometheus registry of its own serves
// (the handler /metrics mounts), with the Go runtime's and the process's
// metrics beside them. The libraries (statestore, fetch) use only the
// OpenTelemetry API; this package is the one place the SDK and the
// exporter are linked in, and only statectl imports it.
package telemetry

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// Metrics is an SDK MeterProvider exported in the Prometheus format.
type Metrics struct {
	// Provider is the MeterProvider to hand to statestore.Options and
	// the other instrumented libraries.
	Provider *sdkmetric.MeterProvider
	// Handler serves the metrics in the Prometheus text format.
	Handler http.Handler
}

// NewMetrics creates the provider and its handler. service names the
// process in the exported target_info (the resource's service.name).
// Metric names follow Prometheus conventions: dots become underscores,
// units are suffixed (_seconds, _bytes) and counters end in _total
// (statemgmt.tasks.created → statemgmt_tasks_created_total).
func NewMetrics(service string) (*Metrics, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("telemetry: register the Go runtime collector: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("telemetry: register the process collector: %w", err)
	}
	exp, err := otelprom.New(otelprom.WithRegisterer(reg),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes))
	if err != nil {
		return nil, fmt.Errorf("telemetry: create the Prometheus exporter: %w", err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", service))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// A failed collection (e.g. the queue query while the database is
		// down) still serves the other metrics; the error is counted in
		// promhttp_metric_handler_errors_total.
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      reg,
	})
	return &Metrics{Provider: mp, Handler: h}, nil
}

// Shutdown flushes and stops the provider.
func (m *Metrics) Shutdown(ctx context.Context) error {
	if err := m.Provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("telemetry: shut down the meter provider: %w", err)
	}
	return nil
}
