package statestore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/drydock-go/statemgmt/gen/db"
)

// InstrumentationName is the name of the store's (and the elector's)
// OpenTelemetry meter and tracer.
const InstrumentationName = "github.com/drydock-go/statemgmt/statestore"

// durationBuckets are the histogram bounds, in seconds, of the task
// latencies: from milliseconds (a busy queue) to an hour (a long deploy).
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// queueStatsTimeout bounds the queue statistics query of one collection.
const queueStatsTimeout = 5 * time.Second

// telemetry holds a Store's instruments, created once by New and shared by
// every Store derived from it. Attribute sets are cached, so recording on
// the hot paths allocates nothing once an action has been seen.
type telemetry struct {
	tracer trace.Tracer

	created, claimed, completed, failed, requeued, terminated metric.Int64Counter
	claimLatency, runDuration                                 metric.Float64Histogram
	messages                                                  metric.Int64Counter

	reg metric.Registration // the queue gauges' callback; nil when none

	actionSets sync.Map // action -> *attrs
	resultSets sync.Map // [2]string{action, result} -> *attrs
	msgSets    [2]*attrs

	mu        sync.Mutex
	seenQueue map[[2]string]bool // {status, action} the queue gauges reported: reported as 0 once empty
}

// newTelemetry creates the store's instruments on the given providers
// (nil: the global ones) and registers the queue gauges, whose callback
// reads the queue with one query on pool. Errors creating instruments are
// returned joined; the instruments are usable regardless (the API returns
// working no-op instruments on error).
func newTelemetry(mp metric.MeterProvider, tp trace.TracerProvider, stats func(context.Context) ([]*db.QueueStatsRow, error)) (*telemetry, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	m := mp.Meter(InstrumentationName)
	t := &telemetry{tracer: tp.Tracer(InstrumentationName), seenQueue: map[[2]string]bool{}}
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	t.created = counter("statemgmt.tasks.created", "{task}", "Tasks created, by action.")
	t.claimed = counter("statemgmt.tasks.claimed", "{task}", "Tasks claimed (each claim is an attempt), by action.")
	t.completed = counter("statemgmt.tasks.completed", "{task}", "Tasks completed with a result other than failure, by action.")
	t.failed = counter("statemgmt.tasks.failed", "{task}", "Tasks completed with the result failure, by action.")
	t.requeued = counter("statemgmt.tasks.requeued", "{task}", "Claimed tasks put back in the queue (by their owner or by recovery), by action.")
	t.terminated = counter("statemgmt.tasks.terminated", "{task}", "Tasks that became terminated, by action.")
	t.messages = counter("statemgmt.messages.appended", "{message}", "Result messages appended, by whether they are flagged as errors.")
	hist := func(name, desc string) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		errs = append(errs, err)
		return h
	}
	t.claimLatency = hist("statemgmt.task.claim_latency", "Time from a task's queueing (or requeueing) to its claim, by action.")
	t.runDuration = hist("statemgmt.task.run_duration", "Time from a task's claim to its completion, by action and result.")
	t.msgSets[0] = newAttrs(attribute.Bool("error", false))
	t.msgSets[1] = newAttrs(attribute.Bool("error", true))

	gauges := map[string]struct {
		count metric.Int64ObservableGauge
		age   metric.Float64ObservableGauge
	}{}
	var observed []metric.Observable
	for _, st := range []string{"queued", "running"} {
		since := "it was (re)queued"
		if st == "running" {
			since = "its claim"
		}
		count, err := m.Int64ObservableGauge("statemgmt.tasks."+st, metric.WithUnit("{task}"),
			metric.WithDescription("Tasks "+st+" now, by action."))
		errs = append(errs, err)
		age, err := m.Float64ObservableGauge("statemgmt.tasks."+st+".oldest_age", metric.WithUnit("s"),
			metric.WithDescription("How long the longest-"+st+" task has been "+st+", since "+since+", by action."))
		errs = append(errs, err)
		gauges[st] = struct {
			count metric.Int64ObservableGauge
			age   metric.Float64ObservableGauge
		}{count, age}
		observed = append(observed, count, age)
	}
	if stats != nil {
		var err error
		t.reg, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
			ctx, cancel := context.WithTimeout(ctx, queueStatsTimeout)
			defer cancel()
			rows, err := stats(ctx)
			if err != nil {
				return mapError("read queue statistics", err)
			}
			t.mu.Lock()
			defer t.mu.Unlock()
			now := make(map[[2]string]bool, len(rows))
			for _, r := range rows {
				g, ok := gauges[r.Status]
				if !ok {
					continue
				}
				set := t.action(r.Action)
				o.ObserveInt64(g.count, r.Tasks, set.obs...)
				o.ObserveFloat64(g.age, max(0, r.OldestAgeSeconds), set.obs...)
				k := [2]string{r.Status, r.Action}
				now[k], t.seenQueue[k] = true, true
			}
			for k := range t.seenQueue {
				if !now[k] { // drained: 0, rather than a series that vanishes
					set := t.action(k[1])
					o.ObserveInt64(gauges[k[0]].count, 0, set.obs...)
					o.ObserveFloat64(gauges[k[0]].age, 0, set.obs...)
				}
			}
			return nil
		}, observed...)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return t, fmt.Errorf("statestore: create telemetry instruments: %w", err)
	}
	return t, nil
}

