package statestore

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Input validation. Every check runs before the database is touched, names
// the field, says what is wrong, and never repeats the value (it may be a
// secret or megabytes long). The database's CHECK constraints hold the same
// rules as a second line.

var actionPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

func validateAction(a, field string) error {
	if a == "" {
		return invalid(field, "must not be empty")
	}
	if !actionPattern.MatchString(a) {
		return invalid(field, "must be 1-64 characters of a-z, 0-9 and _, starting with a letter")
	}
	return nil
}

func validateStatus(s TaskStatus, field string) error {
	if _, ok := allowedFrom[s]; !ok {
		return invalid(field, "is not a task status (want requested, queued, running, terminating, terminated or complete)")
	}
	return nil
}

func validateResultStatus(s ResultStatus, field string) error {
	switch s {
	case ResultIncomplete, ResultSuccess, ResultPartialSuccess, ResultFailure, ResultUnreported:
		return nil
	}
	return invalid(field, "is not a result status (want incomplete, success, partial_success, failure or unreported)")
}

// validateText checks that s is storable text of at most max characters:
// valid UTF-8 without NUL bytes (PostgreSQL text cannot hold NUL).
func validateText(s, field string, max int) error {
	if !utf8.ValidString(s) {
		return invalid(field, "is not valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return invalid(field, "contains a NUL byte")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return invalid(field, "is %d characters long; the limit is %d", n, max)
	}
	return nil
}

// maxJSONDepth is the deepest nesting of arrays and objects accepted: the
// limit of encoding/json. PostgreSQL's own limit comes from its
// max_stack_depth (between 10 001 and 20 000 levels at the default 2 MB), so
// Go is the stricter side here, by design.
const maxJSONDepth = 10000

// PostgreSQL's numeric limits, which jsonb numbers share: the most
// significant digit at most 10^131071, at most 16383 digits after the
// decimal point (counting trailing zeros and what a negative exponent
// adds), and an exponent below 2^30 - 1 in magnitude.
const (
	numericMaxMSD      = 131071
	numericMaxDScale   = 16383
	numericMaxExponent = 1<<30 - 1 // INT_MAX / 2
)

// validateJSON checks an optional JSON document (nil: SQL NULL) against the
// rules of PostgreSQL's jsonb input, so that Go rejects exactly what the
// server would (TestGoValidationAgreesWithDatabase runs a corpus through
// both): valid UTF-8 and JSON syntax; no \u0000 escape in any string or key
// (jsonb answers SQLSTATE 22P05) — an escaped backslash followed by "u0000"
// is fine; no unpaired UTF-16 surrogate escape; every number within
// PostgreSQL's numeric range (else 22003). The one intended difference:
// nesting deeper than maxJSONDepth is rejected here.
func validateJSON(doc json.RawMessage, field string, wantArray bool) error {
	if doc == nil {
		return nil
	}
	if !utf8.Valid(doc) {
		return invalid(field, "is not valid UTF-8")
	}
	if !json.Valid(doc) {
		if jsonDepth(doc) > maxJSONDepth {
			return invalid(field, "nests arrays and objects deeper than %d levels", maxJSONDepth)
		}
		return invalid(field, "is not valid JSON")
	}
	if problem := jsonbProblem(doc); problem != "" {
		return invalid(field, "%s", problem)
	}
	if wantArray {
		var arr []json.RawMessage
		if err := json.Unmarshal(doc, &arr); err != nil {
			return invalid(field, "must be a JSON array")
		}
	}
	return nil
}

// jsonDepth returns the deepest nesting of a document that may be invalid.
func jsonDepth(doc []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(doc); i++ {
		switch c := doc[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

// jsonbProblem says what in a syntactically valid JSON document jsonb
// refuses, or returns "" when jsonb accepts it all.
func jsonbProblem(doc []byte) string {
	for i := 0; i < len(doc); {
		c := doc[i]
		switch {
		case c == '"':
			end, problem := jsonbStringProblem(doc, i+1)
			if problem != "" {
				return problem
			}
			i = end
		case c == '-' || (c >= '0' && c <= '9'):
			end := i + 1
			for end < len(doc) && strings.IndexByte("0123456789.eE+-", doc[end]) >= 0 {
				end++
			}
			if numericOutOfRange(string(doc[i:end])) {
				return "holds a number outside PostgreSQL's numeric range (at most 131072 digits before and 16383 after the decimal point)"
			}
			i = end
		default:
			i++
		}
	}
	return ""
}

// jsonbStringProblem scans a valid JSON string from just after its opening
// quote and returns the index after its closing quote, with the first
// escape jsonb refuses: \u0000, or a surrogate escape that is not a high
// one directly followed by a low one (PostgreSQL's own pairing rule).
func jsonbStringProblem(doc []byte, i int) (int, string) {
	const unpaired = `holds a \u escape of an unpaired UTF-16 surrogate (a high one, \ud800-\udbff, must be followed directly by a low one, \udc00-\udfff)`
	high := false // the previous character was a high surrogate escape
	for i < len(doc) {
		c := doc[i]
		if c == '"' {
			if high {
				return i, unpaired
			}
			return i + 1, ""
		}
		if c != '\\' || doc[i+1] != 'u' {
			if high {
				return i, unpaired
			}
			if c == '\\' {
				i++
			}
			i++
			continue
		}
		u, _ := strconv.ParseUint(string(doc[i+2:i+6]), 16, 16)
		i += 6
		switch {
		case u == 0:
			return i, `holds the escape \u0000, which PostgreSQL's jsonb cannot store (SQLSTATE 22P05); an escaped backslash, \\u0000, can be stored`
		case u >= 0xD800 && u < 0xDC00:
			if high {
				return i, unpaired
			}
			high = true
		case u >= 0xDC00 && u < 0xE000:
			if !high {
				return i, unpaired
			}
			high = false
		default:
			if high {
				return i, unpaired
			}
		}
	}
	return i, ""
}

// numericOutOfRange reports whether PostgreSQL's numeric input (which jsonb
// uses) refuses a valid JSON number with "value overflows numeric format".
func numericOutOfRange(lit string) bool {
	lit = strings.TrimPrefix(lit, "-")
	mantissa, exponent, _ := strings.Cut(strings.ToLower(lit), "e")
	intPart, frac, _ := strings.Cut(mantissa, ".")
	exp := int64(0)
	if exponent != "" {
		neg := exponent[0] == '-'
		digits := strings.TrimLeft(strings.TrimLeft(exponent, "+-"), "0")
		if len(digits) > 10 {
			return true // beyond any accepted exponent
		}
		if digits != "" {
			exp, _ = strconv.ParseInt(digits, 10, 64)
		}
		if neg {
			exp = -exp
		}
	}
	if exp >= numericMaxExponent || exp <= -numericMaxExponent {
		return true
	}
	if max(int64(len(frac))-exp, 0) > numericMaxDScale {
		return true
	}
	first := strings.IndexFunc(intPart+frac, func(r rune) bool { return r != '0' })
	if first < 0 {
		return false // zero: only the scale counts
	}
	return int64(len(intPart))-1-int64(first)+exp > numericMaxMSD
}

// dataFormatPattern is the shape of a build-data format, a MIME type: type
// "/" subtype (RFC 6838 restricted names), then optionally spaces, ";" and
// anything. It is the very pattern of the CHECK constraint
// build_data_data_format_check, compiled with (?s) because PostgreSQL's "."
// also matches a newline (TestDataFormatRuleIsTheCheckConstraint compares
// the two texts).
const dataFormatPattern = `^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*( *;.*)?$`

var dataFormatRegexp = regexp.MustCompile(`(?s)` + dataFormatPattern)

// validateDataFormat applies build_data_data_format_check: storable text of
// at most 255 characters matching dataFormatPattern.
func validateDataFormat(m, field string) error {
	if m == "" {
		return invalid(field, "must not be empty")
	}
	if err := validateText(m, field, 255); err != nil {
		return err
	}
	if !dataFormatRegexp.MatchString(m) {
		return invalid(field, "must be a MIME type, type/subtype of letters, digits and !#$&^_.+- (no wildcards, no surrounding spaces), optionally followed by ; and parameters, such as text/plain or application/json")
	}
	return nil
}

func validateClaimer(c string) error {
	if c == "" {
		return invalid("claimer", "must not be empty")
	}
	return validateText(c, "claimer", 256)
}

func validateNewTask(nt NewTask, field func(string) string) error {
	if err := validateAction(nt.Action, field("Action")); err != nil {
		return err
	}
	switch nt.Status {
	case "", StatusQueued, StatusRequested:
	default:
		return invalid(field("Status"), "a new task must be requested or queued")
	}
	if nt.ParentID != nil && *nt.ParentID == nt.ID && nt.ID != [16]byte{} {
		return invalid(field("ParentID"), "a task cannot be its own parent")
	}
	if nt.ParentID != nil && *nt.ParentID == [16]byte{} {
		return invalid(field("ParentID"), "must not be the nil UUID")
	}
	return firstError([]error{
		validateText(nt.DesignRef, field("DesignRef"), 2048),
		validateText(nt.CreatedBy, field("CreatedBy"), 256),
		validateJSON(nt.NodeFilter, field("NodeFilter"), false),
		validateJSON(nt.RequestContext, field("RequestContext"), false),
	})
}

func validateUpdate(u TaskUpdate) error {
	var errs []error
	if u.Status != nil {
		errs = append(errs, validateStatus(*u.Status, "update.Status"))
	}
	if u.ResultStatus != nil {
		errs = append(errs, validateResultStatus(*u.ResultStatus, "update.ResultStatus"))
	}
	if u.Retry != nil && (*u.Retry < 0 || *u.Retry > 1<<30) {
		errs = append(errs, invalid("update.Retry", "must be between 0 and 2^30"))
	}
	if u.DesignRef != nil {
		errs = append(errs, validateText(*u.DesignRef, "update.DesignRef", 2048))
	}
	if u.TerminatedBy != nil {
		errs = append(errs, validateText(*u.TerminatedBy, "update.TerminatedBy", 256))
	}
	if u.ResultMessage != nil {
		errs = append(errs, validateText(*u.ResultMessage, "update.ResultMessage", MaxMessageLength))
	}
	if u.ResultReason != nil {
		errs = append(errs, validateText(*u.ResultReason, "update.ResultReason", MaxMessageLength))
	}
	for i, v := range u.Successes {
		errs = append(errs, validateText(v, fmt.Sprintf("update.Successes[%d]", i), 1024))
	}
	for i, v := range u.Failures {
		errs = append(errs, validateText(v, fmt.Sprintf("update.Failures[%d]", i), 1024))
	}
	errs = append(errs,
		validateJSON(u.NodeFilter, "update.NodeFilter", false),
		validateJSON(u.RequestContext, "update.RequestContext", false),
		validateJSON(u.Links, "update.Links", true))
	return firstError(errs)
}

func validateMessage(m NewMessage, field func(string) string) error {
	return firstError([]error{
		validateText(m.Message, field("Message"), MaxMessageLength),
		validateText(m.Context, field("Context"), 1024),
		validateText(m.ContextType, field("ContextType"), 64),
		validateJSON(m.Extra, field("Extra"), false),
		validateMessageTime(m.Time, field("Time")),
	})
}

// validateMessageTime refuses a message time PostgreSQL cannot store (its
// timestamptz runs from 4714 BC, Go's year -4713, to 294276 AD), so the
// call fails alone, naming the field, before any statement: a grouped
// append never fails the calls it shares a statement with
// (TestGroupedAppendBreakBadTimeFailsOnlyItsCall). Zero means "now".
func validateMessageTime(t time.Time, field string) error {
	if t.IsZero() {
		return nil
	}
	if t.Before(time.Date(-4713, 11, 24, 0, 0, 0, 0, time.UTC)) || !t.Before(time.Date(294277, 1, 1, 0, 0, 0, 0, time.UTC)) {
		return invalid(field, "is outside the times PostgreSQL stores (4714 BC to 294276 AD)")
	}
	return nil
}

// firstError returns the first non-nil error, keeping *InvalidInputError
// unwrapped so callers can errors.As it directly.
func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
