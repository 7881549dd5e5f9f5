package statetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Environment variables read by this package.
const (
	// EnvDatabaseURL names an explicit server for tests; it wins over DATABASE_URL.
	EnvDatabaseURL = "STATEMGMT_TEST_DATABASE_URL"
	// EnvFallbackDatabaseURL is the conventional variable, used when EnvDatabaseURL is unset.
	EnvFallbackDatabaseURL = "DATABASE_URL"
	// EnvServer forces one way of finding a server: url, libpq, docker or cluster.
	EnvServer = "STATEMGMT_TEST_SERVER"
	// EnvPostgresImage overrides the Docker image (default postgres:15-alpine).
	EnvPostgresImage = "STATEMGMT_TEST_POSTGRES_IMAGE"
)

// Source says how a server was found.
type Source string

// The four sources, in the order they are tried.
const (
	SourceURL     Source = "url"
	SourceLibpq   Source = "libpq"
	SourceDocker  Source = "docker"
	SourceCluster Source = "cluster"
)

// probeTimeout bounds each attempt to reach a candidate server.
const probeTimeout = 3 * time.Second

// Server is a PostgreSQL server that hands out test databases.
type Server struct {
	// Source says how the server was found.
	Source Source
	// AdminURL connects to a maintenance database of the server as a user
	// that may create databases. It may contain a password: do not log it;
	// use Redact.
	AdminURL string

	// stop stops a server this package started; kept names the databases
	// failed tests kept, which it keeps if it can.
	stop    func(ctx context.Context, kept []string) error
	restart func(context.Context) error
	// clusterDir is a throwaway cluster's directory.
	clusterDir string

	keptMu sync.Mutex
	kept   []string // databases of failed tests, kept for inspection
	// unfinished names the databases whose CREATE DATABASE failed: the
	// server may have created one all the same (the answer was lost, the
	// context ended after the server got the statement); Close drops them.
	unfinished []string

	adminMu sync.Mutex
	admin   *pgxpool.Pool

	templateMu   sync.Mutex
	templateName string // set once the template is known to exist

	spares spares // databases cloned ahead, databases being dropped
}

var (
	defaultMu     sync.Mutex
	defaultServer *Server
)

// DefaultServer returns the process-wide test server, finding (and if need
// be starting) it on first use. A failure is not cached: a later call tries
// again.
func DefaultServer(ctx context.Context) (*Server, error) {
	defaultMu.Lock()
	defer defaultMu.Unlock()
	if defaultServer != nil {
		return defaultServer, nil
	}
	srv, err := findServer(ctx, systemProbes())
	if err != nil {
		return nil, err
	}
	defaultServer = srv
	return srv, nil
}

// Shutdown stops the process-wide server if this package started it (a
// container or a throwaway cluster) and forgets it. It is safe to call when
// nothing was started.
func Shutdown(ctx context.Context) error {
	defaultMu.Lock()
	srv := defaultServer
	defaultServer = nil
	defaultMu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Close(ctx)
}

// Close drops the spare databases nobody took (see TakeDatabase), waits for
// the background drops (see DropDatabaseLater), releases the server's admin
// connections and stops the server if this package started it. It returns
// the errors of those drops too.
func (s *Server) Close(ctx context.Context) error {
	dropErr := s.closeSpares(ctx)
	s.dropUnfinished(ctx)
	s.adminMu.Lock()
	if s.admin != nil {
		s.admin.Close()
		s.admin = nil
	}
	s.adminMu.Unlock()
	if s.stop == nil {
		return dropErr
	}
	stop := s.stop
	s.stop = nil
	s.keptMu.Lock()
	kept := slices.Clone(s.kept)
	s.keptMu.Unlock()
	if err := stop(ctx, kept); err != nil {
		return errors.Join(dropErr, fmt.Errorf("statetest: stop %s server: %w", s.Source, err))
	}
	return dropErr
}

