package statestore

import (
	"context"
	"time"
)

// ExecForTest runs a statement on the store's connection or transaction, for
// tests that keep bookkeeping tables of their own next to the store's rows.
func (s *Store) ExecForTest(ctx context.Context, sql string, args ...any) error {
	_, err := s.conn.Exec(ctx, sql, args...)
	return err
}

// DecodePresentedKey exposes the constant-time key decoder to the tests.
func DecodePresentedKey(p []byte) ([32]byte, bool) {
	k, ok := decodePresentedKey(p)
	return k, ok == 1
}

// MapErrorForTest exposes the store's error mapping, for tests that provoke
// real server errors with raw SQL.
func MapErrorForTest(op string, err error) error { return mapError(op, err) }

// ConstraintColumnForTest exposes the constraint-name-to-column rule.
func ConstraintColumnForTest(table, constraint string) string {
	return constraintColumn(table, constraint)
}

// DataFormatPatternForTest is the Go side of build_data_data_format_check.
const DataFormatPatternForTest = dataFormatPattern

// SetListenRetriedForTest makes the store's listener report each reconnect
// delay to f before sleeping it. Call it before the listener starts.
func SetListenRetriedForTest(s *Store, f func(time.Duration)) {
	s.wake.retried = f
}

// SetTelemetryOffForTest makes the stores created afterwards carry no
// instrumentation at all (the baseline of the instrumentation benchmark);
// it returns a function that restores the setting.
func SetTelemetryOffForTest(off bool) (restore func()) {
	old := telemetryOff
	telemetryOff = off
	return func() { telemetryOff = old }
}
