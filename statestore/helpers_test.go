package statestore_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// newStore gives the test a store over a fresh database.
func newStore(t testing.TB, opts statestore.Options) (*statestore.Store, *pgxpool.Pool) {
	t.Helper()
	pool := statetest.NewPool(t)
	s := statestore.New(pool, opts)
	t.Cleanup(s.Close)
	return s, pool
}

// queryCounter counts the statements a pool sends.
type queryCounter struct{ n atomic.Int64 }

func (c *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// newCountingStore is newStore with every statement counted.
func newCountingStore(t *testing.T) (*statestore.Store, *queryCounter) {
	t.Helper()
	db := statetest.New(t)
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	counter := &queryCounter{}
	cfg.ConnConfig.Tracer = counter
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := statestore.New(pool, statestore.Options{})
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