// close unregisters the queue gauges' callback.
func (t *telemetry) close() error {
	if t == nil || t.reg == nil {
		return nil
	}
	return t.reg.Unregister()
}

// attrs is one attribute set as the options of each kind of measurement,
// built once: passing a prebuilt slice to the variadic Add, Record and
// Observe allocates nothing.
type attrs struct {
	add []metric.AddOption
	rec []metric.RecordOption
	obs []metric.ObserveOption
}

func newAttrs(kv ...attribute.KeyValue) *attrs {
	o := metric.WithAttributeSet(attribute.NewSet(kv...))
	return &attrs{add: []metric.AddOption{o}, rec: []metric.RecordOption{o}, obs: []metric.ObserveOption{o}}
}

// action returns the cached attribute set {action}.
func (t *telemetry) action(a string) *attrs {
	if v, ok := t.actionSets.Load(a); ok {
		return v.(*attrs)
	}
	v, _ := t.actionSets.LoadOrStore(a, newAttrs(attribute.String("action", a)))
	return v.(*attrs)
}

// actionResult returns the cached attribute set {action, result}.
func (t *telemetry) actionResult(a, result string) *attrs {
	k := [2]string{a, result}
	if v, ok := t.resultSets.Load(k); ok {
		return v.(*attrs)
	}
	v, _ := t.resultSets.LoadOrStore(k, newAttrs(attribute.String("action", a), attribute.String("result", result)))
	return v.(*attrs)
}

// start begins the span of one store call; end it with finish.
func (s *Store) start(ctx context.Context, name string) (context.Context, trace.Span) {
	if s.tel == nil {
		return ctx, nil
	}
	return s.tel.tracer.Start(ctx, name)
}

// finish ends span, recording *err (when not nil) as the span's error.
func finish(span trace.Span, err *error) {
	if span == nil {
		return
	}
	if *err != nil {
		span.RecordError(*err)
		span.SetStatus(codes.Error, (*err).Error())
	}
	span.End()
}

// countByAction adds one to c for each task, in runs of the same action
// (a batch of one action is one Add).
func (t *telemetry) countByAction(ctx context.Context, c metric.Int64Counter, tasks []*Task, keep func(*Task) bool) {
	var run int64
	var action string
	for _, task := range tasks {
		if keep != nil && !keep(task) {
			continue
		}
		if run > 0 && task.Action != action {
			c.Add(ctx, run, t.action(action).add...)
			run = 0
		}
		action = task.Action
		run++
	}
	if run > 0 {
		c.Add(ctx, run, t.action(action).add...)
	}
}

