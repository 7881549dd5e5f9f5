package statestore_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/statestore"
)

// TestBreakBuildDataFarFutureRecordNeverListed: InsertBuildData accepts any
// CollectedAt that PostgreSQL stores (Go checks none), but the first page of
// every history query starts below endOfTime (9999-12-31). A record
// collected at or after that instant is stored, yet BuildData and
// EachBuildData never return it: a record silently skipped, against "Nothing
// is cut silently". Fix: reject CollectedAt outside a sane range in Go
// (ErrInvalidInput on buildData.CollectedAt), or start the first page at
// 'infinity' (the cursor's "no cursor" case without a (collected_at, id) bound).
func TestBreakBuildDataFarFutureRecordNeverListed(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	task := uuid.New()
	stored := 0
	for _, at := range []time.Time{
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 0, 0, 1, 0, time.UTC),
		time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		rec := statestore.NewBuildData{NodeName: "far", TaskID: task, CollectedAt: at,
			Generator: "lshw", DataFormat: "text/plain", DataElement: at.String()}
		_, err := s.InsertBuildData(ctx, rec)
		if errors.Is(err, statestore.ErrInvalidInput) {
			continue // refusing the time up front is a fix: nothing stored, nothing to skip
		}
		if err != nil {
			t.Fatalf("insert collected at %v: %v", at, err)
		}
		stored++
		// The COPY path too.
		if _, err := s.BulkInsertBuildData(ctx, []statestore.NewBuildData{rec}); err != nil {
			t.Fatalf("bulk insert collected at %v: %v", at, err)
		}
		stored++
	}
	for _, q := range []statestore.BuildDataQuery{{NodeName: "far"}, {TaskID: &task}, {NodeName: "far", TaskID: &task}} {
		n := 0
		if err := s.EachBuildData(ctx, q, func(statestore.BuildData) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		page, err := s.BuildData(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if n != stored || len(page.Records) != stored {
			t.Errorf("%+v: %d records stored, EachBuildData visited %d, BuildData returned %d", q, stored, n, len(page.Records))
		}
	}
}

// TestBreakBuildDataOutOfRangeTimeIsNotInvalidInput: a CollectedAt Go
// accepts but PostgreSQL's timestamptz cannot hold (after 294276 AD, before
// 4713 BC) reaches the server and comes back as a raw driver error
// (SQLSTATE 22008, datetime_field_overflow), not ErrInvalidInput naming the
// field, against "One rule, both sides" / "Bad input is rejected before the
// database is touched". Same through BulkInsertBuildData (COPY). Fix: check
// CollectedAt's range in validateBuildData, and map 22008 in mapError.
func TestBreakBuildDataOutOfRangeTimeIsNotInvalidInput(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	for _, at := range []time.Time{
		time.Date(295000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-5000, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		rec := statestore.NewBuildData{NodeName: "n1", TaskID: uuid.New(), CollectedAt: at,
			Generator: "lshw", DataFormat: "text/plain", DataElement: "x"}
		_, err := s.InsertBuildData(ctx, rec)
		if !errors.Is(err, statestore.ErrInvalidInput) {
			t.Errorf("InsertBuildData at year %d: err = %v, want ErrInvalidInput", at.Year(), err)
		}
		_, err = s.BulkInsertBuildData(ctx, []statestore.NewBuildData{rec})
		if !errors.Is(err, statestore.ErrInvalidInput) {
			t.Errorf("BulkInsertBuildData at year %d: err = %v, want ErrInvalidInput", at.Year(), err)
		}
	}
}

// TestBreakBuildDataTamperedCursorIsNotInvalidInput: README: "A cursor of
// another kind of query, of another node, or garbage is an
// *InvalidInputError on query.Cursor". A history cursor is just
// (collected_at µs, id) with no binding to the query or integrity check, and
// a well-formed but tampered one whose time PostgreSQL cannot hold is sent
// to the server and fails with a raw SQLSTATE 22008 error. Fix: range-check
// the decoded time (reject anything after endOfTime) in decodeBuildDataCursor.
func TestBreakBuildDataTamperedCursorIsNotInvalidInput(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	b := []byte{'H'}
	b = binary.BigEndian.AppendUint64(b, uint64(time.Date(295000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()))
	b = binary.BigEndian.AppendUint64(b, 5)
	_, err := s.BuildData(ctx, statestore.BuildDataQuery{NodeName: "n1", Cursor: base64.RawURLEncoding.EncodeToString(b)})
	var iie *statestore.InvalidInputError
	if !errors.As(err, &iie) || iie.Field != "query.Cursor" {
		t.Fatalf("tampered cursor: err = %v, want *InvalidInputError on query.Cursor", err)
	}
}

// TestBreakBuildDataCursorOfAnotherQueryAccepted: README promises that a
// cursor "of another kind of query, of another node" is an
// *InvalidInputError on query.Cursor. Only latest cursors are checked (and
// only against a node for Latest): a history cursor of node a is accepted
// on node b's history (which then silently starts in the middle, skipping
// b's newer records), a by-task cursor on a by-node query, and a Latest
// (one node) cursor on a LatestAllNodes query. Fix: bind the cursor to the
// query (kind byte per query kind, plus node/task, or an HMAC of the query)
// or correct the README.
func TestBreakBuildDataCursorOfAnotherQueryAccepted(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	task := uuid.New()
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	var recs []statestore.NewBuildData
	for i := range 4 {
		for _, node := range []string{"a", "b"} {
			for _, g := range []string{"g1", "g2"} {
				recs = append(recs, statestore.NewBuildData{NodeName: node, TaskID: task, Generator: g, DataFormat: "text/plain",
					DataElement: "x", CollectedAt: base.Add(time.Duration(i) * time.Minute)})
			}
		}
	}
	if _, err := s.BulkInsertBuildData(ctx, recs); err != nil {
		t.Fatal(err)
	}
	cursor := func(q statestore.BuildDataQuery) string {
		t.Helper()
		q.Limit = 1
		p, err := s.BuildData(ctx, q)
		if err != nil || p.Next == "" {
			t.Fatalf("%+v: %v, next %q", q, err, p.Next)
		}
		return p.Next
	}
	for _, c := range []struct {
		name     string
		from, to statestore.BuildDataQuery
	}{
		{"node a history on node b", statestore.BuildDataQuery{NodeName: "a"}, statestore.BuildDataQuery{NodeName: "b"}},
		{"by task on by node", statestore.BuildDataQuery{TaskID: &task}, statestore.BuildDataQuery{NodeName: "b"}},
		{"by node on by node and task", statestore.BuildDataQuery{NodeName: "a"}, statestore.BuildDataQuery{NodeName: "a", TaskID: &task}},
		{"latest of node a on latest of all nodes", statestore.BuildDataQuery{NodeName: "a", Latest: true}, statestore.BuildDataQuery{LatestAllNodes: true}},
	} {
		to := c.to
		to.Cursor = cursor(c.from)
		_, err := s.BuildData(ctx, to)
		var iie *statestore.InvalidInputError
		if !errors.As(err, &iie) || iie.Field != "query.Cursor" {
			t.Errorf("%s: err = %v, want *InvalidInputError on query.Cursor", c.name, err)
		}
	}
}
