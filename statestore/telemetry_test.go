package statestore_test

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/drydock-go/statemgmt/statestore"
)

// metricsSnapshot collects reader once and flattens every data point to
// "name{k=v,…}" → value: sums and gauges their value, histograms their
// count (as "name{…}#count").
func metricsSnapshot(t testing.TB, reader sdkmetric.Reader) map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collect metrics: %v", err)
	}
	out := map[string]float64{}
	key := func(name string, set attribute.Set) string {
		var kv []string
		for _, a := range set.ToSlice() {
			kv = append(kv, string(a.Key)+"="+a.Value.String())
		}
		sort.Strings(kv)
		return name + "{" + strings.Join(kv, ",") + "}"
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = float64(p.Value)
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = float64(p.Value)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)+"#count"] = float64(p.Count)
				}
			}
		}
	}
	return out
}

// pick returns the entries of snap named in keys (missing ones as absent),
// for a go-cmp comparison with what a test expects.
func pick(snap map[string]float64, keys map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k := range keys {
		if v, ok := snap[k]; ok {
			out[k] = v
		}
	}
	return out
}

func newInstrumentedStore(t *testing.T) (*statestore.Store, *sdkmetric.ManualReader, *tracetest.InMemoryExporter) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() {
		_ = mp.Shutdown(context.Background())
		_ = tp.Shutdown(context.Background())
	})
	s, _ := newStore(t, statestore.Options{MeterProvider: mp, TracerProvider: tp})
	return s, reader, spans
}

// TestTelemetryMetricsMoveWithTasks walks tasks through their lifecycle and
// checks after each step that exactly the expected metrics moved: counters
// by action, the claim-latency and run-duration histograms, the queued and
// running gauges (read by one query at collection, reporting 0 for a
// drained action) and the messages counter.
func TestTelemetryMetricsMoveWithTasks(t *testing.T) {
	ctx := ctxTimeout(t, 60*time.Second)
	s, reader, _ := newInstrumentedStore(t)
	check := func(step string, want map[string]float64) {
		t.Helper()
		snap := metricsSnapshot(t, reader)
		if diff := cmp.Diff(want, pick(snap, want)); diff != "" {
			t.Fatalf("%s: metrics differ (-want +got):\n%s", step, diff)
		}
	}
	const (
		deploy  = "{action=deploy_node}"
		prepare = "{action=prepare_site}"
	)

	created, err := s.CreateTasks(ctx,
		statestore.NewTask{Action: "deploy_node"}, statestore.NewTask{Action: "deploy_node"},
		statestore.NewTask{Action: "prepare_site"})
	if err != nil {
		t.Fatal(err)
	}
	check("created", map[string]float64{
		"statemgmt.tasks.created" + deploy: 2, "statemgmt.tasks.created" + prepare: 1,
		"statemgmt.tasks.queued" + deploy: 2, "statemgmt.tasks.queued" + prepare: 1,
	})
	if age := metricsSnapshot(t, reader)["statemgmt.tasks.queued.oldest_age"+deploy]; age < 0 {
		t.Fatalf("oldest queued age is %v, want ≥ 0", age)
	}

	leader := s // unfenced: the metrics do not depend on the fence
	got, err := leader.ClaimTasks(ctx, "w1", 1, "deploy_node")
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %v, %d tasks", err, len(got))
	}
	check("one claimed", map[string]float64{
		"statemgmt.tasks.claimed" + deploy: 1, "statemgmt.task.claim_latency" + deploy + "#count": 1,
		"statemgmt.tasks.queued" + deploy: 1, "statemgmt.tasks.running" + deploy: 1,
	})
	if _, err := s.CompleteTasks(ctx, statestore.ResultSuccess, got[0].Claim()); err != nil {
		t.Fatal(err)
	}
	check("one completed", map[string]float64{
		"statemgmt.tasks.completed" + deploy:                                   1,
		"statemgmt.task.run_duration{action=deploy_node,result=success}#count": 1,
		"statemgmt.tasks.running" + deploy:                                     0, "statemgmt.tasks.running.oldest_age" + deploy: 0,
	})

	got, err = leader.ClaimTasks(ctx, "w1", 1, "deploy_node")
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %v, %d tasks", err, len(got))
	}
	if _, err := s.CompleteTasks(ctx, statestore.ResultFailure, got[0].Claim()); err != nil {
		t.Fatal(err)
	}
	check("one failed, deploy_node drained", map[string]float64{
		"statemgmt.tasks.claimed" + deploy: 2, "statemgmt.tasks.completed" + deploy: 1,
		"statemgmt.tasks.failed" + deploy:                                      1,
		"statemgmt.task.run_duration{action=deploy_node,result=failure}#count": 1,
		"statemgmt.tasks.queued" + deploy:                                      0, "statemgmt.tasks.queued.oldest_age" + deploy: 0,
	})

	got, err = leader.ClaimTasks(ctx, "w2", 1, "prepare_site")
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %v, %d tasks", err, len(got))
	}
	if _, err := s.RequeueTasks(ctx, got[0].Claim()); err != nil {
		t.Fatal(err)
	}
	check("requeued", map[string]float64{
		"statemgmt.tasks.requeued" + prepare: 1, "statemgmt.tasks.queued" + prepare: 1,
	})
	if _, err := leader.TerminateTask(ctx, created[2].ID, "ops"); err != nil {
		t.Fatal(err)
	}
	check("terminated", map[string]float64{
		"statemgmt.tasks.terminated" + prepare: 1, "statemgmt.tasks.queued" + prepare: 0,
	})

	// UpdateTask: a worker completes its claim; a queued task is terminated.
	more, err := s.CreateTasks(ctx, statestore.NewTask{Action: "prepare_site"}, statestore.NewTask{Action: "prepare_site"})
	if err != nil {
		t.Fatal(err)
	}
	got, err = leader.ClaimTasks(ctx, "w2", 1, "prepare_site")
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %v, %d tasks", err, len(got))
	}
	complete, terminated, success := statestore.StatusComplete, statestore.StatusTerminated, statestore.ResultPartialSuccess
	if _, err := s.UpdateTask(ctx, got[0].ID, got[0].Version, statestore.TaskUpdate{
		Status: &complete, ResultStatus: &success, Attempt: got[0].Attempt}); err != nil {
		t.Fatal(err)
	}
	other := more[1]
	if other.ID == got[0].ID {
		other = more[0]
	}
	upd, err := s.UpdateTask(ctx, other.ID, other.Version, statestore.TaskUpdate{Status: &terminated})
	if err != nil {
		t.Fatal(err)
	}
	// Terminated again (same status, allowed): not counted twice.
	if _, err := s.UpdateTask(ctx, other.ID, upd.Version, statestore.TaskUpdate{Status: &terminated}); err != nil {
		t.Fatal(err)
	}
	check("updated", map[string]float64{
		"statemgmt.tasks.created" + prepare: 3, "statemgmt.tasks.completed" + prepare: 1,
		"statemgmt.task.run_duration{action=prepare_site,result=partial_success}#count": 1,
		"statemgmt.tasks.terminated" + prepare:                                          2,
	})

	if _, err := s.AppendMessages(ctx, created[0].ID, statestore.NewMessage{Message: "a"},
		statestore.NewMessage{Message: "b"}, statestore.NewMessage{Message: "c", Error: true}); err != nil {
		t.Fatal(err)
	}
	check("messages", map[string]float64{
		"statemgmt.messages.appended{error=false}": 2, "statemgmt.messages.appended{error=true}": 1,
	})
}

