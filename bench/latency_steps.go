package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/drydock-go/statemgmt/statestore"
)

// latencySteps times each step from enqueue to claim, on the same store
// settings as latency's own run: the enqueuing call's commit, the queued
// notification's arrival at a LISTEN connection of the bench's own, the
// claimer's wake-up (the bench's listener wakes it) and the claim's round
// trip (ClaimTasks). Claimers here loop on a wait + ClaimTasks, the two
// halves of ClaimTasksWait, so each half can be timed. The wait wakes every
// claimer where ClaimTasksWait wakes one, so the claim round trip here has
// all claimers racing: an upper bound. Every mark is
// measured from the start of the enqueuing call.
func latencySteps(ctx context.Context, cfg *config, b *bench) error {
	n := int(cfg.rate * cfg.duration.Seconds())
	interval := time.Duration(float64(time.Second) / cfg.rate)
	params := map[string]any{"rate_per_s": cfg.rate, "tasks": n, "claimers": cfg.workers}
	url, cleanup, err := database(ctx, cfg)
	if err != nil {
		return err
	}
	defer cleanup()
	pool, err := newPool(ctx, url, int32(cfg.workers+4))
	if err != nil {
		return err
	}
	defer pool.Close()
	s := statestore.New(pool, statestore.Options{Logger: quiet})
	defer s.Close()

	// The bench's own listener: notifications arrive in commit order, and
	// one enqueuer commits one task at a time, so the i-th is task i's.
	lconn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer lconn.Close(context.Background())
	if _, err := lconn.Exec(ctx, "LISTEN statemgmt_task_queued"); err != nil {
		return err
	}
	type marks struct{ start, committed, woke, claimStart, claimed time.Time }
	var mu sync.Mutex
	byID := map[uuid.UUID]*marks{}
	order := make([]*marks, 0, n)
	var notified []time.Time
	wakeCh := make(chan struct{}) // closed and replaced on each notification
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			_, err := lconn.WaitForNotification(cctx)
			if err != nil {
				return
			}
			now := time.Now()
			mu.Lock()
			notified = append(notified, now)
			close(wakeCh) // wake every idle claimer, as the store's listener does
			wakeCh = make(chan struct{})
			mu.Unlock()
		}
	}()
	claimed := 0
	for w := 0; w < cfg.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("c%d", w)
			woke := time.Now()
			for cctx.Err() == nil {
				mu.Lock()
				wake := wakeCh // before claiming: a task queued meanwhile wakes us
				mu.Unlock()
				start := time.Now()
				tasks, err := s.ClaimTasks(cctx, name, 1)
				end := time.Now()
				if err != nil {
					return
				}
				mu.Lock()
				for _, t := range tasks {
					if m := byID[t.ID]; m != nil {
						m.woke, m.claimStart, m.claimed = woke, start, end
						claimed++
					}
				}
				mu.Unlock()
				if len(tasks) > 0 {
					continue
				}
				select { // the store's ClaimTasksWait waits like this, on its own listener
				case <-wake:
				case <-cctx.Done():
					return
				}
				woke = time.Now()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // claimers idle and listening
	tick := time.NewTicker(interval)
	for i := 0; i < n; i++ {
		<-tick.C
		id := uuid.Must(uuid.NewV7())
		m := &marks{start: time.Now()}
		mu.Lock()
		byID[id], order = m, append(order, m)
		mu.Unlock()
		if _, err := s.CreateTask(ctx, statestore.NewTask{ID: id, Action: "noop"}); err != nil {
			return err
		}
		done := time.Now()
		mu.Lock()
		m.committed = done
		mu.Unlock()
	}
	tick.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got := claimed
		mu.Unlock()
		if got >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	_ = lconn.Close(context.Background()) // ends WaitForNotification
	wg.Wait()
	if claimed < n || len(notified) != n {
		return fmt.Errorf("latency steps: %d of %d tasks claimed, %d notifications", claimed, n, len(notified))
	}
	var commit, notify, wake, claimRT, total []time.Duration
	for i, m := range order {
		commit = append(commit, m.committed.Sub(m.start))
		notify = append(notify, notified[i].Sub(m.start))
		wake = append(wake, m.woke.Sub(m.start))
		claimRT = append(claimRT, m.claimed.Sub(m.claimStart))
		total = append(total, m.claimed.Sub(m.start))
	}
	for _, step := range []struct {
		name string
		ds   []time.Duration
	}{
		{"enqueue committed (from start)", commit},
		{"notification at a listener (from start)", notify},
		{"claimer woken (from start)", wake},
		{"claim round trip", claimRT},
		{"claimed (from start)", total},
	} {
		for _, p := range []struct {
			name string
			q    float64
		}{{"p50", .5}, {"p99", .99}} {
			b.emit(record{Scenario: "latency", System: "statemgmt steps", Metric: step.name + " " + p.name,
				Value: ms(percentile(step.ds, p.q)), Unit: "ms", Params: params})
		}
	}
	return nil
}