// keep records that database name of failed test testName is kept, and
// returns what to log about it: where it is and, truthfully, whether it
// outlives this run.
func (s *Server) keep(name, testName, connString string) string {
	s.keptMu.Lock()
	s.kept = append(s.kept, name)
	s.keptMu.Unlock()
	switch s.Source {
	case SourceCluster:
		return fmt.Sprintf("statetest: kept database %s of failed test %s: %s; the throwaway cluster holding it is stopped "+
			"when the run ends but its directory %s is kept (the run's last output says how to start it)",
			name, testName, Redact(connString), s.clusterDir)
	case SourceDocker:
		return fmt.Sprintf("statetest: database %s of failed test %s is NOT kept after this run: the container is removed when "+
			"the run ends (until then: %s); point %s at a server of your own to keep failed tests' databases",
			name, testName, Redact(connString), EnvDatabaseURL)
	default:
		return fmt.Sprintf("statetest: kept database %s of failed test %s: %s (a test run after %v drops it)",
			name, testName, Redact(connString), StaleAfter)
	}
}

// notices receives what this package tells the person running the tests
// outside any test's log (a kept cluster's whereabouts).
var notices io.Writer = os.Stderr

// Restart stops the server and starts it again on the same data and address
// (throwaway clusters only), for tests of recovery from a server restart.
// Every connection to it breaks.
func (s *Server) Restart(ctx context.Context) error {
	if s.restart == nil {
		return fmt.Errorf("statetest: only a throwaway cluster can be restarted, not a %s server", s.Source)
	}
	return s.restart(ctx)
}

// StartCluster starts a throwaway cluster of this process's own from the
// local server binaries (see the package docs), whatever the default server
// is. Close it when done.
func StartCluster(ctx context.Context) (*Server, error) {
	dir, err := findBinaries()
	if err != nil {
		return nil, fmt.Errorf("statetest: %w", err)
	}
	return startCluster(ctx, dir)
}

// probes are the ways of finding a server, separated from the decision so
// the decision can be tested without Docker or a cluster.
type probes struct {
	getenv func(string) string
	// libpq returns an admin connection string when a server answers with
	// libpq defaults and the user may create databases.
	libpq func(ctx context.Context) (string, error)
	// docker returns nil when a Docker engine answers.
	docker func(ctx context.Context) error
	// binaries returns the directory holding initdb and postgres.
	binaries func() (string, error)
}

func systemProbes() probes {
	return probes{getenv: os.Getenv, libpq: probeLibpq, docker: probeDocker, binaries: findBinaries}
}

// choice is the outcome of choose: which source, and what it needs.
type choice struct {
	source Source
	url    string // SourceURL, SourceLibpq
	envVar string // SourceURL: which variable named it
	binDir string // SourceCluster
}

// choose decides where the test server comes from. It starts nothing.
func choose(ctx context.Context, p probes) (choice, error) {
	forced := Source(strings.ToLower(strings.TrimSpace(p.getenv(EnvServer))))
	switch forced {
	case "", SourceURL, SourceLibpq, SourceDocker, SourceCluster:
	default:
		return choice{}, fmt.Errorf("statetest: %s=%q: must be one of url, libpq, docker, cluster", EnvServer, forced)
	}
	want := func(s Source) bool { return forced == "" || forced == s }
	var tried []string

	if want(SourceURL) {
		for _, name := range []string{EnvDatabaseURL, EnvFallbackDatabaseURL} {
			if v := p.getenv(name); v != "" {
				return choice{source: SourceURL, url: v, envVar: name}, nil
			}
		}
		tried = append(tried, fmt.Sprintf("%s and %s are unset", EnvDatabaseURL, EnvFallbackDatabaseURL))
	}
	if want(SourceLibpq) {
		u, err := p.libpq(ctx)
		if err == nil {
			return choice{source: SourceLibpq, url: u}, nil
		}
		tried = append(tried, "libpq defaults: "+err.Error())
	}
	if want(SourceDocker) {
		err := p.docker(ctx)
		if err == nil {
			return choice{source: SourceDocker}, nil
		}
		tried = append(tried, "docker: "+err.Error())
	}
	if want(SourceCluster) {
		dir, err := p.binaries()
		if err == nil {
			return choice{source: SourceCluster, binDir: dir}, nil
		}
		tried = append(tried, "local binaries: "+err.Error())
	}
	return choice{}, fmt.Errorf("%w\ntried:\n  - %s", ErrNoServer, strings.Join(tried, "\n  - "))
}

