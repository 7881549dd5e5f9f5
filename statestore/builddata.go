package statestore

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"regexp"
	"time"

	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/gen/db"
)

// MaxDataElementBytes is the largest build-data element stored (64 MiB).
const MaxDataElementBytes = 64 << 20

// BuildData is one record of data collected from a node.
type BuildData struct {
	// ID numbers the record, assigned by the database.
	ID int64 `json:"id"`
	// NodeName is the node the data was collected from.
	NodeName string `json:"node_name"`
	// TaskID is the task it was collected for (no foreign key: the record
	// outlives the task).
	TaskID uuid.UUID `json:"task_id"`
	// CollectedAt is when it was collected.
	CollectedAt time.Time `json:"collected_at"`
	Generator   string    `json:"generator"`   // what produced it, e.g. "lshw"
	DataFormat  string    `json:"data_format"` // a MIME type, e.g. "application/json"
	// DataElement is the data itself; empty in a summary (Full false).
	DataElement string `json:"data_element,omitempty"`
	// DataSize is the element's size in bytes, also in summaries.
	DataSize int64 `json:"data_size"`
}

// NewBuildData is a record to insert.
type NewBuildData struct {
	// NodeName is the node: letters, digits, '.', '_' and '-', starting with
	// a letter or digit, at most 280 characters.
	NodeName string
	// TaskID is the task collecting the data; not the nil UUID.
	TaskID uuid.UUID
	// CollectedAt defaults to the database's clock when zero.
	CollectedAt time.Time
	// Generator names what produced the data, e.g. "lshw"; required.
	Generator string
	// DataFormat is the data's MIME type, e.g. "application/json"; required.
	DataFormat string
	// DataElement is the data itself, at most MaxDataElementBytes.
	DataElement string
}

// InsertBuildData stores one record and returns it.
func (s *Store) InsertBuildData(ctx context.Context, bd NewBuildData) (_ *BuildData, err error) {
	ctx, span := s.start(ctx, "statestore.InsertBuildData")
	defer finish(span, &err)
	if err := validateBuildData(bd, func(f string) string { return "buildData." + f }); err != nil {
		return nil, err
	}
	p := db.InsertBuildDataParams{NodeName: bd.NodeName, TaskID: bd.TaskID, Generator: bd.Generator,
		DataFormat: bd.DataFormat, DataElement: bd.DataElement}
	if !bd.CollectedAt.IsZero() {
		p.CollectedAt = &bd.CollectedAt
	}
	r, err := s.q.InsertBuildData(ctx, s.conn, p)
	if err != nil {
		return nil, mapError("insert build data", err)
	}
	return &BuildData{ID: r.BuildDataID, NodeName: r.NodeName, TaskID: r.TaskID, CollectedAt: r.CollectedAt.UTC(),
		Generator: r.Generator, DataFormat: r.DataFormat, DataElement: r.DataElement,
		DataSize: int64(len(r.DataElement))}, nil
}

// BulkInsertBuildData loads many records with PostgreSQL COPY (one round
// trip for the lot) and returns how many were stored. Records without a
// collection time get the database's clock, read once for the batch. All
// records are validated first; one bad record rejects the batch and nothing
// is written.
func (s *Store) BulkInsertBuildData(ctx context.Context, records []NewBuildData) (_ int64, err error) {
	ctx, span := s.start(ctx, "statestore.BulkInsertBuildData")
	defer finish(span, &err)
	if len(records) == 0 {
		return 0, nil
	}
	rows := make([]db.CopyBuildDataParams, len(records))
	var now time.Time
	for i, bd := range records {
		if err := validateBuildData(bd, func(f string) string { return fmt.Sprintf("records[%d].%s", i, f) }); err != nil {
			return 0, err
		}
		if bd.CollectedAt.IsZero() {
			if now.IsZero() {
				var err error
				if now, err = s.Now(ctx); err != nil {
					return 0, err
				}
			}
			bd.CollectedAt = now
		}
		rows[i] = db.CopyBuildDataParams{NodeName: bd.NodeName, TaskID: bd.TaskID, CollectedAt: bd.CollectedAt,
			Generator: bd.Generator, DataFormat: bd.DataFormat, DataElement: bd.DataElement}
	}
	n, err := s.q.CopyBuildData(ctx, s.conn, rows)
	if err != nil {
		return 0, mapError("bulk insert build data", err)
	}
	return n, nil
}

