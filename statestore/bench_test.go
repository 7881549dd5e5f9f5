package statestore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/statestore"
)

// queueTasks creates n queued no-op tasks in batches of 1000.
func queueTasks(b *testing.B, s *statestore.Store, n int) {
	b.Helper()
	for n > 0 {
		k := min(n, 1000)
		batch := make([]statestore.NewTask, k)
		for i := range batch {
			batch[i] = statestore.NewTask{Action: "noop"}
		}
		if _, err := s.CreateTasks(context.Background(), batch...); err != nil {
			b.Fatal(err)
		}
		n -= k
	}
}

// BenchmarkClaimAndComplete: one op is one task claimed (in batches of the
// given size) and marked complete with a version-checked update.
func BenchmarkClaimAndComplete(b *testing.B) {
	for _, batch := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ctx := context.Background()
			s, _ := newStore(b, statestore.Options{})
			queueTasks(b, s, b.N)
			complete := statestore.StatusComplete
			b.ResetTimer()
			done := 0
			for done < b.N {
				got, err := s.ClaimTasks(ctx, "bench", min(batch, b.N-done))
				if err != nil {
					b.Fatal(err)
				}
				if len(got) == 0 {
					b.Fatalf("queue empty after %d of %d", done, b.N)
				}
				for _, task := range got {
					if _, err := s.UpdateTask(ctx, task.ID, task.Version, statestore.TaskUpdate{Status: &complete, Attempt: task.Attempt}); err != nil {
						b.Fatal(err)
					}
				}
				done += len(got)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}

// BenchmarkClaimAndCompleteBatch: one op is one task; claims 100 at a
// time and completes each batch with one CompleteTasks statement.
func BenchmarkClaimAndCompleteBatch(b *testing.B) {
	ctx := context.Background()
	s, _ := newStore(b, statestore.Options{})
	queueTasks(b, s, b.N)
	b.ResetTimer()
	for done := 0; done < b.N; {
		got, err := s.ClaimTasks(ctx, "bench", min(100, b.N-done))
		if err != nil || len(got) == 0 {
			b.Fatal(len(got), err)
		}
		ids := make([]statestore.Claim, len(got))
		for i, task := range got {
			ids[i] = task.Claim()
		}
		completed, err := s.CompleteTasks(ctx, statestore.ResultSuccess, ids...)
		if err != nil || len(completed) != len(ids) {
			b.Fatal(len(completed), err)
		}
		done += len(got)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkClaimOnly: one op is one task claimed, in batches of 100, from a
// queue of b.N tasks (the claim statement alone).
func BenchmarkClaimOnly(b *testing.B) {
	ctx := context.Background()
	s, _ := newStore(b, statestore.Options{})
	queueTasks(b, s, b.N)
	b.ResetTimer()
	for done := 0; done < b.N; {
		got, err := s.ClaimTasks(ctx, "bench", min(100, b.N-done))
		if err != nil || len(got) == 0 {
			b.Fatal(len(got), err)
		}
		done += len(got)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkAppend: one op is one message appended with per-task sequencing.
func BenchmarkAppend(b *testing.B) {
	b.Run("one-task/serial", func(b *testing.B) {
		s, task := appendSetup(b, 1)
		b.ResetTimer()
		for b.Loop() {
			if _, err := s.AppendMessage(context.Background(), task[0], statestore.NewMessage{Message: "progress"}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("one-task/parallel", func(b *testing.B) {
		s, task := appendSetup(b, 1)
		b.SetParallelism(4) // 4×GOMAXPROCS writers on one task's row lock
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.AppendMessage(context.Background(), task[0], statestore.NewMessage{Message: "progress"}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("1000-tasks/parallel", func(b *testing.B) {
		s, tasks := appendSetup(b, 1000)
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				if _, err := s.AppendMessage(context.Background(), tasks[i%len(tasks)], statestore.NewMessage{Message: "progress"}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("one-task/batch=100", func(b *testing.B) {
		s, task := appendSetup(b, 1)
		msgs := make([]statestore.NewMessage, 100)
		for i := range msgs {
			msgs[i] = statestore.NewMessage{Message: "progress"}
		}
		b.ResetTimer()
		for done := 0; done < b.N; done += 100 {
			if _, err := s.AppendMessages(context.Background(), task[0], msgs[:min(100, b.N-done)]...); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}

func appendSetup(b *testing.B, tasks int) (*statestore.Store, []uuid.UUID) {
	b.Helper()
	s, _ := newStore(b, statestore.Options{})
	batch := make([]statestore.NewTask, tasks)
	for i := range batch {
		batch[i] = statestore.NewTask{Action: "noop"}
	}
	created, err := s.CreateTasks(context.Background(), batch...)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]uuid.UUID, len(created))
	for i, c := range created {
		ids[i] = c.ID
	}
	return s, ids
}

// BenchmarkAppendWakeups: one op is one message appended (one commit) by
// 4×GOMAXPROCS writers over 1000 tasks, with the store's message wake-ups
// off, and on with a tailer in another store following one of the tasks.
// Compare the two msgs/s (bench scenario wakeups does it side by side).
func BenchmarkAppendWakeups(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "wakeups=off"
		if on {
			name = "wakeups=on+tailer"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			s, pool := newStore(b, statestore.Options{DisableNotify: !on, DisableListen: !on})
			tasks := make([]statestore.NewTask, 1000)
			for i := range tasks {
				tasks[i] = statestore.NewTask{Action: "noop"}
			}
			created, err := s.CreateTasks(ctx, tasks...)
			if err != nil {
				b.Fatal(err)
			}
			if on {
				tailer := statestore.New(pool, statestore.Options{})
				tctx, cancel := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() {
					defer close(done)
					_ = tailer.TailMessages(tctx, created[0].ID, 0, func(statestore.ResultMessage) error { return nil })
				}()
				b.Cleanup(func() { cancel(); <-done; tailer.Close() })
			}
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					if _, err := s.AppendMessage(ctx, created[i%len(created)].ID, statestore.NewMessage{Message: "progress"}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkAppendBatch: one op is one message, appended in one statement
// of the given size to a fresh task; µs/msg should not grow with the size.
func BenchmarkAppendBatch(b *testing.B) {
	for _, size := range []int{500, 10000} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			ctx := context.Background()
			s, _ := newStore(b, statestore.Options{DisableNotify: true, DisableListen: true})
			msgs := make([]statestore.NewMessage, size)
			for i := range msgs {
				msgs[i] = statestore.NewMessage{Message: fmt.Sprintf("progress %d", i), Context: "node01", ContextType: "node"}
			}
			b.ResetTimer()
			for done := 0; done < b.N; done += size {
				b.StopTimer()
				task, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := s.AppendMessages(ctx, task.ID, msgs[:min(size, b.N-done)]...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/msg")
		})
	}
}

// BenchmarkAppendHotTask: 8 writers append 100 messages a statement to ONE
// task; one op is one message. "grouped" lets concurrent calls share a
// statement (appendGroups), "single" sends each call's own; run both in one
// invocation to compare.
func BenchmarkAppendHotTask(b *testing.B) {
	for _, grouped := range []bool{true, false} {
		name := map[bool]string{true: "grouped", false: "single"}[grouped]
		b.Run(name, func(b *testing.B) {
			defer statestore.SetGroupAppendsForTest(statestore.SetGroupAppendsForTest(grouped))
			ctx := context.Background()
			s, _ := newStore(b, statestore.Options{DisableNotify: true})
			task, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
			if err != nil {
				b.Fatal(err)
			}
			msgs := make([]statestore.NewMessage, 100)
			for i := range msgs {
				msgs[i] = statestore.NewMessage{Message: "progress", Context: "node01", ContextType: "node"}
			}
			b.SetParallelism(4) // 8 writers on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					// One op is one message: a call covers 100 ops.
					for range 99 {
						if !pb.Next() {
							break
						}
					}
					if _, err := s.AppendMessages(ctx, task.ID, msgs...); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
