package drydockimport_test

import (
	"context"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/drydock-go/statemgmt/internal/drydockimport"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// BenchmarkImportMessages imports a Drydock database whose bulk is result
// messages: STATEMGMT_DRYDOCK_BENCH_MESSAGES of them (default 100 000; the
// figure in docs/drydock-import.md is 1 000 000, run once:
//
//	STATEMGMT_DRYDOCK_BENCH_MESSAGES=1000000 go test -run '^$' -bench ImportMessages -benchtime 1x ./internal/drydockimport/
//
// over 1 300 tasks in 100 three-level trees, 100 nodes' build data and boot
// actions. It reports messages/s and all rows/s of the import itself (the
// source is loaded before the timer starts; each iteration imports into a
// fresh target).
func BenchmarkImportMessages(b *testing.B) {
	n := 100_000
	if v := os.Getenv("STATEMGMT_DRYDOCK_BENCH_MESSAGES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("STATEMGMT_DRYDOCK_BENCH_MESSAGES=%q: want a positive number", v)
		}
	}
	ctx := context.Background()
	srcURL, src := newSource(b, genConfig{Seed: 1, Roots: 100, Fanout: 3, Messages: n, Nodes: 100, Collections: 5})
	c := connect(b, srcURL)
	if _, err := c.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var elapsed time.Duration
	var rows, msgs int64
	for range b.N {
		b.StopTimer()
		dstURL := statetest.New(b).URL
		srcConn, dstConn := connect(b, srcURL), connect(b, dstURL)
		b.StartTimer()
		began := time.Now()
		rep, err := drydockimport.Run(ctx, srcConn, dstConn, drydockimport.Options{Progress: benchProgress()})
		elapsed += time.Since(began)
		if err != nil {
			b.Fatal(err)
		}
		for _, t := range rep.Tables {
			rows += t.Source
			if t.Table == drydockimport.TableResultMessage {
				msgs += t.Imported
			}
		}
		b.StopTimer()
		srcConn.Close(ctx)
		dstConn.Close(ctx)
		b.StartTimer()
	}
	if msgs != int64(b.N*len(src.Messages)) {
		b.Fatalf("imported %d messages, want %d", msgs, b.N*len(src.Messages))
	}
	b.ReportMetric(float64(msgs)/elapsed.Seconds(), "messages/s")
	b.ReportMetric(float64(rows)/elapsed.Seconds(), "rows/s")
}

// benchProgress shows the import's progress lines when STATEMGMT_DRYDOCK_BENCH_PROGRESS is set.
func benchProgress() io.Writer {
	if os.Getenv("STATEMGMT_DRYDOCK_BENCH_PROGRESS") != "" {
		return os.Stderr
	}
	return nil
}