// BuildDataQuery selects build data. NodeName, TaskID or both must be set
// (both: records of that node for that task), unless LatestAllNodes.
type BuildDataQuery struct {
	// NodeName selects the records of one node.
	NodeName string
	// TaskID selects the records collected for one task.
	TaskID *uuid.UUID
	// Latest returns only the newest record of each generator (of NodeName).
	Latest bool
	// LatestAllNodes returns the newest record of each generator of every node.
	LatestAllNodes bool
	// Full includes the data elements; otherwise a summary (the original's
	// verbosity 1) with DataElement empty and DataSize set.
	Full bool
	// Limit is the page size of BuildData: default 1000, at most 10000.
	// EachBuildData reads pages of 100 and ignores it.
	Limit int
	// Cursor continues after a previous page (BuildDataPage.Next) of the
	// same query; empty starts at the beginning.
	Cursor string
}

// BuildDataPage is one page of BuildData.
type BuildDataPage struct {
	// Records are the page's records, in BuildData's order.
	Records []BuildData
	// Next is the cursor of the following page; empty on the last page.
	// A page is never cut silently: whenever more records follow, Next is set.
	Next string
}

// BuildData returns one page of the selected records, newest first (latest
// queries: ordered by node and generator). Pages are keyset-paginated, so
// they stay stable while records are added; pass page.Next as q.Cursor for
// the following page.
func (s *Store) BuildData(ctx context.Context, q BuildDataQuery) (_ *BuildDataPage, err error) {
	ctx, span := s.start(ctx, "statestore.BuildData")
	defer finish(span, &err)
	limit := q.Limit
	switch {
	case limit == 0:
		limit = 1000
	case limit < 0 || limit > 10000:
		return nil, invalid("query.Limit", "must be between 1 and 10000, got %d", limit)
	}
	return s.buildDataPage(ctx, q, limit)
}

// EachBuildData calls fn for every selected record, in BuildData's order,
// reading a page of 100 records at a time, so a long history of large
// elements is never held in memory at once. It starts after q.Cursor when
// set. fn returning an error stops the iteration and EachBuildData returns
// that error.
func (s *Store) EachBuildData(ctx context.Context, q BuildDataQuery, fn func(BuildData) error) (err error) {
	ctx, span := s.start(ctx, "statestore.EachBuildData")
	defer finish(span, &err)
	for {
		page, err := s.buildDataPage(ctx, q, 100)
		if err != nil {
			return err
		}
		for _, bd := range page.Records {
			if err := fn(bd); err != nil {
				return err
			}
		}
		if page.Next == "" {
			return nil
		}
		q.Cursor = page.Next
	}
}

// buildDataPage reads up to limit records after q.Cursor, asking for one
// more to learn whether a next page exists.
func (s *Store) buildDataPage(ctx context.Context, q BuildDataQuery, limit int) (*BuildDataPage, error) {
	if err := validateBuildDataQuery(q); err != nil {
		return nil, err
	}
	cur, err := decodeBuildDataCursor(q)
	if err != nil {
		return nil, err
	}
	rows, err := s.buildDataRows(ctx, q, cur, int32(limit+1))
	if err != nil {
		return nil, err
	}
	page := &BuildDataPage{Records: make([]BuildData, 0, min(len(rows), limit))}
	if len(rows) > limit {
		rows = rows[:limit]
		last := rows[limit-1]
		page.Next = encodeBuildDataCursor(q, buildDataCursor{at: last.CollectedAt, id: last.BuildDataID,
			node: last.NodeName, generator: last.Generator})
	}
	for i := range rows {
		page.Records = append(page.Records, buildDataFromRow(&rows[i]))
	}
	return page, nil
}

