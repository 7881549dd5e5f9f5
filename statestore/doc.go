// Package statestore is the persistent state store of the orchestrator: a thin
// facade over the sqlc-generated queries in gen/db that adds what SQL alone
// cannot: transactions, advisory-lock leadership and per-task message
// sequencing.
//
// Data flows one way: schema/ (tern migrations) → queries/ (hand-written SQL)
// → gen/db (sqlc output, never edited by hand) → statestore (this package) →
// the caller. Callers never see driver types: ids are uuid.UUID, timestamps
// time.Time in UTC, JSON json.RawMessage.
//
// Errors wrap one of the sentinels ErrNotFound, ErrConflict, ErrNotLeader,
// ErrInvalidInput or ErrClosed; test them with errors.Is.
package statestore
