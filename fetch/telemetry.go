package fetch

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// InstrumentationName is the name of the Resolver's OpenTelemetry meter
// and tracer.
const InstrumentationName = "github.com/drydock-go/statemgmt/fetch"

// telemetry holds a Resolver's instruments and, per scheme, its attribute
// set (created once: recording allocates nothing).
type telemetry struct {
	tracer                             trace.Tracer
	attempts, retries, cacheHits, size metric.Int64Counter
	schemes                            map[string]metric.MeasurementOption
	spanAttrs                          map[string]trace.SpanStartOption
}

func newTelemetry(mp metric.MeterProvider, tp trace.TracerProvider) (*telemetry, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	m := mp.Meter(InstrumentationName)
	t := &telemetry{tracer: tp.Tracer(InstrumentationName),
		schemes: map[string]metric.MeasurementOption{}, spanAttrs: map[string]trace.SpanStartOption{}}
	for s := range handlers {
		a := attribute.String("scheme", s)
		t.schemes[s] = metric.WithAttributeSet(attribute.NewSet(a))
		t.spanAttrs[s] = trace.WithAttributes(a)
	}
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	t.attempts = counter("statemgmt.fetch.attempts", "{attempt}", "Reads of a document from its source (each HTTP request, retries included; each file read), by URI scheme.")
	t.retries = counter("statemgmt.fetch.retries", "{retry}", "Attempts after the first of one fetch, by URI scheme.")
	t.cacheHits = counter("statemgmt.fetch.cache.hits", "{hit}", "Fetches answered from the in-memory cache without a request, by URI scheme.")
	t.size = counter("statemgmt.fetch.bytes", "By", "Document bytes read from sources (not from the cache), by URI scheme.")
	if err := errors.Join(errs...); err != nil {
		return t, fmt.Errorf("fetch: create telemetry instruments: %w", err)
	}
	return t, nil
}

// flightStats counts what one upstream fetch did; it travels in the
// flight's context to the code that makes the requests.
type flightStats struct {
	attempts int
	bytes    int64
}

type statsKey struct{}

func withStats(ctx context.Context) (context.Context, *flightStats) {
	st := &flightStats{}
	return context.WithValue(ctx, statsKey{}, st), st
}

func statsFrom(ctx context.Context) *flightStats {
	st, _ := ctx.Value(statsKey{}).(*flightStats)
	return st
}

// record adds one upstream fetch's counts.
func (t *telemetry) record(ctx context.Context, scheme string, st *flightStats) {
	set := t.schemes[scheme]
	if st.attempts > 0 {
		t.attempts.Add(ctx, int64(st.attempts), set)
	}
	if st.attempts > 1 {
		t.retries.Add(ctx, int64(st.attempts-1), set)
	}
	if st.bytes > 0 {
		t.size.Add(ctx, st.bytes, set)
	}
}

// endSpan ends span, recording *err (when not nil) as its error.
func endSpan(span trace.Span, err *error) {
	if *err != nil {
		span.RecordError(*err)
		span.SetStatus(codes.Error, (*err).Error())
	}
	span.End()
}
