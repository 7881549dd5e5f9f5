package statestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
)

// Sentinel errors. Every error the store returns wraps at most one of these,
// so callers branch with errors.Is and never on message text.
var (
	// ErrNotFound means the row the call names does not exist.
	ErrNotFound = errors.New("statestore: not found")
	// ErrConflict means the write lost a race: a version check failed, a
	// unique key is taken, or a lifecycle change no longer applies.
	ErrConflict = errors.New("statestore: conflict")
	// ErrNotLeader means a fenced write carried a leadership term that is no
	// longer current; nothing was written.
	ErrNotLeader = errors.New("statestore: not the current leader")
	// ErrInvalidInput means an argument was rejected before or by the
	// database; nothing was written. The error is an *InvalidInputError that
	// names the field.
	ErrInvalidInput = errors.New("statestore: invalid input")
	// ErrClosed means the store's pool has been closed.
	ErrClosed = errors.New("statestore: closed")
	// ErrOutcomeUnknown means the connection failed (or the call's context
	// ended) after the call was sent: it may or may not have been applied —
	// a commit can complete on the server after the client has gone. Retry
	// only a call that is idempotent (docs/ha.md), or read back. The
	// driver's error is wrapped too.
	ErrOutcomeUnknown = errors.New("statestore: outcome unknown")
)

// InvalidInputError describes one rejected argument: which field and what is
// wrong with its value. It never repeats the value itself, so secrets and
// huge inputs do not leak into logs. errors.Is(err, ErrInvalidInput) holds.
type InvalidInputError struct {
	// Field is the name of the rejected argument, e.g. "action" or "task.status".
	Field string
	// Problem says what is wrong, e.g. "must not be empty".
	Problem string
}

// Error implements error.
func (e *InvalidInputError) Error() string {
	return fmt.Sprintf("statestore: invalid %s: %s", e.Field, e.Problem)
}

// Is makes errors.Is(err, ErrInvalidInput) true.
func (e *InvalidInputError) Is(target error) bool { return target == ErrInvalidInput }

// invalid builds an *InvalidInputError.
func invalid(field, format string, args ...any) error {
	return &InvalidInputError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// PostgreSQL error codes the store maps to sentinels (SQLSTATE).
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
	pgCheckViolation      = "23514"
	pgNotNullViolation    = "23502"
	pgStringTooLong       = "22001"
	pgInvalidTextRep      = "22P02" // also malformed json
	pgUntranslatableChar  = "22P05"
	pgCharNotInRepertoire = "22021"
	pgNumericOutOfRange   = "22003" // also a jsonb number beyond numeric's range
	pgDatetimeOverflow    = "22008" // a timestamp beyond timestamptz's range
	pgSerializationFail   = "40001"
	pgDeadlockDetected    = "40P01"
	pgAdminShutdown       = "57P01"
	pgCrashShutdown       = "57P02"
)

