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
	readPage, err := s.BuildData(ctx, statestore.BuildDataQuery{NodeName: "bhost", Full: true})
	if err != nil {
		t.Fatal(err)
	}
	read := readPage.Records
	if len(read) != 2 || read[0].ID != dflt.ID {
		t.Fatalf("by node = %+v, want newest (the defaulted one) first", read)
	}
	if diff := cmp.Diff(want, read[1]); diff != "" {
		t.Fatalf("select round trip (-want +got):\n%s", diff)
	}
	summaryPage, err := s.BuildData(ctx, statestore.BuildDataQuery{NodeName: "bhost"})
	if err != nil {
		t.Fatal(err)
	}
	summary := summaryPage.Records
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
			if got.Next != "" {
				t.Errorf("a short result has a next page: %q", got.Next)
			}
			if diff := cmp.Diff(tc.want, elems(got.Records)); diff != "" {
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
		{"MIME type with a leading space", func(b *statestore.NewBuildData) { b.DataFormat = " text/plain" }, "buildData.DataFormat"},
		{"MIME type wildcard", func(b *statestore.NewBuildData) { b.DataFormat = "text/*" }, "buildData.DataFormat"},
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

// More than 1 000 records and no limit: BuildData returns a page with a
// cursor, and following the cursors visits every record exactly once, in
// order, for histories (ties on collected_at included) and for latest
// queries (more node × generator pairs than a page).
func TestBuildDataPagesNeverDropRecords(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	task := uuid.New()
	// 2 500 records of one node: 1 500 share one collected_at (a bulk insert
	// without times), 1 000 have distinct times.
	var recs []statestore.NewBuildData
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for i := range 2500 {
		r := statestore.NewBuildData{NodeName: "bignode", TaskID: task, Generator: "lshw", DataFormat: "text/plain", DataElement: fmt.Sprint(i)}
		if i >= 1500 {
			r.CollectedAt = base.Add(time.Duration(i) * time.Second)
		}
		recs = append(recs, r)
	}
	// 700 nodes × 2 generators × 2 records: 1 400 latest pairs.
	for n := range 700 {
		for _, g := range []string{"dmesg", "lshw"} {
			for k := range 2 {
				recs = append(recs, statestore.NewBuildData{NodeName: fmt.Sprintf("n%04d", n), TaskID: uuid.New(), Generator: g,
					DataFormat: "text/plain", DataElement: fmt.Sprintf("n%04d/%s/%d", n, g, k), CollectedAt: base.Add(time.Duration(k) * time.Hour)})
			}
		}
	}
	if n, err := s.BulkInsertBuildData(ctx, recs); err != nil || n != int64(len(recs)) {
		t.Fatalf("bulk insert = %d, %v", n, err)
	}

	// all follows the cursors from the first page and returns the pages' sizes.
	all := func(q statestore.BuildDataQuery) ([]statestore.BuildData, []int) {
		t.Helper()
		var out []statestore.BuildData
		var sizes []int
		for {
			page, err := s.BuildData(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, page.Records...)
			sizes = append(sizes, len(page.Records))
			if page.Next == "" {
				return out, sizes
			}
			if len(sizes) > 100 {
				t.Fatal("cursors never end")
			}
			q.Cursor = page.Next
		}
	}
	for _, q := range []statestore.BuildDataQuery{{NodeName: "bignode"}, {TaskID: &task}, {NodeName: "bignode", TaskID: &task}} {
		got, sizes := all(q)
		if diff := cmp.Diff([]int{1000, 1000, 500}, sizes); diff != "" {
			t.Fatalf("%+v: page sizes (-want +got):\n%s", q, diff)
		}
		seen := map[int64]bool{}
		for i, b := range got {
			if seen[b.ID] {
				t.Fatalf("%+v: record %d twice", q, b.ID)
			}
			seen[b.ID] = true
			if i > 0 {
				prev := got[i-1]
				if b.CollectedAt.After(prev.CollectedAt) || (b.CollectedAt.Equal(prev.CollectedAt) && b.ID > prev.ID) {
					t.Fatalf("%+v: not newest first at %d", q, i)
				}
			}
		}
		if len(seen) != 2500 {
			t.Fatalf("%+v: %d distinct records, want 2500", q, len(seen))
		}
	}
	// A page size is honoured, and the last page has no cursor.
	if _, sizes := all(statestore.BuildDataQuery{NodeName: "bignode", Limit: 2499}); !cmp.Equal(sizes, []int{2499, 1}) {
		t.Fatalf("page sizes with Limit 2499: %v", sizes)
	}
	if _, sizes := all(statestore.BuildDataQuery{NodeName: "bignode", Limit: 2500}); !cmp.Equal(sizes, []int{2500}) {
		t.Fatalf("page sizes with Limit 2500: %v", sizes)
	}

	latest, sizes := all(statestore.BuildDataQuery{LatestAllNodes: true})
	if !cmp.Equal(sizes, []int{1000, 401}) { // 1 400 pairs and bignode's lshw
		t.Fatalf("latest of all nodes: page sizes %v", sizes)
	}
	pairs := map[string]bool{}
	for _, b := range latest {
		key := b.NodeName + "/" + b.Generator
		if pairs[key] {
			t.Fatalf("latest pair %s twice", key)
		}
		pairs[key] = true
		if b.NodeName != "bignode" && !b.CollectedAt.Equal(base.Add(time.Hour)) {
			t.Fatalf("latest of %s is not the newest record", key)
		}
	}
	var streamed int
	if err := s.EachBuildData(ctx, statestore.BuildDataQuery{LatestAllNodes: true, Full: true}, func(b statestore.BuildData) error {
		if want := fmt.Sprintf("%s/%s/1", b.NodeName, b.Generator); b.NodeName != "bignode" && b.DataElement != want {
			return fmt.Errorf("streamed %q, want %q", b.DataElement, want)
		}
		streamed++
		return nil
	}); err != nil || streamed != 1401 {
		t.Fatalf("streamed %d latest records, %v", streamed, err)
	}
	one, sizes := all(statestore.BuildDataQuery{NodeName: "n0001", Latest: true, Full: true, Limit: 1})
	if !cmp.Equal(sizes, []int{1, 1}) || one[0].DataElement != "n0001/dmesg/1" || one[1].DataElement != "n0001/lshw/1" {
		t.Fatalf("latest of one node a record a page: %v %+v", sizes, one)
	}

	// Cursors belong to their kind of query; sizes are bounded.
	first, err := s.BuildData(ctx, statestore.BuildDataQuery{NodeName: "bignode", Limit: 1})
	if err != nil || first.Next == "" {
		t.Fatalf("first page = %+v, %v", first, err)
	}
	firstLatest, err := s.BuildData(ctx, statestore.BuildDataQuery{NodeName: "n0001", Latest: true, Limit: 1})
	if err != nil || firstLatest.Next == "" {
		t.Fatalf("first latest page = %+v, %v", firstLatest, err)
	}
	for name, q := range map[string]statestore.BuildDataQuery{
		"history cursor on a latest query": {LatestAllNodes: true, Cursor: first.Next},
		"latest cursor on a history query": {NodeName: "bignode", Cursor: firstLatest.Next},
		"another node's latest cursor":     {NodeName: "n0002", Latest: true, Cursor: firstLatest.Next},
		"garbage cursor":                   {NodeName: "bignode", Cursor: "!!"},
		"truncated cursor":                 {NodeName: "bignode", Cursor: first.Next[:10]},
		"latest cursor with a bad length":  {LatestAllNodes: true, Cursor: "TP8"},
		"latest cursor with invalid UTF-8": {LatestAllNodes: true, Cursor: "TAH_"},
	} {
		_, err := s.BuildData(ctx, q)
		if !errors.Is(err, statestore.ErrInvalidInput) || !strings.Contains(err.Error(), "query.Cursor") {
			t.Errorf("%s: %v, want invalid query.Cursor", name, err)
		}
	}
	for _, limit := range []int{-1, 10001} {
		_, err := s.BuildData(ctx, statestore.BuildDataQuery{NodeName: "bignode", Limit: limit})
		wantInvalid(t, err, "query.Limit")
	}
}