func (s *Store) buildDataRows(ctx context.Context, q BuildDataQuery, c buildDataCursor, maxRows int32) ([]db.ListBuildDataByNodeRow, error) {
	var out []db.ListBuildDataByNodeRow
	switch {
	case q.LatestAllNodes:
		rs, err := s.q.LatestBuildDataOfAllNodes(ctx, s.conn, db.LatestBuildDataOfAllNodesParams{
			IncludeData: q.Full, CursorNodeName: c.node, CursorGenerator: c.generator, MaxRows: maxRows})
		if err != nil {
			return nil, mapError("read latest build data", err)
		}
		for _, r := range rs {
			out = append(out, db.ListBuildDataByNodeRow(*r))
		}
	case q.Latest:
		rs, err := s.q.LatestBuildDataOfNode(ctx, s.conn, db.LatestBuildDataOfNodeParams{
			IncludeData: q.Full, NodeName: q.NodeName, CursorGenerator: c.generator, MaxRows: maxRows})
		if err != nil {
			return nil, mapError("read latest build data of "+q.NodeName, err)
		}
		for _, r := range rs {
			out = append(out, db.ListBuildDataByNodeRow(*r))
		}
	case q.NodeName != "" && q.TaskID != nil:
		rs, err := s.q.ListBuildDataByNodeAndTask(ctx, s.conn, db.ListBuildDataByNodeAndTaskParams{
			IncludeData: q.Full, NodeName: q.NodeName, TaskID: *q.TaskID,
			CursorCollectedAt: c.at, CursorID: c.id, MaxRows: maxRows})
		if err != nil {
			return nil, mapError("read build data", err)
		}
		for _, r := range rs {
			out = append(out, db.ListBuildDataByNodeRow(*r))
		}
	case q.TaskID != nil:
		rs, err := s.q.ListBuildDataByTask(ctx, s.conn, db.ListBuildDataByTaskParams{
			IncludeData: q.Full, TaskID: *q.TaskID, CursorCollectedAt: c.at, CursorID: c.id, MaxRows: maxRows})
		if err != nil {
			return nil, mapError("read build data", err)
		}
		for _, r := range rs {
			out = append(out, db.ListBuildDataByNodeRow(*r))
		}
	default:
		rs, err := s.q.ListBuildDataByNode(ctx, s.conn, db.ListBuildDataByNodeParams{
			IncludeData: q.Full, NodeName: q.NodeName, CursorCollectedAt: c.at, CursorID: c.id, MaxRows: maxRows})
		if err != nil {
			return nil, mapError("read build data", err)
		}
		for _, r := range rs {
			out = append(out, *r)
		}
	}
	return out, nil
}

// buildDataCursor is where a page ends: (collected_at, id) for histories,
// (node, generator) for latest queries.
type buildDataCursor struct {
	at        time.Time
	id        int64
	node      string
	generator string
}

// Cursor kinds, the first byte of a decoded cursor: one per kind of query,
// so that a cursor is accepted only by the kind of query that made it.
const (
	cursorByNode        byte = 'H'
	cursorByTask        byte = 'T'
	cursorByNodeAndTask byte = 'B'
	cursorLatestOfNode  byte = 'l'
	cursorLatestAll     byte = 'L'
)

// cursorKind is the kind of cursor query q takes.
func cursorKind(q BuildDataQuery) byte {
	switch {
	case q.LatestAllNodes:
		return cursorLatestAll
	case q.Latest:
		return cursorLatestOfNode
	case q.NodeName != "" && q.TaskID != nil:
		return cursorByNodeAndTask
	case q.TaskID != nil:
		return cursorByTask
	}
	return cursorByNode
}

// historyFilter binds a history cursor to its query's node and task: the
// first 8 bytes of SHA-256 of them.
func historyFilter(q BuildDataQuery) []byte {
	h := sha256.New()
	h.Write([]byte(q.NodeName))
	h.Write([]byte{0})
	if q.TaskID != nil {
		h.Write(q.TaskID[:])
	}
	return h.Sum(nil)[:8]
}

