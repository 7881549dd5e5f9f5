// Package statetest gives each test an isolated, fully migrated PostgreSQL
// database, fast, for this module's tests and for the integration tests of
// programs built on statestore.
//
//	func TestMain(m *testing.M) { os.Exit(statetest.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		pool := statetest.NewPool(t) // a fresh database, dropped after the test
//		...
//	}
//
// The schema is migrated once per server into a template database whose name
// carries a hash of the migrations; each test gets a clone of it (CREATE
// DATABASE ... TEMPLATE). Clones are made ahead of time in the background
// (STATEMGMT_TEST_SPARES of them, default 2, held by this process alone), so
// a test rarely waits for one. The clone is dropped in the background when
// the test passes (Main waits for those drops), and kept, with its
// connection string logged, when it fails (see New for how long it lasts
// with each kind of server). The template build
// takes its lock in the postgres database, whatever database the connection
// string names, so runs against one server never both build it.
//
// The server comes from the first of these that works:
//
//  1. STATEMGMT_TEST_DATABASE_URL, then DATABASE_URL: an explicit server. A
//     URL that is set but does not answer is an error, never skipped.
//  2. libpq defaults: the PG* environment variables, the local unix socket,
//     or 127.0.0.1:5432 as user postgres.
//  3. Docker, through testcontainers-go, when a Docker engine answers
//     (image postgres:15-alpine, or STATEMGMT_TEST_POSTGRES_IMAGE) and the
//     test binary imports the statetestdocker module, which registers the
//     provider (see DockerProvider and DockerModule). It is a module of its
//     own so that importing statetest does not pull Docker into a
//     consumer's go.mod.
//  4. A throwaway cluster started from the local PostgreSQL server binaries
//     (initdb and postgres on PATH or under /usr/lib/postgresql/*/bin), on a
//     unix socket in a temporary directory; as root it runs them as the
//     postgres user. Starting one removes the directories of clusters whose
//     test binary died.
//
// STATEMGMT_TEST_SERVER=url|libpq|docker|cluster forces one of them. The user
// must be allowed to CREATE DATABASE. Servers this package started (a
// container or a cluster) are stopped by Main, or by Shutdown.
package statetest