// tasksCreated records new tasks.
func (s *Store) tasksCreated(ctx context.Context, tasks []*Task) {
	if s.tel != nil {
		s.tel.countByAction(ctx, s.tel.created, tasks, nil)
	}
}

// tasksClaimed records claims and, per task, the time it waited in the
// queue: from queuedSince[i] to its claim, both by the database's clock.
func (s *Store) tasksClaimed(ctx context.Context, tasks []*Task, queuedSince []time.Time) {
	if s.tel == nil {
		return
	}
	s.tel.countByAction(ctx, s.tel.claimed, tasks, nil)
	var action string
	var set *attrs
	for i, task := range tasks {
		if task.ClaimedAt == nil {
			continue
		}
		if set == nil || task.Action != action { // a batch is mostly one action: look up once
			action, set = task.Action, s.tel.action(task.Action)
		}
		s.tel.claimLatency.Record(ctx, max(0, task.ClaimedAt.Sub(queuedSince[i]).Seconds()), set.rec...)
	}
}

// tasksCompleted records tasks that just became complete: completed or
// failed by their result, and their run time from claim to completion.
func (s *Store) tasksCompleted(ctx context.Context, tasks []*Task) {
	if s.tel == nil {
		return
	}
	s.tel.countByAction(ctx, s.tel.completed, tasks, func(t *Task) bool { return t.Result.Status != ResultFailure })
	s.tel.countByAction(ctx, s.tel.failed, tasks, func(t *Task) bool { return t.Result.Status == ResultFailure })
	var action string
	var result ResultStatus
	var set *attrs
	for _, task := range tasks {
		if task.ClaimedAt == nil {
			continue
		}
		if set == nil || task.Action != action || task.Result.Status != result { // looked up once per run
			action, result = task.Action, task.Result.Status
			set = s.tel.actionResult(action, string(result))
		}
		s.tel.runDuration.Record(ctx, max(0, task.UpdatedAt.Sub(*task.ClaimedAt).Seconds()), set.rec...)
	}
}

// tasksRecovered records the tasks a requeue or termination changed:
// those now queued as requeued, those now terminated as terminated.
func (s *Store) tasksRecovered(ctx context.Context, tasks []*Task) {
	if s.tel == nil {
		return
	}
	s.tel.countByAction(ctx, s.tel.requeued, tasks, func(t *Task) bool { return t.Status == StatusQueued })
	s.tel.countByAction(ctx, s.tel.terminated, tasks, func(t *Task) bool { return t.Status == StatusTerminated })
}

// messagesAppended records appended messages.
func (s *Store) messagesAppended(ctx context.Context, msgs []NewMessage) {
	if s.tel == nil {
		return
	}
	var n [2]int64
	for _, m := range msgs {
		if m.Error {
			n[1]++
		} else {
			n[0]++
		}
	}
	for i, k := range n {
		if k > 0 {
			s.tel.messages.Add(ctx, k, s.tel.msgSets[i].add...)
		}
	}
}

// taskUpdated records what an UpdateTask changed: a task made complete by
// its claim's worker (only a running task, under a live claim named by
// u.Attempt, may become complete), or made terminated (terminated_at set
// by this very statement: it equals updated_at, both now()).
func (s *Store) taskUpdated(ctx context.Context, t *Task, u TaskUpdate) {
	if s.tel == nil || u.Status == nil {
		return
	}
	switch {
	case *u.Status == StatusComplete && u.Attempt != 0:
		s.tasksCompleted(ctx, []*Task{t})
	case *u.Status == StatusTerminated && t.TerminatedAt != nil && t.TerminatedAt.Equal(t.UpdatedAt):
		s.tel.terminated.Add(ctx, 1, s.tel.action(t.Action).add...)
	}
}