// ErrNoServer means no way of getting a PostgreSQL server worked. Its text
// lists the four ways to provide one.
var ErrNoServer = errors.New(`statetest: no PostgreSQL server for tests; provide one of:
  1. ` + EnvDatabaseURL + ` (or ` + EnvFallbackDatabaseURL + `): a connection URL whose user may CREATE DATABASE;
  2. a server reachable with libpq defaults (PGHOST, PGPORT, PGUSER, ...; the local socket; or 127.0.0.1:5432 as postgres);
  3. a running Docker engine (testcontainers starts postgres:15-alpine);
  4. PostgreSQL server binaries (initdb, postgres) on PATH or under /usr/lib/postgresql/*/bin`)

// findServer chooses a source and makes it ready.
func findServer(ctx context.Context, p probes) (*Server, error) {
	c, err := choose(ctx, p)
	if err != nil {
		return nil, err
	}
	switch c.source {
	case SourceURL:
		if err := checkAdmin(ctx, c.url); err != nil {
			return nil, fmt.Errorf("statetest: server named by %s (%s): %w", c.envVar, Redact(c.url), err)
		}
		return &Server{Source: SourceURL, AdminURL: c.url}, nil
	case SourceLibpq:
		return &Server{Source: SourceLibpq, AdminURL: c.url}, nil
	case SourceDocker:
		return startDocker(ctx, p.getenv(EnvPostgresImage))
	default:
		return startCluster(ctx, c.binDir)
	}
}

// libpqCandidates are tried in order: pure libpq defaults (PG* variables,
// socket, current OS user), then the postgres user, then TCP on loopback.
var libpqCandidates = []string{"", "user=postgres", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"}

func probeLibpq(ctx context.Context) (string, error) {
	var errs []string
	for _, c := range libpqCandidates {
		err := checkAdmin(ctx, c)
		if err == nil {
			return c, nil
		}
		label := c
		if label == "" {
			label = "(defaults)"
		}
		errs = append(errs, label+": "+err.Error())
	}
	return "", errors.New(strings.Join(errs, "; "))
}

// checkAdmin connects to connString and checks that its user may create
// databases.
func checkAdmin(ctx context.Context, connString string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return fmt.Errorf("parse connection string: %w", err)
	}
	cfg.ConnectTimeout = probeTimeout
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var may bool
	if err := conn.QueryRow(ctx,
		"SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user").Scan(&may); err != nil {
		return fmt.Errorf("check privileges: %w", err)
	}
	if !may {
		return errors.New("connected, but the user may not CREATE DATABASE")
	}
	return nil
}

// withDatabase returns connString pointing at database name instead.
func withDatabase(connString, name string) (string, error) {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			return "", fmt.Errorf("statetest: parse connection URL: %w", err)
		}
		u.Path, u.RawPath = "/"+name, ""
		// A database named in the query wins over the path: drop it.
		u.RawQuery = withoutQueryKeys(u.RawQuery, "dbname", "database")
		return u.String(), nil
	}
	// Keyword/value form: a later keyword overrides an earlier one.
	return strings.TrimSpace(connString + " dbname=" + name), nil
}

// withoutQueryKeys returns the raw query string rawQuery without the
// parameters named keys, keeping the others as written and in order.
func withoutQueryKeys(rawQuery string, keys ...string) string {
	var kept []string
	for _, part := range strings.Split(rawQuery, "&") {
		if part == "" {
			continue
		}
		key, _, _ := strings.Cut(part, "=")
		if k, err := url.QueryUnescape(key); err == nil {
			key = k
		}
		if !slices.Contains(keys, key) {
			kept = append(kept, part)
		}
	}
	return strings.Join(kept, "&")
}

// Redact returns connString with any password replaced, fit for logs.
func Redact(connString string) string {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			return "(unparseable connection URL)"
		}
		q := u.Query()
		changed := false
		for k := range q {
			if strings.Contains(strings.ToLower(k), "password") { // password, sslpassword
				q.Set(k, "xxxxx")
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	return kvPassword.ReplaceAllString(connString, "password=xxxxx")
}

// kvPassword matches a password in a keyword/value connection string, quoted
// (with backslash escapes) or bare.
var kvPassword = regexp.MustCompile(`(?i)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)
