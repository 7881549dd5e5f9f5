package statestore

import (
	"errors"
	"fmt"

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
	pgSerializationFail   = "40001"
	pgDeadlockDetected    = "40P01"
)

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
		return fmt.Errorf("%s: %w", op, err)
	}
	switch pgErr.Code {
	case pgUniqueViolation:
		return fmt.Errorf("%s: %w: %s already exists", op, ErrConflict, constraintField(pgErr))
	case pgSerializationFail, pgDeadlockDetected:
		return fmt.Errorf("%s: %w: concurrent transaction (SQLSTATE %s): %w", op, ErrConflict, pgErr.Code, err)
	case pgForeignKeyViolation:
		return fmt.Errorf("%s: %w: referenced row does not exist (%s)", op, ErrNotFound, pgErr.ConstraintName)
	case pgCheckViolation, pgNotNullViolation:
		return fmt.Errorf("%s: %w", op, &InvalidInputError{
			Field: constraintField(pgErr), Problem: "violates database constraint " + pgErr.ConstraintName})
	case pgStringTooLong, pgInvalidTextRep, pgUntranslatableChar, pgCharNotInRepertoire:
		return fmt.Errorf("%s: %w", op, &InvalidInputError{
			Field: constraintField(pgErr), Problem: "rejected by the database (SQLSTATE " + pgErr.Code + ")"})
	}
	return fmt.Errorf("%s: %w", op, err)
}

// constraintField names the column a constraint protects, or the constraint
// itself when PostgreSQL does not say, or "value" when it says neither.
func constraintField(pgErr *pgconn.PgError) string {
	switch {
	case pgErr.ColumnName != "":
		return pgErr.ColumnName
	case pgErr.ConstraintName != "":
		return pgErr.ConstraintName
	}
	return "value"
}
