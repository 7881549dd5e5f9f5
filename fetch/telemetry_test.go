package fetch

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// fetchMetrics flattens the counters to "name{k=v}" → value.
func fetchMetrics(t *testing.T, reader sdkmetric.Reader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				continue
			}
			for _, p := range sum.DataPoints {
				var kv []string
				for _, a := range p.Attributes.ToSlice() {
					kv = append(kv, string(a.Key)+"="+a.Value.String())
				}
				sort.Strings(kv)
				out[m.Name+"{"+strings.Join(kv, ",")+"}"] = p.Value
			}
		}
	}
	return out
}

// TestFetchTelemetry: a fetch retried once after a 503 counts two attempts,
// one retry and the document's bytes; the same fetch again is a cache hit
// with no attempt; a file fetch counts one attempt under its own scheme;
// the spans carry the scheme, never the URI's credentials, and the error
// of a failed fetch.
func TestFetchTelemetry(t *testing.T) {
	body := "schema: drydock/Region/v1\n"
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(body))
	}))
	defer srv.Close()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer mp.Shutdown(context.Background())
	defer tp.Shutdown(context.Background())
	r := newResolver(t, Options{MeterProvider: mp, TracerProvider: tp})
	ctx := context.Background()

	uri := strings.Replace(srv.URL, "http://", "http://user:s3cret@", 1) + "/design.yaml"
	for i := 0; i < 2; i++ {
		if _, err := r.Fetch(ctx, uri); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "site.yaml")
	if err := os.WriteFile(path, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Fetch(ctx, "file://"+path); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Fetch(ctx, srv.URL+"/missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing document: %v, want ErrNotFound", err)
	}
	want := map[string]int64{
		"statemgmt.fetch.attempts{scheme=http}":   3, // 503, 200, 404
		"statemgmt.fetch.retries{scheme=http}":    1,
		"statemgmt.fetch.bytes{scheme=http}":      int64(len(body)),
		"statemgmt.fetch.cache.hits{scheme=http}": 1,
		"statemgmt.fetch.attempts{scheme=file}":   1,
		"statemgmt.fetch.bytes{scheme=file}":      3,
	}
	if diff := cmp.Diff(want, fetchMetrics(t, reader)); diff != "" {
		t.Fatalf("metrics differ (-want +got):\n%s", diff)
	}

	got := spans.GetSpans()
	if len(got) != 4 {
		t.Fatalf("%d spans, want 4 (one per Fetch)", len(got))
	}
	for i, sp := range got {
		if sp.Name != "fetch.Fetch" {
			t.Errorf("span %d named %q", i, sp.Name)
		}
		scheme := attribute.NewSet(sp.Attributes...)
		if v, ok := scheme.Value("scheme"); !ok || (v.AsString() != "http" && v.AsString() != "file") {
			t.Errorf("span %d: scheme attribute %v", i, sp.Attributes)
		}
		for _, a := range sp.Attributes {
			if strings.Contains(a.Value.String(), "s3cret") {
				t.Errorf("span %d carries the password: %v", i, a)
			}
		}
	}
	if last := got[3]; last.Status.Code != codes.Error || len(last.Events) == 0 || last.Events[0].Name != "exception" {
		t.Errorf("failed fetch's span: status %v, events %v; want Error with an exception event", last.Status, last.Events)
	}
}
