//go:build tools

// Package tools pins the versions of the code generator, migration tool,
// test runner (gotestsum) and linter this module runs with `go run`, so
// `go run github.com/sqlc-dev/sqlc/cmd/sqlc` always uses the version
// recorded in go.mod.
package tools

import (
	_ "github.com/jackc/tern/v2"
	_ "github.com/sqlc-dev/sqlc/cmd/sqlc"
	_ "gotest.tools/gotestsum"
	_ "honnef.co/go/tools/cmd/staticcheck"
)
