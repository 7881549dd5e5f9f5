package statestore

import "context"

// SetStatementHook makes fn run at the statement boundaries of the calls
// that take several statements (tests pause or interleave work there). It
// returns a function that removes the hook.
func SetStatementHook(fn func(ctx context.Context, where string)) (remove func()) {
	statementHook.Store(&fn)
	return func() { statementHook.Store(nil) }
}
