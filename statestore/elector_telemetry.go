package statestore

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Why a leader's heartbeat says it no longer leads.
var (
	errLockLost   = errors.New("this session no longer holds the leadership lock")
	errSuperseded = errors.New("is no longer current")
)

// The reasons of statemgmt.leader.losses.
const (
	lossHeartbeatFailed = "heartbeat_failed" // no answer, or an error: leadership not assured
	lossLockLost        = "lock_lost"        // the session no longer holds the advisory lock
	lossSuperseded      = "superseded"       // a newer term was recorded
)

// lossReason classifies a heartbeat's failure.
func lossReason(err error) string {
	switch {
	case errors.Is(err, errLockLost):
		return lossLockLost
	case errors.Is(err, errSuperseded):
		return lossSuperseded
	}
	return lossHeartbeatFailed
}

// electorTelemetry holds an elector's instruments and cached attribute sets.
type electorTelemetry struct {
	elections, losses, resignations metric.Int64Counter
	instance                        metric.MeasurementOption
	lossSets                        map[string]metric.MeasurementOption
	reg                             metric.Registration
}

// newElectorTelemetry creates the leadership instruments; leading reports
// the elector's state for the gauges. Instruments are usable even when an
// error is returned.
func newElectorTelemetry(mp metric.MeterProvider, identity, hostname string, leading func() (int64, bool)) (*electorTelemetry, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(InstrumentationName)
	inst := attribute.String("instance", identity)
	t := &electorTelemetry{
		instance: metric.WithAttributeSet(attribute.NewSet(inst)),
		lossSets: map[string]metric.MeasurementOption{},
	}
	for _, r := range []string{lossHeartbeatFailed, lossLockLost, lossSuperseded} {
		t.lossSets[r] = metric.WithAttributeSet(attribute.NewSet(inst, attribute.String("reason", r)))
	}
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	t.elections = counter("statemgmt.leader.elections", "{election}", "Terms this instance won.")
	t.losses = counter("statemgmt.leader.losses", "{loss}", "Terms this instance lost without resigning, by reason.")
	t.resignations = counter("statemgmt.leader.resignations", "{resignation}", "Terms this instance gave up.")
	term, err := m.Int64ObservableGauge("statemgmt.leader.term", metric.WithUnit("{term}"),
		metric.WithDescription("The term this instance leads; 0 while it does not lead."))
	errs = append(errs, err)
	isLeader, err := m.Int64ObservableGauge("statemgmt.leader.is_leader",
		metric.WithDescription("1 while this instance leads, else 0, by instance and host."))
	errs = append(errs, err)
	hostSet := metric.WithAttributeSet(attribute.NewSet(inst, attribute.String("host", hostname)))
	t.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		cur, ok := leading()
		var v int64
		if ok {
			v = 1
		}
		o.ObserveInt64(term, cur, t.instance)
		o.ObserveInt64(isLeader, v, hostSet)
		return nil
	}, term, isLeader)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return t, fmt.Errorf("statestore: create leadership instruments: %w", err)
	}
	return t, nil
}

func (t *electorTelemetry) elected(ctx context.Context)  { t.elections.Add(ctx, 1, t.instance) }
func (t *electorTelemetry) resigned(ctx context.Context) { t.resignations.Add(ctx, 1, t.instance) }
func (t *electorTelemetry) lost(ctx context.Context, err error) {
	t.losses.Add(ctx, 1, t.lossSets[lossReason(err)])
}

// close unregisters the gauges' callback (once; later calls do nothing).
func (t *electorTelemetry) close() error {
	if t == nil || t.reg == nil {
		return nil
	}
	reg := t.reg
	t.reg = nil
	return reg.Unregister()
}