// encodeBuildDataCursor writes an opaque cursor: base64 of the kind, then
// collected_at (µs), id and the query's filter (historyFilter), or the node
// name's length, node and generator.
func encodeBuildDataCursor(q BuildDataQuery, c buildDataCursor) string {
	b := []byte{cursorKind(q)}
	if q.Latest || q.LatestAllNodes {
		b = binary.AppendUvarint(b, uint64(len(c.node)))
		b = append(b, c.node...)
		b = append(b, c.generator...)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(c.at.UnixMicro()))
	b = binary.BigEndian.AppendUint64(b, uint64(c.id))
	b = append(b, historyFilter(q)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeBuildDataCursor reads q.Cursor, or returns the start of the first
// page when it is empty. A cursor of another kind of query, or of another
// node or task, is rejected.
func decodeBuildDataCursor(q BuildDataQuery) (buildDataCursor, error) {
	latest := q.Latest || q.LatestAllNodes
	if q.Cursor == "" {
		if latest {
			return buildDataCursor{}, nil // every node name and generator is above ""
		}
		return buildDataCursor{at: endOfTime, id: 1<<63 - 1}, nil
	}
	bad := invalid("query.Cursor", "is not a cursor returned by BuildData for this query")
	b, err := base64.RawURLEncoding.DecodeString(q.Cursor)
	if err != nil || len(b) == 0 || b[0] != cursorKind(q) {
		return buildDataCursor{}, bad
	}
	switch {
	case !latest && len(b) == 25 && subtle.ConstantTimeCompare(b[17:], historyFilter(q)) == 1:
		c := buildDataCursor{at: time.UnixMicro(int64(binary.BigEndian.Uint64(b[1:9]))).UTC(),
			id: int64(binary.BigEndian.Uint64(b[9:17]))}
		// No page ends outside what PostgreSQL stores (from 4714 BC, Go's
		// year -4713) up to endOfTime: a tampered cursor.
		if c.at.Before(time.Date(-4713, 11, 24, 0, 0, 0, 0, time.UTC)) || c.at.After(endOfTime) {
			return buildDataCursor{}, bad
		}
		return c, nil
	case latest:
		n, k := binary.Uvarint(b[1:])
		if k <= 0 || n > uint64(len(b)-1-k) {
			return buildDataCursor{}, bad
		}
		c := buildDataCursor{node: string(b[1+k : 1+k+int(n)]), generator: string(b[1+k+int(n):])}
		if validateText(c.node, "cursor", 280) != nil || validateText(c.generator, "cursor", 256) != nil ||
			(q.Latest && c.node != q.NodeName) {
			return buildDataCursor{}, bad
		}
		return c, nil
	}
	return buildDataCursor{}, bad
}

func buildDataFromRow(r *db.ListBuildDataByNodeRow) BuildData {
	return BuildData{ID: r.BuildDataID, NodeName: r.NodeName, TaskID: r.TaskID, CollectedAt: r.CollectedAt.UTC(),
		Generator: r.Generator, DataFormat: r.DataFormat, DataElement: r.DataElement, DataSize: r.DataSize}
}

// collectableTime reports whether t may be a record's collected_at: from
// year 1 up to endOfTime, where every history query's first page starts (a
// later record would never be listed; PostgreSQL itself stops at 294276 AD).
func collectableTime(t time.Time) bool {
	return !t.Before(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)) && !t.After(endOfTime)
}

var nodeNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func validateNodeName(n, field string) error {
	switch {
	case n == "":
		return invalid(field, "must not be empty")
	case len(n) > 280:
		return invalid(field, "is %d characters long; the limit is 280", len(n))
	case !nodeNamePattern.MatchString(n):
		return invalid(field, "must be letters, digits, '.', '_' and '-', starting with a letter or digit")
	}
	return nil
}

func validateBuildData(bd NewBuildData, field func(string) string) error {
	if err := validateNodeName(bd.NodeName, field("NodeName")); err != nil {
		return err
	}
	if bd.TaskID == uuid.Nil {
		return invalid(field("TaskID"), "must not be the nil UUID")
	}
	if !bd.CollectedAt.IsZero() && !collectableTime(bd.CollectedAt) {
		return invalid(field("CollectedAt"), "must be between year 1 and %s (or zero for the database's clock)", endOfTime.Format(time.DateOnly))
	}
	if bd.Generator == "" {
		return invalid(field("Generator"), "must not be empty")
	}
	if err := validateText(bd.Generator, field("Generator"), 256); err != nil {
		return err
	}
	if err := validateDataFormat(bd.DataFormat, field("DataFormat")); err != nil {
		return err
	}
	if len(bd.DataElement) > MaxDataElementBytes {
		return invalid(field("DataElement"), "is %d bytes; the limit is %d", len(bd.DataElement), MaxDataElementBytes)
	}
	return validateText(bd.DataElement, field("DataElement"), MaxDataElementBytes)
}

func validateBuildDataQuery(q BuildDataQuery) error {
	if q.LatestAllNodes {
		if q.NodeName != "" || q.TaskID != nil || q.Latest {
			return invalid("query", "LatestAllNodes takes no node, task or Latest")
		}
		return nil
	}
	if q.NodeName == "" && q.TaskID == nil {
		return invalid("query", "needs NodeName, TaskID or both (or LatestAllNodes)")
	}
	if q.NodeName != "" {
		if err := validateNodeName(q.NodeName, "query.NodeName"); err != nil {
			return err
		}
	}
	if q.Latest && (q.NodeName == "" || q.TaskID != nil) {
		return invalid("query.Latest", "needs NodeName and no TaskID")
	}
	return nil
}
