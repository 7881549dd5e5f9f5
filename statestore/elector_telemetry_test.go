package statestore_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/drydock-go/statemgmt/statestore"
)

// TestElectorTelemetry: elections, resignations and losses by reason are
// counted, and the term / is-leader gauges follow the elector's state.
func TestElectorTelemetry(t *testing.T) {
	ctx := ctxTimeout(t, time.Minute)
	e := newElection(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	id := uuid.New()
	el, err := statestore.NewElector(statestore.ElectorConfig{ConnString: e.url, LockKey: 2001, Identity: id,
		Hostname: "host-a", Logger: quietLogger, MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(el.Close)
	inst := "{instance=" + id.String() + "}"
	lossKey := func(reason string) string {
		return "statemgmt.leader.losses{instance=" + id.String() + ",reason=" + reason + "}"
	}
	isLeader := "statemgmt.leader.is_leader{host=host-a,instance=" + id.String() + "}"
	check := func(step string, want map[string]float64) {
		t.Helper()
		if diff := cmp.Diff(want, pick(metricsSnapshot(t, reader), want)); diff != "" {
			t.Fatalf("%s: metrics differ (-want +got):\n%s", step, diff)
		}
	}
	check("before", map[string]float64{isLeader: 0, "statemgmt.leader.term" + inst: 0})

	term, ok, err := el.Claim(ctx)
	if err != nil || !ok {
		t.Fatalf("Claim = %d, %v, %v", term, ok, err)
	}
	check("elected", map[string]float64{isLeader: 1, "statemgmt.leader.term" + inst: float64(term),
		"statemgmt.leader.elections" + inst: 1})
	if err := el.Abdicate(ctx, term); err != nil {
		t.Fatal(err)
	}
	check("resigned", map[string]float64{isLeader: 0, "statemgmt.leader.term" + inst: 0,
		"statemgmt.leader.resignations" + inst: 1})

	// Lost: the session is ended under the leader.
	if term, ok, err = el.Claim(ctx); err != nil || !ok {
		t.Fatalf("Claim = %d, %v, %v", term, ok, err)
	}
	pid := int32(el.BackendPID())
	if _, err := e.pool.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	// The lock is released when the backend has exited, not when
	// pg_terminate_backend returns: wait for that before claiming again.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var alive bool
		if err := e.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)", pid).Scan(&alive); err != nil {
			t.Fatal(err)
		}
		if !alive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend %d still alive 30 s after pg_terminate_backend", pid)
		}
	}
	if err := el.Maintain(ctx, term); err == nil {
		t.Fatal("Maintain succeeded on a terminated session")
	}
	check("lost: heartbeat failed", map[string]float64{isLeader: 0, "statemgmt.leader.elections" + inst: 2,
		lossKey("heartbeat_failed"): 1})

	// Superseded: a newer term is recorded (under another lock key, as a
	// split brain across a failover would).
	if term, ok, err = el.Claim(ctx); err != nil || !ok {
		t.Fatalf("Claim = %d, %v, %v", term, ok, err)
	}
	other := newClaimElector(t, e, 2002)
	if _, ok, err := other.Claim(ctx); err != nil || !ok {
		t.Fatalf("other.Claim: %v, %v", ok, err)
	}
	if err := el.Maintain(ctx, term); err == nil {
		t.Fatal("Maintain succeeded for a superseded term")
	}
	check("lost: superseded", map[string]float64{lossKey("heartbeat_failed"): 1, lossKey("superseded"): 1,
		"statemgmt.leader.elections" + inst: 3})

	el.Close()
	if v, ok := metricsSnapshot(t, reader)[isLeader]; ok {
		t.Fatalf("is_leader still reported after Close: %v", v)
	}
}
