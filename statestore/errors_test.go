package statestore

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
)

func TestMapError(t *testing.T) {
	other := errors.New("connection reset by peer")
	tests := []struct {
		name      string
		in        error
		sentinel  error
		wantField string
	}{
		{"no rows", pgx.ErrNoRows, ErrNotFound, ""},
		{"wrapped no rows", fmt.Errorf("scan: %w", pgx.ErrNoRows), ErrNotFound, ""},
		{"closed pool", puddle.ErrClosedPool, ErrClosed, ""},
		{"unique", &pgconn.PgError{Code: "23505", ConstraintName: "tasks_pkey"}, ErrConflict, ""},
		{"unique names key columns", &pgconn.PgError{Code: "23505", ConstraintName: "tasks_pkey", TableName: "tasks",
			Detail: "Key (task_id)=(0190b7f4-0000-7000-8000-000000000001) already exists."}, ErrConflict, ""},
		{"serialization", &pgconn.PgError{Code: "40001"}, ErrConflict, ""},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, ErrConflict, ""},
		{"foreign key", &pgconn.PgError{Code: "23503", ConstraintName: "result_message_task_id_fkey"}, ErrNotFound, ""},
		{"check names the column", &pgconn.PgError{Code: "23514", TableName: "tasks", ConstraintName: "tasks_status_check"}, ErrInvalidInput, "status"},
		{"check of a data format", &pgconn.PgError{Code: "23514", TableName: "build_data", ConstraintName: "build_data_data_format_check"}, ErrInvalidInput, "data_format"},
		{"irregular check", &pgconn.PgError{Code: "23514", TableName: "tasks", ConstraintName: "tasks_claim_pair"}, ErrInvalidInput, "claimed_by"},
		{"unknown check", &pgconn.PgError{Code: "23514", TableName: "t", ConstraintName: "weird"}, ErrInvalidInput, "value"},
		{"numeric out of range", &pgconn.PgError{Code: "22003"}, ErrInvalidInput, "value"},
		{"not null names column", &pgconn.PgError{Code: "23502", ColumnName: "action"}, ErrInvalidInput, "action"},
		{"bad json", &pgconn.PgError{Code: "22P02"}, ErrInvalidInput, "value"},
		{"NUL byte", &pgconn.PgError{Code: "22021"}, ErrInvalidInput, "value"},
		{"other", other, other, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mapError("get task", tc.in)
			if !errors.Is(got, tc.sentinel) {
				t.Fatalf("mapError(%v) = %v, want it to wrap %v", tc.in, got, tc.sentinel)
			}
			if !strings.HasPrefix(got.Error(), "get task: ") {
				t.Errorf("error %q does not name the operation", got)
			}
			var inv *InvalidInputError
			if tc.wantField != "" && (!errors.As(got, &inv) || inv.Field != tc.wantField) {
				t.Errorf("mapError(%v) = %v, want invalid field %q", tc.in, got, tc.wantField)
			}
			var pgErr *pgconn.PgError
			if errors.As(tc.in, &pgErr) && pgErr.ConstraintName != "" && strings.Contains(got.Error(), pgErr.ConstraintName) {
				t.Errorf("error %q names the constraint instead of the field", got)
			}
			if strings.Contains(got.Error(), "0190b7f4") {
				t.Errorf("error %q repeats a value", got)
			}
		})
	}
	if mapError("x", nil) != nil {
		t.Fatal("mapError(nil) != nil")
	}
}
