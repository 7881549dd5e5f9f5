package statestore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/internal/faultproxy"
	"github.com/drydock-go/statemgmt/internal/pgbouncertest"
	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// viaPgBouncer: STATEMGMT_TEST_PGBOUNCER=1 runs the store's tests through
// PgBouncer in transaction pooling mode (make test does both).
var viaPgBouncer = os.Getenv("STATEMGMT_TEST_PGBOUNCER") != ""

var bouncer struct {
	once sync.Once
	b    *pgbouncertest.Bouncer
	err  error
}

// storePool opens the pool a test's store uses: direct, or through
// PgBouncer with the pooler settings.
func storePool(t testing.TB, db *statetest.Database) *pgxpool.Pool {
	t.Helper()
	url := db.URL
	if viaPgBouncer {
		bouncer.once.Do(func() {
			bouncer.b, bouncer.err = pgbouncertest.Start(context.Background(), db.URL)
		})
		if bouncer.err != nil {
			t.Fatalf("STATEMGMT_TEST_PGBOUNCER is set: %v", bouncer.err)
		}
		url = bouncer.b.URL(db.Name)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	if viaPgBouncer {
		statestore.ConfigureForPooler(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// needsListen skips a test that depends on LISTEN/NOTIFY when running
// through a transaction pooler, where LISTEN cannot work.
func needsListen(t testing.TB) {
	if viaPgBouncer {
		t.Skip("LISTEN/NOTIFY cannot work through a transaction pooler (polling covers it: TestClaimWaitPollsWithoutListen)")
	}
}

// newStore gives the test a store over a fresh database (through PgBouncer
// when STATEMGMT_TEST_PGBOUNCER is set, with LISTEN off there).
func newStore(t testing.TB, opts statestore.Options) (*statestore.Store, *pgxpool.Pool) {
	t.Helper()
	pool := storePool(t, statetest.New(t))
	if viaPgBouncer {
		opts.DisableListen = true
	}
	s := statestore.New(pool, opts)
	t.Cleanup(s.Close)
	return s, pool
}

// queryCounter counts the statements a pool sends, except the message
// wake-ups the store's notifier sends on its own time.
type queryCounter struct{ n atomic.Int64 }

func (c *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if !strings.HasPrefix(d.SQL, "-- name: NotifyMessages ") {
		c.n.Add(1)
	}
	return ctx
}
func (c *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// newCountingStore is newStore with every statement counted.
func newCountingStore(t *testing.T) (*statestore.Store, *queryCounter) {
	t.Helper()
	db := statetest.New(t)
	url := db.URL
	if viaPgBouncer {
		url = storePool(t, db).Config().ConnString()
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	if viaPgBouncer {
		statestore.ConfigureForPooler(cfg)
	}
	counter := &queryCounter{}
	cfg.ConnConfig.Tracer = counter
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := statestore.New(pool, statestore.Options{DisableListen: viaPgBouncer})
	t.Cleanup(s.Close)
	return s, counter
}

// count returns a single number from SQL (test assertions only).
func count(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// wantInvalid fails unless err is an *InvalidInputError for field.
func wantInvalid(t testing.TB, err error, field string) {
	t.Helper()
	var inv *statestore.InvalidInputError
	if !errors.As(err, &inv) || !errors.Is(err, statestore.ErrInvalidInput) {
		t.Fatalf("error = %v, want an invalid-input error for %s", err, field)
	}
	if inv.Field != field {
		t.Fatalf("invalid field = %q (%v), want %q", inv.Field, err, field)
	}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// proxyFor starts a fault proxy in front of the server of connString and
// returns it with a connection string through it (same user and database).
func proxyFor(t testing.TB, connString string) (*faultproxy.Proxy, string) {
	t.Helper()
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		t.Fatal(err)
	}
	network, target := "tcp", fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
	if strings.HasPrefix(cfg.Host, "/") {
		network, target = "unix", fmt.Sprintf("%s/.s.PGSQL.%d", cfg.Host, cfg.Port)
	}
	proxy, err := faultproxy.Start(network, target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	via := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable", proxy.Addr().Port, cfg.User, cfg.Database)
	if cfg.Password != "" {
		via += " password='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(cfg.Password) + "'"
	}
	return proxy, via
}
