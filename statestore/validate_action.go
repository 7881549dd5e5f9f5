package statestore

// ValidateAction checks an action name by the rule CreateTasks applies
// (1-64 characters of a-z, 0-9 and _, starting with a letter), for callers
// that take action names to filter by, such as statectl task list --action:
// a filter no task can match is then a clear error, not an empty result.
// It returns an *InvalidInputError for field "action" (errors.Is
// ErrInvalidInput), or nil.
func ValidateAction(action string) error { return validateAction(action, "action") }
