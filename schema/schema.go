// Package schema holds the database schema of statemgmt as tern migrations.
//
// The .sql files in this directory are the single source of truth for the
// database: tern applies them (see statestore.Migrate) and sqlc reads them to
// generate the typed query code in gen/db. Files are named NNN_name.sql; the
// part above "---- create above / drop below ----" migrates up, the part below
// migrates down.
package schema

import "embed"

// Migrations is the embedded set of migration files, in tern's format.
//
//go:embed *.sql
var Migrations embed.FS