// TestTelemetryRecoveryCounts: the leader's recovery of a gone claimer
// counts its running task as requeued and its terminating task as
// terminated.
func TestTelemetryRecoveryCounts(t *testing.T) {
	ctx := ctxTimeout(t, 60*time.Second)
	s, reader, _ := newInstrumentedStore(t)
	tasks, err := s.CreateTasks(ctx, statestore.NewTask{Action: "noop"}, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.ClaimTasks(ctx, "gone", 2); err != nil || len(got) != 2 {
		t.Fatalf("claim: %v, %d", err, len(got))
	}
	if _, err := s.TerminateTask(ctx, tasks[0].ID, "ops"); err != nil { // running → terminating
		t.Fatal(err)
	}
	if _, err := s.RequeueTasksOfClaimer(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"statemgmt.tasks.requeued{action=noop}": 1, "statemgmt.tasks.terminated{action=noop}": 1}
	if diff := cmp.Diff(want, pick(metricsSnapshot(t, reader), want)); diff != "" {
		t.Fatalf("metrics differ (-want +got):\n%s", diff)
	}
}

// TestTelemetrySpans: every store call makes a span named after it
// (nested calls nest), and a failing call's span carries the error.
func TestTelemetrySpans(t *testing.T) {
	ctx := ctxTimeout(t, 60*time.Second)
	s, _, spans := newInstrumentedStore(t)
	if _, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"}); err != nil {
		t.Fatal(err)
	}
	missing := uuid.New()
	if _, err := s.GetTask(ctx, missing); !errors.Is(err, statestore.ErrNotFound) {
		t.Fatalf("GetTask of a missing task: %v, want ErrNotFound", err)
	}
	type spanView struct {
		Name, Parent, Status string
		Events               []string
	}
	stubs := spans.GetSpans()
	names := map[trace.SpanID]string{}
	for _, sp := range stubs {
		names[sp.SpanContext.SpanID()] = sp.Name
	}
	var got []spanView
	for _, sp := range stubs {
		v := spanView{Name: sp.Name, Parent: names[sp.Parent.SpanID()], Status: sp.Status.Code.String()}
		for _, e := range sp.Events {
			v.Events = append(v.Events, e.Name)
		}
		if sp.Status.Code == codes.Error && !strings.Contains(sp.Status.Description, missing.String()) {
			t.Errorf("span %s: status description %q does not name the task", sp.Name, sp.Status.Description)
		}
		got = append(got, v)
	}
	want := []spanView{
		{Name: "statestore.CreateTasks", Parent: "statestore.CreateTask", Status: "Unset"},
		{Name: "statestore.CreateTask", Status: "Unset"},
		{Name: "statestore.GetTask", Status: "Error", Events: []string{"exception"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("spans differ (-want +got):\n%s", diff)
	}
}

// TestTelemetryCloseStopsQueueGauges: a closed store's queue gauges no
// longer query its database (its pool may be closed by then).
func TestTelemetryCloseStopsQueueGauges(t *testing.T) {
	ctx := ctxTimeout(t, 60*time.Second)
	s, reader, _ := newInstrumentedStore(t)
	if _, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"}); err != nil {
		t.Fatal(err)
	}
	if got := metricsSnapshot(t, reader)["statemgmt.tasks.queued{action=noop}"]; got != 1 {
		t.Fatalf("queued before close: %v, want 1", got)
	}
	s.Close()
	if v, ok := metricsSnapshot(t, reader)["statemgmt.tasks.queued{action=noop}"]; ok {
		t.Fatalf("queue gauge still reported after Close: %v", v)
	}
}
