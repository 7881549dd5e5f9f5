package statestore

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
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

// validateJSON checks an optional JSON document. PostgreSQL's jsonb also
// refuses the \u0000 escape, so it is caught here with a clear message.
func validateJSON(doc json.RawMessage, field string, wantArray bool) error {
	if doc == nil {
		return nil
	}
	if !json.Valid(doc) {
		return invalid(field, "is not valid JSON")
	}
	if strings.Contains(string(doc), `\u0000`) {
		return invalid(field, `contains \u0000, which PostgreSQL cannot store`)
	}
	if wantArray {
		var arr []json.RawMessage
		if err := json.Unmarshal(doc, &arr); err != nil {
			return invalid(field, "must be a JSON array")
		}
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
	})
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
