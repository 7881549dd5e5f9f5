package statestore_test

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/drydock-go/statemgmt/statestore"
)

// Which errors make a FailoverAware store reset its pool: those a failover
// produces, never a lost race, bad input or the caller's own cancellation.
func TestFailoverErrorClassification(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"read-only transaction", &pgconn.PgError{Code: "25006"}, true},
		{"admin shutdown", fmt.Errorf("op: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"crash shutdown", &pgconn.PgError{Code: "57P02"}, true},
		{"cannot connect now", &pgconn.PgError{Code: "57P03"}, true},
		{"statement timeout", &pgconn.PgError{Code: "57014"}, true},
		{"refused target", fmt.Errorf("connect: %w", statestore.ErrNotPrimary), true},
		{"deadline", context.DeadlineExceeded, true},
		{"connection cut", io.ErrUnexpectedEOF, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, false},
		{"no rows", pgx.ErrNoRows, false},
		{"caller cancelled", context.Canceled, false},
	} {
		if got := statestore.FailoverErrorForTest(c.err); got != c.want {
			t.Errorf("%s: resets the pool = %v, want %v", c.name, got, c.want)
		}
	}
}