// outcomeUnknown reports whether a driver error (not the server's) means
// the call may have been applied: the connection broke or timed out after
// the call was sent. Errors pgx marks safe to retry (nothing was sent) and
// failures to connect are not.
func outcomeUnknown(err error) bool {
	var connectErr *pgconn.ConnectError
	var unsent *notSentError
	if errors.As(err, &unsent) {
		return false
	}
	// pgx reports a connection that broke while a sent statement's answer
	// (a COMMIT's) was awaited as "conn closed", an error it marks safe to
	// retry: it is not (TestBreakRetryAfterCommitWhoseAnswerWasLost).
	if errors.Is(err, pgconn.ErrConnClosed) {
		return true
	}
	if pgconn.SafeToRetry(err) || errors.As(err, &connectErr) || errors.Is(err, ErrNotPrimary) {
		return false
	}
	var netErr net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.As(err, &netErr) ||
		pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// outcomeUnknownError is mapError's answer for a call whose connection
// failed after it was sent: errors.Is(err, ErrOutcomeUnknown) holds, and
// the driver's error is wrapped — unless InTx learns that the statement
// ran in a transaction it never committed, which wrote nothing then.
type outcomeUnknownError struct {
	op           string
	err          error
	notCommitted bool
}

func (e *outcomeUnknownError) Error() string {
	if e.notCommitted {
		return fmt.Sprintf("%s: %v (its transaction was not committed: nothing written)", e.op, e.err)
	}
	return fmt.Sprintf("%s: %v: %v", e.op, ErrOutcomeUnknown, e.err)
}

func (e *outcomeUnknownError) Unwrap() error { return e.err }

// Is makes errors.Is(err, ErrOutcomeUnknown) true while the outcome is unknown.
func (e *outcomeUnknownError) Is(target error) bool {
	return target == ErrOutcomeUnknown && !e.notCommitted
}

// markNotCommitted records, on every outcomeUnknownError in err's tree,
// that its statement's transaction was never committed: those calls wrote
// nothing (TestBreakOutcomeKnownWhenCutBeforeCommit).
func markNotCommitted(err error) {
	switch e := err.(type) {
	case *outcomeUnknownError:
		e.notCommitted = true
		markNotCommitted(e.err)
	case interface{ Unwrap() error }:
		markNotCommitted(e.Unwrap())
	case interface{ Unwrap() []error }:
		for _, x := range e.Unwrap() {
			markNotCommitted(x)
		}
	}
}

// mapError turns a database error into the store's vocabulary. It is the only
// place that inspects driver errors; it matches SQLSTATE codes, never message
// text. op names the operation for the message.
func mapError(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	if errors.Is(err, puddle.ErrClosedPool) {
		return fmt.Errorf("%s: %w", op, ErrClosed)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		if outcomeUnknown(err) {
			return &outcomeUnknownError{op: op, err: err}
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	switch pgErr.Code {
	case pgAdminShutdown, pgCrashShutdown:
		// The session was ended mid-call, perhaps while its commit waited
		// for the synchronous standby (committed locally by then).
		return &outcomeUnknownError{op: op, err: err}
	case pgUniqueViolation:
		return fmt.Errorf("%s: %w: %s already exists", op, ErrConflict, constraintField(pgErr))
	case pgSerializationFail, pgDeadlockDetected:
		return fmt.Errorf("%s: %w: concurrent transaction (SQLSTATE %s): %w", op, ErrConflict, pgErr.Code, err)
	case pgForeignKeyViolation:
		return fmt.Errorf("%s: %w: the row %s refers to does not exist", op, ErrNotFound, constraintField(pgErr))
	case pgCheckViolation, pgNotNullViolation:
		return fmt.Errorf("%s: %w", op, &InvalidInputError{
			Field: constraintField(pgErr), Problem: "is rejected by the database (SQLSTATE " + pgErr.Code + ")"})
	case pgStringTooLong, pgInvalidTextRep, pgUntranslatableChar, pgCharNotInRepertoire, pgNumericOutOfRange,
		pgDatetimeOverflow:
		return fmt.Errorf("%s: %w", op, &InvalidInputError{
			Field: constraintField(pgErr), Problem: "rejected by the database (SQLSTATE " + pgErr.Code + ")"})
	}
	return fmt.Errorf("%s: %w", op, err)
}

// constraintField names the field (column) a constraint protects, never the
// constraint: the column PostgreSQL reports (NOT NULL), the key columns of a
// unique or foreign key violation, or the column a CHECK constraint is named after
// (<table>_<column>_<suffix>, as every constraint of the schema is, or an
// entry of irregularConstraints; TestEveryConstraintNamesItsColumn checks
// them all). "value" when none is known.
func constraintField(pgErr *pgconn.PgError) string {
	if pgErr.ColumnName != "" {
		return pgErr.ColumnName
	}
	if pgErr.Code == pgUniqueViolation || pgErr.Code == pgForeignKeyViolation {
		// Detail is `Key (col, ...)=(values) ...`: keep the names only.
		if rest, ok := strings.CutPrefix(pgErr.Detail, "Key ("); ok {
			if cols, _, ok := strings.Cut(rest, ")=("); ok {
				return cols
			}
		}
	}
	if f := constraintColumn(pgErr.TableName, pgErr.ConstraintName); f != "" {
		return f
	}
	return "value"
}

// irregularConstraints maps the constraints whose names do not end in their
// column's name plus a suffix to the field they protect.
var irregularConstraints = map[string]string{
	"tasks_parent_not_self":      "parent_task_id",
	"tasks_claim_pair":           "claimed_by",
	"active_instance_single_row": "dummy_key",
	"leader_term_end_pair":       "ended_at",
	"leadership_fence_singleton": "singleton",
}

// constraintColumn derives the column from a constraint's name, or "".
func constraintColumn(table, constraint string) string {
	if f, ok := irregularConstraints[constraint]; ok {
		return f
	}
	rest, ok := strings.CutPrefix(constraint, table+"_")
	if table == "" || !ok {
		return ""
	}
	for _, suffix := range []string{"_check", "_length", "_positive", "_nonnegative", "_array", "_key", "_fkey"} {
		if col, ok := strings.CutSuffix(rest, suffix); ok && col != "" {
			return col
		}
	}
	return ""
}
