package drydockimport

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// The vocabularies and formats of this project's schema (the CHECK
// constraints of schema/001–003), checked before a row is sent so the report
// can say what is wrong; the server's verdict still decides (see copyBisect).
var (
	taskStatuses   = map[string]bool{"requested": true, "queued": true, "running": true, "terminating": true, "terminated": true, "complete": true}
	resultStatuses = map[string]bool{"incomplete": true, "success": true, "partial_success": true, "failure": true, "unreported": true}
	actionRE       = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	nodeNameRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	dataFormatRE   = regexp.MustCompile(`(?s)^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*( *;.*)?$`)
)

// truncatedLength is where Drydock cut result messages: a message of exactly
// this many characters was (most likely) cut.
const truncatedLength = 127

// problem is why a source row cannot be imported (the reason of a rejection).
type problem string

// id16 converts a 16-byte source id (Drydock's UUIDs and ULIDs) into a UUID.
func id16(b []byte, field string) (uuid.UUID, problem) {
	if b == nil {
		return uuid.Nil, problem(field + " is NULL")
	}
	if len(b) != 16 {
		return uuid.Nil, problem(fmt.Sprintf("%s is %d bytes, not 16", field, len(b)))
	}
	var u uuid.UUID
	copy(u[:], b)
	return u, ""
}

// keyOf names a source row by a 16-byte id for the report: the UUID, or the
// hex of whatever is there when it is not 16 bytes.
func keyOf(b []byte) string {
	if len(b) == 16 {
		var u uuid.UUID
		copy(u[:], b)
		return u.String()
	}
	if b == nil {
		return "NULL"
	}
	return "0x" + hex.EncodeToString(b)
}

// keyHash is what this project stores for a boot action key: its SHA-256
// digest. The raw key is never kept, logged or returned.
func keyHash(raw []byte, field string) ([]byte, problem) {
	if raw == nil {
		return nil, problem(field + " is NULL")
	}
	if len(raw) != 32 {
		return nil, problem(fmt.Sprintf("%s is %d bytes, not 32", field, len(raw)))
	}
	d := sha256.Sum256(raw)
	return d[:], ""
}

// naiveTime reads a source timestamp column: nil for NULL, and a problem for
// ±infinity, which PostgreSQL's timestamp allows and no time.Time (nor this
// project's schema, in practice) holds.
func naiveTime(ts pgtype.Timestamp, field string) (*time.Time, problem) {
	switch {
	case !ts.Valid:
		return nil, ""
	case ts.InfinityModifier != pgtype.Finite:
		return nil, problem(field + " is " + ts.InfinityModifier.String() + ", not a time")
	}
	t := ts.Time
	return &t, ""
}

// timeKey shows a source timestamp in a rejection's key.
func timeKey(ts pgtype.Timestamp, loc *time.Location) string {
	switch {
	case !ts.Valid:
		return "NULL"
	case ts.InfinityModifier != pgtype.Finite:
		return ts.InfinityModifier.String()
	}
	return InZone(ts.Time, loc).Format(time.RFC3339Nano)
}

// printable makes a rejection's key or reason storable in the target's text
// columns: valid UTF-8 as it is, anything else (a SQL_ASCII source holds any
// byte) Go-quoted, so distinct byte strings stay distinct.
func printable(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return fmt.Sprintf("%q", s)
}

// printableRejection is r with a storable key and reason.
func printableRejection(r Rejection) Rejection {
	r.Key, r.Reason = printable(r.Key), printable(r.Reason)
	return r
}

// positionPrefix marks a node name stored hex-encoded as a position.
const positionPrefix = "hex:"

// encodeNode turns a source node name into a position the target's text
// column takes: as it is when valid UTF-8, else (and when it could be read
// as encoded) hex with positionPrefix. decodeNode reverses it.
func encodeNode(node string) string {
	if utf8.ValidString(node) && !strings.HasPrefix(node, positionPrefix) {
		return node
	}
	return positionPrefix + hex.EncodeToString([]byte(node))
}

