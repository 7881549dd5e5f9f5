package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/drydock-go/statemgmt/statestore"
)

// Flag and argument validation shared by every command. A bad value is a
// usage error (exit 2) whose message names the flag as the operator typed
// it, the value, and what is allowed — never the Go field behind it. The
// checks here run before the database is touched; what only the store can
// judge (the shape of an action or node name, a cursor) comes back as a
// *statestore.InvalidInputError, which storeFlagError renames to the flag.

// usageError marks errors that are the caller's wording (exit code 2).
type usageError struct{ err error }

// Error implements error.
func (u usageError) Error() string { return u.err.Error() }

// Unwrap returns the wrapped error.
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// flagParseError rewords pflag's error for a value of the wrong type
// (`invalid argument "ten" for "--limit" flag: strconv.ParseInt: parsing
// "ten": invalid syntax`) as `--limit "ten": want a whole number`; other
// parse errors (unknown flag, missing value) already name the flag.
func flagParseError(err error) error {
	var ive *pflag.InvalidValueError
	if !errors.As(err, &ive) {
		return err
	}
	want := "a value of type " + ive.GetFlag().Value.Type()
	switch ive.GetFlag().Value.Type() {
	case "int", "int64", "int32":
		want = "a whole number"
	case "bool":
		want = "true or false"
	}
	return fmt.Errorf("--%s %s: want %s", ive.GetFlag().Name, quote(ive.GetValue()), want)
}

// checkRequiredFlags names the required flags (MarkFlagRequired) a command
// line lacks, as typed: "--action is required", and refuses --database-url
// given empty. It runs as PreRunE, before cobra's own check, whose message
// names the flags without the dashes.
func checkRequiredFlags(c *cobra.Command, _ []string) error {
	// --database-url given empty (a script's unset variable) must not mean
	// DATABASE_URL's or libpq's database: that may be another one entirely.
	if f := c.Flags().Lookup("database-url"); f != nil && f.Changed && strings.TrimSpace(f.Value.String()) == "" {
		return usagef("--database-url: must not be empty (omit it to use DATABASE_URL or the PG* variables)")
	}
	var missing []string
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if v := f.Annotations[cobra.BashCompOneRequiredFlag]; len(v) > 0 && v[0] == "true" && !f.Changed {
			missing = append(missing, "--"+f.Name)
		}
	})
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return usagef("%s is required (see %s --help)", missing[0], c.CommandPath())
	}
	return usagef("%s are required (see %s --help)", strings.Join(missing, ", "), c.CommandPath())
}

// maxPageSize is the largest page the store hands out (ListTasks, BuildData).
const maxPageSize = 10000

// checkPageSize checks a --limit: a page of 1 to maxPageSize items. Zero
// and negative numbers are errors, never a silent default.
func checkPageSize(flag string, n int) error {
	if n < 1 || n > maxPageSize {
		return usagef("%s %d: must be between 1 and %d (items per page)", flag, n, maxPageSize)
	}
	return nil
}

// checkRange checks an integer flag against [lo, hi]; what says what the
// number counts.
func checkRange(flag string, n, lo, hi int, what string) error {
	if n < lo || n > hi {
		return usagef("%s %d: must be between %d and %d (%s)", flag, n, lo, hi, what)
	}
	return nil
}

// allTaskStatuses are the task statuses in lifecycle order.
var allTaskStatuses = []statestore.TaskStatus{statestore.StatusRequested, statestore.StatusQueued, statestore.StatusRunning,
	statestore.StatusTerminating, statestore.StatusTerminated, statestore.StatusComplete}

// parseStatuses reads the values of a status flag; each must be one of
// allowed. A flag given with nothing in it (--status "") is an error too.
func parseStatuses(c *cobra.Command, flag string, values []string, allowed []statestore.TaskStatus) ([]statestore.TaskStatus, error) {
	if err := checkNotEmpty(c, flag, values); err != nil {
		return nil, err
	}
	var out []statestore.TaskStatus
	for _, v := range values {
		st, err := parseStatus(flag, v, allowed)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// parseStatus reads one status value; it must be one of allowed.
func parseStatus(flag, v string, allowed []statestore.TaskStatus) (statestore.TaskStatus, error) {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		if string(a) == v {
			return a, nil
		}
		names[i] = string(a)
	}
	return "", usagef("%s %s is not a task status (one of: %s)", flag, quote(v), strings.Join(names, ", "))
}

// checkNotEmpty refuses a list flag given with nothing in it (--action "",
// --status ,): it would otherwise quietly filter nothing.
func checkNotEmpty(c *cobra.Command, flag string, values []string) error {
	if !c.Flags().Changed(strings.TrimPrefix(flag, "--")) {
		return nil
	}
	if len(values) == 0 {
		return usagef("%s: give at least one value", flag)
	}
	for _, v := range values {
		if strings.TrimSpace(v) == "" {
			return usagef("%s: a value is empty", flag)
		}
	}
	return nil
}

// checkGivenNotEmpty refuses a string flag given as "" when its default
// would otherwise be used in its place without a word.
func checkGivenNotEmpty(c *cobra.Command, flag, value string) error {
	if c.Flags().Changed(strings.TrimPrefix(flag, "--")) && strings.TrimSpace(value) == "" {
		return usagef("%s: must not be empty", flag)
	}
	return nil
}

// optionalID parses an optional UUID flag: nil when the flag is empty.
func optionalID(s, flag string) (*uuid.UUID, error) {
	if s == "" {
		return nil, nil
	}
	id, err := parseID(s, flag)
	if err != nil {
		return nil, err
	}
	return &id, nil
}

// parseID parses a UUID given as what (a flag, or "task id" for an argument).
func parseID(s, what string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, usagef("%s %s is not a UUID (like 0192f7c4-8a1e-7b3c-9d2e-5f6a7b8c9d0e)", what, quote(s))
	}
	if id == uuid.Nil {
		return uuid.Nil, usagef("%s %s: the nil UUID names no task", what, quote(s))
	}
	return id, nil
}

// flagRef is the flag (or argument) that set a store field, with the value;
// problem, when set, replaces the store's wording (which may name Go calls).
type flagRef struct{ name, value, problem string }

// cursorFlag is the --cursor flag of a list command: the store's complaint
// names its Go call, the operator wants to know where a cursor comes from.
func cursorFlag(cursor string) flagRef {
	return flagRef{"--cursor", cursor, `is not a cursor statectl printed for this listing (the "more: --cursor …" line on stderr, or "next" in -o json/yaml, of the same command with the same flags)`}
}

// storeFlagError turns the store's *InvalidInputError about one of fields
// (keyed by the store's field name; "filter.Statuses" also matches
// "filter.Statuses[2]") into a usage error naming the flag that set it.
// Other errors pass through unchanged.
func storeFlagError(err error, fields map[string]flagRef) error {
	var ie *statestore.InvalidInputError
	if !errors.As(err, &ie) {
		return err
	}
	field, _, _ := strings.Cut(ie.Field, "[")
	f, ok := fields[field]
	if !ok {
		return err
	}
	problem := ie.Problem
	if f.problem != "" {
		problem = f.problem
	}
	return usagef("%s %s: %s", f.name, quote(f.value), problem)
}

// quote quotes a flag value for a message, cut short when long.
func quote(v string) string {
	const max = 80
	if r := []rune(v); len(r) > max {
		return fmt.Sprintf("%q…", string(r[:max]))
	}
	return fmt.Sprintf("%q", v)
}
