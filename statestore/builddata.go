package statestore

import (
	"context"
	"fmt"
	"mime"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/gen/db"
)

// MaxDataElementBytes is the largest build-data element stored (64 MiB).
const MaxDataElementBytes = 64 << 20

// BuildData is one record of data collected from a node.
type BuildData struct {
	ID          int64     `json:"id"`
	NodeName    string    `json:"node_name"`
	TaskID      uuid.UUID `json:"task_id"`
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
	NodeName string
	TaskID   uuid.UUID
	// CollectedAt defaults to the database's clock when zero.
	CollectedAt time.Time
	Generator   string
	DataFormat  string
	DataElement string
}

// InsertBuildData stores one record and returns it.
func (s *Store) InsertBuildData(ctx context.Context, bd NewBuildData) (*BuildData, error) {
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
func (s *Store) BulkInsertBuildData(ctx context.Context, records []NewBuildData) (int64, error) {
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
	NodeName string
	TaskID   *uuid.UUID
	// Latest returns only the newest record of each generator (of NodeName).
	Latest bool
	// LatestAllNodes returns the newest record of each generator of every node.
	LatestAllNodes bool
	// Full includes the data elements; otherwise a summary (the original's
	// verbosity 1) with DataElement empty and DataSize set.
	Full bool
	// Limit caps the records returned by BuildData (default 1000); EachBuildData
	// streams them all.
	Limit int
}

// BuildData returns the selected records, newest first (latest queries:
// ordered by node and generator).
func (s *Store) BuildData(ctx context.Context, q BuildDataQuery) ([]BuildData, error) {
	limit := q.Limit
	if limit == 0 {
		limit = 1000
	}
	if limit < 0 || limit > 1000000 {
		return nil, invalid("query.Limit", "must be between 1 and 1000000, got %d", limit)
	}
	out := []BuildData{}
	err := s.eachBuildData(ctx, q, min(limit, 500), func(bd BuildData) error {
		out = append(out, bd)
		if len(out) == limit {
			return errStopIteration
		}
		return nil
	})
	if err != nil && err != errStopIteration {
		return nil, err
	}
	return out, nil
}

// EachBuildData calls fn for every selected record, newest first, reading a
// page of 100 records at a time, so a long history of large elements is
// never held in memory at once. fn returning an error stops the iteration
// and EachBuildData returns that error.
func (s *Store) EachBuildData(ctx context.Context, q BuildDataQuery, fn func(BuildData) error) error {
	return s.eachBuildData(ctx, q, 100, fn)
}

var errStopIteration = fmt.Errorf("statestore: stop iteration")

func (s *Store) eachBuildData(ctx context.Context, q BuildDataQuery, page int, fn func(BuildData) error) error {
	if err := validateBuildDataQuery(q); err != nil {
		return err
	}
	if q.Latest || q.LatestAllNodes {
		var rows []db.ListBuildDataByNodeRow
		if q.LatestAllNodes {
			rs, err := s.q.LatestBuildDataOfAllNodes(ctx, s.conn, q.Full)
			if err != nil {
				return mapError("read latest build data", err)
			}
			for _, r := range rs {
				rows = append(rows, db.ListBuildDataByNodeRow(*r))
			}
		} else {
			rs, err := s.q.LatestBuildDataOfNode(ctx, s.conn, db.LatestBuildDataOfNodeParams{IncludeData: q.Full, NodeName: q.NodeName})
			if err != nil {
				return mapError("read latest build data of "+q.NodeName, err)
			}
			for _, r := range rs {
				rows = append(rows, db.ListBuildDataByNodeRow(*r))
			}
		}
		for i := range rows {
			if err := fn(buildDataFromRow(&rows[i])); err != nil {
				return err
			}
		}
		return nil
	}
	cursorAt, cursorID := endOfTime, int64(1<<63-1)
	for {
		rows, err := s.buildDataPage(ctx, q, cursorAt, cursorID, page)
		if err != nil {
			return err
		}
		for i := range rows {
			if err := fn(buildDataFromRow(&rows[i])); err != nil {
				return err
			}
		}
		if len(rows) < page {
			return nil
		}
		last := rows[len(rows)-1]
		cursorAt, cursorID = last.CollectedAt, last.BuildDataID
	}
}

func (s *Store) buildDataPage(ctx context.Context, q BuildDataQuery, at time.Time, id int64, page int) ([]db.ListBuildDataByNodeRow, error) {
	var out []db.ListBuildDataByNodeRow
	switch {
	case q.NodeName != "" && q.TaskID != nil:
		rs, err := s.q.ListBuildDataByNodeAndTask(ctx, s.conn, db.ListBuildDataByNodeAndTaskParams{
			IncludeData: q.Full, NodeName: q.NodeName, TaskID: *q.TaskID,
			CursorCollectedAt: at, CursorID: id, MaxRows: int32(page)})
		if err != nil {
			return nil, mapError("read build data", err)
		}
		for _, r := range rs {
			out = append(out, db.ListBuildDataByNodeRow(*r))
		}
	case q.TaskID != nil:
		rs, err := s.q.ListBuildDataByTask(ctx, s.conn, db.ListBuildDataByTaskParams{
			IncludeData: q.Full, TaskID: *q.TaskID, CursorCollectedAt: at, CursorID: id, MaxRows: int32(page)})
		if err != nil {
			return nil, mapError("read build data", err)
		}
		for _, r := range rs {
			out = append(out, db.ListBuildDataByNodeRow(*r))
		}
	default:
		rs, err := s.q.ListBuildDataByNode(ctx, s.conn, db.ListBuildDataByNodeParams{
			IncludeData: q.Full, NodeName: q.NodeName, CursorCollectedAt: at, CursorID: id, MaxRows: int32(page)})
		if err != nil {
			return nil, mapError("read build data", err)
		}
		for _, r := range rs {
			out = append(out, *r)
		}
	}
	return out, nil
}

func buildDataFromRow(r *db.ListBuildDataByNodeRow) BuildData {
	return BuildData{ID: r.BuildDataID, NodeName: r.NodeName, TaskID: r.TaskID, CollectedAt: r.CollectedAt.UTC(),
		Generator: r.Generator, DataFormat: r.DataFormat, DataElement: r.DataElement, DataSize: r.DataSize}
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

// validateMIMEType accepts type/subtype with optional parameters, as the
// database's CHECK does.
func validateMIMEType(m, field string) error {
	if m == "" {
		return invalid(field, "must not be empty")
	}
	if len(m) > 255 {
		return invalid(field, "is longer than 255 characters")
	}
	mt, _, err := mime.ParseMediaType(m)
	if err != nil || !strings.Contains(mt, "/") || strings.HasPrefix(mt, "/") || strings.HasSuffix(mt, "/") {
		return invalid(field, "must be a MIME type such as text/plain or application/json")
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
	if bd.Generator == "" {
		return invalid(field("Generator"), "must not be empty")
	}
	if err := validateText(bd.Generator, field("Generator"), 256); err != nil {
		return err
	}
	if err := validateMIMEType(bd.DataFormat, field("DataFormat")); err != nil {
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