func decodeNode(pos string) (string, error) {
	h, ok := strings.CutPrefix(pos, positionPrefix)
	if !ok {
		return pos, nil
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return "", fmt.Errorf("target: the recorded position %q is not a node name: %w", pos, err)
	}
	return string(b), nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// quoted shows a (short, non-secret) source value in a reason.
func quoted(s string) string {
	if utf8.RuneCountInString(s) > 40 {
		r := []rune(s)
		s = string(r[:40]) + "…"
	}
	return fmt.Sprintf("%q", s)
}

// decodeTwice reads a column Drydock wrote as json.dumps(value) into a json
// column: a JSON string whose text is the JSON document. It is decoded once.
// A document that is not a string (written some other way) is kept as it is,
// as is a string whose text is not JSON. JSON null becomes SQL NULL.
func decodeTwice(doc []byte, field string) (json.RawMessage, problem) {
	if doc == nil {
		return nil, ""
	}
	if !utf8.Valid(doc) { // a SQL_ASCII source holds any byte; Go's decoder would make it U+FFFD
		return nil, problem(field + " is not valid UTF-8")
	}
	trimmed := bytes.TrimSpace(doc)
	if len(trimmed) > 0 && trimmed[0] == '"' {
		var inner string
		if err := json.Unmarshal(trimmed, &inner); err != nil {
			return nil, problem(field + " is not valid JSON")
		}
		if json.Valid([]byte(inner)) {
			trimmed = bytes.TrimSpace([]byte(inner))
		}
	}
	return plainJSON(trimmed, field)
}

// plainJSON checks a JSON document for what jsonb refuses and maps JSON null
// to SQL NULL.
func plainJSON(doc []byte, field string) (json.RawMessage, problem) {
	if doc == nil {
		return nil, ""
	}
	doc = bytes.TrimSpace(doc)
	if !utf8.Valid(doc) { // jsonb refuses it too; checked here so a dry run sees it
		return nil, problem(field + " is not valid UTF-8")
	}
	if !json.Valid(doc) {
		return nil, problem(field + " is not valid JSON")
	}
	if string(doc) == "null" {
		return nil, ""
	}
	if bytes.Contains(doc, []byte(`\u0000`)) {
		var v any
		if err := json.Unmarshal(doc, &v); err == nil && hasNUL(v) {
			return nil, problem(field + ` holds the escape \u0000, which jsonb refuses`)
		}
	}
	return json.RawMessage(bytes.Clone(doc)), ""
}

func hasNUL(v any) bool {
	switch x := v.(type) {
	case string:
		return bytes.IndexByte([]byte(x), 0) >= 0
	case []any:
		for _, e := range x {
			if hasNUL(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range x {
			if bytes.IndexByte([]byte(k), 0) >= 0 || hasNUL(e) {
				return true
			}
		}
	}
	return false
}

// InZone reads a naive source timestamp (pgx returns its wall clock as UTC)
// as a local time of loc, with PostgreSQL's rules for `timestamp AT TIME
// ZONE`: a time that occurs twice (clocks set back) is the later instant
// (standard time), and a time that does not exist (clocks set forward) is
// read with the offset in force before the change.
// TestInZoneAgreesWithPostgreSQL compares it with the server minute by minute
// around daylight-saving changes.
func InZone(naive time.Time, loc *time.Location) time.Time {
	if loc == time.UTC || loc == nil {
		return naive.UTC()
	}
	u := time.Date(naive.Year(), naive.Month(), naive.Day(), naive.Hour(), naive.Minute(), naive.Second(), naive.Nanosecond(), time.UTC)
	offsetAt := func(t time.Time) time.Duration {
		_, off := t.In(loc).Zone()
		return time.Duration(off) * time.Second
	}
	before, after := offsetAt(u.Add(-36*time.Hour)), offsetAt(u.Add(36*time.Hour))
	var found []time.Time
	for _, off := range []time.Duration{before, after} {
		c := u.Add(-off)
		if offsetAt(c) == off && (len(found) == 0 || !found[0].Equal(c)) {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 0: // in a gap: the offset before the change
		return u.Add(-before).UTC()
	case 1:
		return found[0].UTC()
	default: // twice: the later instant
		if found[1].After(found[0]) {
			return found[1].UTC()
		}
		return found[0].UTC()
	}
}
