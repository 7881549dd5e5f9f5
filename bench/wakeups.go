package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/statestore"
)

// oldMessageTrigger is migration 005's wake-up: pg_notify from the appending
// transaction itself. The wakeups scenario puts it back for one variant to
// show what it cost.
const oldMessageTrigger = `
CREATE FUNCTION bench_notify_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('statemgmt_message', task_id::text) FROM (SELECT DISTINCT task_id FROM new_rows) AS appended;
    RETURN NULL;
END;
$$;
CREATE TRIGGER bench_result_message_notify AFTER INSERT ON result_message REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bench_notify_message();`

const dropOldMessageTrigger = `DROP TRIGGER bench_result_message_notify ON result_message; DROP FUNCTION bench_notify_message();`

// wakeups measures single-message appends (one commit each, every writer on
// its own task) with the store's wake-ups on and a tailer following one of
// the tasks, against the same with wake-ups off; and, for the record, with
// migration 005's notifying trigger. Variants alternate, three times each,
// and each reports its median.
func wakeups(ctx context.Context, cfg *config, b *bench) error {
	url, cleanup, err := database(ctx, cfg)
	if err != nil {
		return err
	}
	defer cleanup()
	writers := 2 * cfg.workers
	pool, err := newPool(ctx, url, int32(writers+4))
	if err != nil {
		return err
	}
	defer pool.Close()
	setup := statestore.New(pool, statestore.Options{Logger: quiet, DisableListen: true, DisableNotify: true})
	defer setup.Close()
	nts := make([]statestore.NewTask, writers)
	for i := range nts {
		nts[i] = statestore.NewTask{Action: "noop"}
	}
	tasks, err := setup.CreateTasks(ctx, nts...)
	if err != nil {
		return err
	}
	period := cfg.duration / 3
	msg := statestore.NewMessage{Message: "progress", Context: "node01", ContextType: "node"}

	// run appends for period from every writer through s and returns
	// messages per second.
	run := func(label string, s *statestore.Store) (float64, error) {
		var n atomic.Int64
		defer progress("wakeups "+label, func() string { return fmt.Sprint(n.Load()) })()
		rctx, cancel := context.WithTimeout(ctx, period)
		defer cancel()
		var wg sync.WaitGroup
		var firstErr atomic.Value
		start := time.Now()
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for rctx.Err() == nil {
					if _, err := s.AppendMessage(rctx, tasks[w].ID, msg); err != nil {
						if rctx.Err() == nil {
							firstErr.CompareAndSwap(nil, err)
						}
						return
					}
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		if err, _ := firstErr.Load().(error); err != nil {
			return 0, fmt.Errorf("%s: %w", label, err)
		}
		return float64(n.Load()) / time.Since(start).Seconds(), nil
	}

	off := statestore.New(pool, statestore.Options{Logger: quiet, DisableListen: true, DisableNotify: true})
	defer off.Close()
	on := statestore.New(pool, statestore.Options{Logger: quiet})
	defer on.Close()
	// The tailer is another process's store: its own pool and listener.
	tpool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer tpool.Close()
	tailer := statestore.New(tpool, statestore.Options{Logger: quiet})
	defer tailer.Close()
	tctx, stopTail := context.WithCancel(ctx)
	var tailed atomic.Int64
	tailDone := make(chan struct{})
	go func() {
		defer close(tailDone)
		err := tailer.TailMessages(tctx, tasks[0].ID, 0, func(statestore.ResultMessage) error { tailed.Add(1); return nil })
		if err != nil && !errors.Is(err, context.Canceled) {
			// A tailer that died would make the "on" variant look cheaper than it is.
			fmt.Fprintf(os.Stderr, "bench wakeups: tailer stopped early: %v\n", err)
		}
	}()
	defer func() { stopTail(); <-tailDone }()
	time.Sleep(300 * time.Millisecond) // the tailer is listening

	var offs, ons, olds []float64
	const rounds = 3
	for range rounds {
		v, err := run("off", off)
		if err != nil {
			return err
		}
		offs = append(offs, v)
		if v, err = run("on", on); err != nil {
			return err
		}
		ons = append(ons, v)
		if _, err := pool.Exec(ctx, oldMessageTrigger); err != nil {
			return err
		}
		v, err = run("old trigger", off)
		if _, derr := pool.Exec(context.WithoutCancel(ctx), dropOldMessageTrigger); derr != nil && err == nil {
			err = derr
		}
		if err != nil {
			return err
		}
		olds = append(olds, v)
	}
	params := map[string]any{"writers": writers, "period_s": period.Seconds(), "runs": rounds, "tailed": tailed.Load()}
	b.emit(record{Scenario: "wakeups", System: "statemgmt", Metric: "appends, wake-ups on + tailer", Value: median(ons), Unit: "messages/s", Params: params})
	b.emit(record{Scenario: "wakeups", System: "baseline", Metric: "appends, wake-ups off", Value: median(offs), Unit: "messages/s", Params: params})
	b.emit(record{Scenario: "wakeups", System: "old", Metric: "appends, 005 trigger", Value: median(olds), Unit: "messages/s", Params: params})
	b.ratio("wakeups", "wake-ups on vs off", median(ons), median(offs), "higher is better; target ≥ 0.9")
	b.ratio("wakeups", "005 trigger vs off", median(olds), median(offs), "the old design's cost, for the record")
	return nil
}
