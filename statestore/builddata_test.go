package statestore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/statestore"
)

// Port of the original's build data scenarios.
func TestBuildDataInsertAndSelect(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	task := uuid.New()
	at := time.Date(2026, 3, 4, 5, 6, 7, 8000, time.UTC)
	with := statestore.NewBuildData{NodeName: "bhost", TaskID: task, CollectedAt: at, Generator: "lshw",
		DataFormat: "text/plain", DataElement: "Hello World!"}
	got, err := s.InsertBuildData(ctx, with)
	if err != nil {
		t.Fatal(err)
	}
	want := statestore.BuildData{ID: got.ID, NodeName: "bhost", TaskID: task, CollectedAt: at, Generator: "lshw",
		DataFormat: "text/plain", DataElement: "Hello World!", DataSize: 12}
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Fatalf("InsertBuildData (-want +got):\n%s", diff)
	}
	without := with
	without.CollectedAt = time.Time{}
	dflt, err := s.InsertBuildData(ctx, without)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(dflt.CollectedAt) > time.Minute || dflt.CollectedAt.Location() != time.UTC {
		t.Fatalf("default collected_at = %v", dflt.CollectedAt)
	}
	read, err := s.BuildData(ctx, statestore.BuildDataQuery{NodeName: "bhost", Full: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(read) != 2 || read[0].ID != dflt.ID {
		t.Fatalf("by node = %+v, want newest (the defaulted one) first", read)
	}
	if diff := cmp.Diff(want, read[1]); diff != "" {
		t.Fatalf("select round trip (-want +got):\n%s", diff)
	}
	summary, err := s.BuildData(ctx, statestore.BuildDataQuery{NodeName: "bhost"})
	if err != nil {
		t.Fatal(err)
	}
	if summary[1].DataElement != "" || summary[1].DataSize != 12 {
		t.Fatalf("summary = %+v, want no element and its size", summary[1])
	}
}

func TestBuildDataLatestAndFilters(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	t1, t2 := uuid.New(), uuid.New()
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var recs []statestore.NewBuildData
	for i, r := range []struct {
		node, gen string
		task      uuid.UUID
	}{
		{"n1", "lshw", t1}, {"n1", "lshw", t2}, {"n1", "dmesg", t1}, {"n2", "lshw", t1}, {"n2", "lshw", t2}, {"n2", "dmesg", t2},
	} {
		recs = append(recs, statestore.NewBuildData{NodeName: r.node, TaskID: r.task, Generator: r.gen,
			CollectedAt: base.Add(time.Duration(i) * time.Hour), DataFormat: "text/plain", DataElement: fmt.Sprint(i)})
	}
	if n, err := s.BulkInsertBuildData(ctx, recs); err != nil || n != 6 {
		t.Fatalf("bulk insert = %d, %v", n, err)
	}
	elems := func(bds []statestore.BuildData) []string {
		out := []string{}
		for _, b := range bds {
			out = append(out, b.NodeName+"/"+b.Generator+"/"+b.DataElement)
		}
		return out
	}
	tests := []struct {
		name string
		q    statestore.BuildDataQuery
		want []string
	}{
		{"by node", statestore.BuildDataQuery{NodeName: "n1", Full: true}, []string{"n1/dmesg/2", "n1/lshw/1", "n1/lshw/0"}},
		{"by task", statestore.BuildDataQuery{TaskID: &t2, Full: true}, []string{"n2/dmesg/5", "n2/lshw/4", "n1/lshw/1"}},
		{"by node and task applies both", statestore.BuildDataQuery{NodeName: "n1", TaskID: &t2, Full: true}, []string{"n1/lshw/1"}},
		{"latest per generator of a node", statestore.BuildDataQuery{NodeName: "n1", Latest: true, Full: true}, []string{"n1/dmesg/2", "n1/lshw/1"}},
		{"latest per generator of all nodes", statestore.BuildDataQuery{LatestAllNodes: true, Full: true},
			[]string{"n1/dmesg/2", "n1/lshw/1", "n2/dmesg/5", "n2/lshw/4"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.BuildData(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, elems(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildDataBulkAndLargeElement(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	task := uuid.New()
	recs := make([]statestore.NewBuildData, 10000)
	for i := range recs {
		recs[i] = statestore.NewBuildData{NodeName: fmt.Sprintf("node%03d", i%200), TaskID: task,
			Generator: "lshw", DataFormat: "application/json", DataElement: fmt.Sprintf(`{"n":%d}`, i)}
	}
	n, err := s.BulkInsertBuildData(ctx, recs)
	if err != nil || n != 10000 {
		t.Fatalf("bulk = %d, %v", n, err)
	}
	if c := count(t, pool, "SELECT count(*) FROM build_data WHERE task_id = $1", task); c != 10000 {
		t.Fatalf("%d rows stored", c)
	}

	// 5 MB element round trip, and streaming reads it back page by page.
	big := strings.Repeat("lshw output line with some text 0123456789\n", 5<<20/43)
	bd, err := s.InsertBuildData(ctx, statestore.NewBuildData{NodeName: "bignode", TaskID: task, Generator: "lshw",
		DataFormat: "text/plain; charset=utf-8", DataElement: big})
	if err != nil {
		t.Fatal(err)
	}
	var streamed []statestore.BuildData
	if err := s.EachBuildData(ctx, statestore.BuildDataQuery{NodeName: "bignode", Full: true}, func(b statestore.BuildData) error {
		streamed = append(streamed, b)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(streamed) != 1 || streamed[0].DataElement != big || streamed[0].ID != bd.ID || streamed[0].DataSize != int64(len(big)) {
		t.Fatalf("5 MB element did not round-trip (%d records)", len(streamed))
	}
	// Streaming all 10 000 of the task's records visits each once, newest first.
	seen := map[int64]bool{}
	var last time.Time
	err = s.EachBuildData(ctx, statestore.BuildDataQuery{TaskID: &task}, func(b statestore.BuildData) error {
		if seen[b.ID] {
			return fmt.Errorf("record %d twice", b.ID)
		}
		if !last.IsZero() && b.CollectedAt.After(last) {
			return errors.New("not newest first")
		}
		seen[b.ID], last = true, b.CollectedAt
		return nil
	})
	if err != nil || len(seen) != 10001 {
		t.Fatalf("streamed %d records, %v", len(seen), err)
	}
}

func TestBuildDataBadInputWritesNothing(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	good := func() statestore.NewBuildData {
		return statestore.NewBuildData{NodeName: "n1", TaskID: uuid.New(), Generator: "lshw", DataFormat: "text/plain", DataElement: "x"}
	}
	tests := []struct {
		name  string
		edit  func(*statestore.NewBuildData)
		field string
	}{
		{"empty node name", func(b *statestore.NewBuildData) { b.NodeName = "" }, "buildData.NodeName"},
		{"over-long node name", func(b *statestore.NewBuildData) { b.NodeName = strings.Repeat("n", 281) }, "buildData.NodeName"},
		{"node name with space", func(b *statestore.NewBuildData) { b.NodeName = "n 1" }, "buildData.NodeName"},
		{"nil task", func(b *statestore.NewBuildData) { b.TaskID = uuid.Nil }, "buildData.TaskID"},
		{"empty generator", func(b *statestore.NewBuildData) { b.Generator = "" }, "buildData.Generator"},
		{"over-long generator", func(b *statestore.NewBuildData) { b.Generator = strings.Repeat("g", 257) }, "buildData.Generator"},
		{"MIME type without subtype", func(b *statestore.NewBuildData) { b.DataFormat = "json" }, "buildData.DataFormat"},
		{"MIME type garbage", func(b *statestore.NewBuildData) { b.DataFormat = "text/plain; ;;=" }, "buildData.DataFormat"},
		{"NUL in element", func(b *statestore.NewBuildData) { b.DataElement = "a\x00b" }, "buildData.DataElement"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := good()
			tc.edit(&b)
			_, err := s.InsertBuildData(ctx, b)
			wantInvalid(t, err, tc.field)
		})
	}
	bad := []statestore.NewBuildData{good(), good()}
	bad[1].DataFormat = "nope"
	_, err := s.BulkInsertBuildData(ctx, bad)
	wantInvalid(t, err, "records[1].DataFormat")
	if n := count(t, pool, "SELECT count(*) FROM build_data"); n != 0 {
		t.Fatalf("%d rows written by bad input", n)
	}
	_, err = s.BuildData(ctx, statestore.BuildDataQuery{})
	wantInvalid(t, err, "query")
}

func TestBuildDataSurvivesTaskRetention(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "deploy_nodes"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.InsertBuildData(ctx, statestore.NewBuildData{NodeName: "n1", TaskID: task.ID, Generator: "lshw",
		DataFormat: "text/plain", DataElement: "x"}); err != nil {
		t.Fatal(err)
	}
	res, err := s.DeleteTasksCreatedBefore(ctx, time.Now().Add(time.Hour), statestore.RetentionOptions{IncludeActive: true})
	if err != nil || res.Tasks != 1 {
		t.Fatalf("retention = %+v, %v", res, err)
	}
	if n := count(t, pool, "SELECT count(*) FROM build_data"); n != 1 {
		t.Fatal("build data went with the task")
	}
}

// BenchmarkBulkInsertBuildData: one op is one batch of 1000 records of 4 KiB.
func BenchmarkBulkInsertBuildData(b *testing.B) {
	ctx := context.Background()
	s, _ := newStore(b, statestore.Options{})
	elem := strings.Repeat("x", 4096)
	recs := make([]statestore.NewBuildData, 1000)
	for i := range recs {
		recs[i] = statestore.NewBuildData{NodeName: fmt.Sprintf("node%03d", i%100), TaskID: uuid.New(),
			Generator: "lshw", DataFormat: "text/plain", DataElement: elem, CollectedAt: time.Now()}
	}
	b.SetBytes(int64(len(recs) * len(elem)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.BulkInsertBuildData(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
}
