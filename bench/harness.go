// Shared harness of the comparison program: databases, pools, stores,
// timing helpers and the JSON record writer every scenario uses.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/drydock-go/statemgmt/internal/faultproxy"
	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// proxyTo starts a TCP proxy in front of url's server and returns a
// connection string through it.
func proxyTo(url string) (*faultproxy.Proxy, string, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, "", err
	}
	network, target := "tcp", fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
	if strings.HasPrefix(cfg.Host, "/") {
		network, target = "unix", fmt.Sprintf("%s/.s.PGSQL.%d", cfg.Host, cfg.Port)
	}
	p, err := faultproxy.Start(network, target)
	if err != nil {
		return nil, "", err
	}
	via := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable", p.Addr().Port, cfg.User, cfg.Database)
	if cfg.Password != "" {
		via += " password='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(cfg.Password) + "'"
	}
	return p, via, nil
}

// ---- River's side ----

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type bench struct{ out *json.Encoder }

func (b *bench) emit(r record) {
	_ = b.out.Encode(r)
	fmt.Fprintf(os.Stderr, "  %-10s %-22s %12.2f %s\n", r.System, r.Metric, r.Value, r.Unit)
}

// ratio emits ours/theirs for a metric.
func (b *bench) ratio(scenario, metric string, ours, theirs float64, note string) {
	if theirs == 0 {
		return
	}
	b.emit(record{Scenario: scenario, System: "ratio", Metric: metric + " ours/theirs", Value: ours / theirs, Unit: note})
}

// database gives a scenario empty tables of both systems: a fresh database
// from the test-database provider, or the given one truncated.
func database(ctx context.Context, cfg *config) (string, func(), error) {
	url, cleanup := cfg.databaseURL, func() {}
	if url == "" {
		srv, err := statetest.DefaultServer(ctx)
		if err != nil {
			return "", nil, err
		}
		db, err := srv.CreateDatabase(ctx)
		if err != nil {
			return "", nil, err
		}
		url = db.URL
		cleanup = func() { _ = srv.DropDatabase(context.Background(), db.Name) }
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	if _, err := statestore.Migrate(ctx, conn, quiet); err != nil {
		return "", nil, err
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return "", nil, err
	}
	defer pool.Close()
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return "", nil, err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return "", nil, fmt.Errorf("river migrations: %w", err)
	}
	if cfg.databaseURL != "" {
		if _, err := conn.Exec(ctx, `TRUNCATE tasks, result_message, build_data, boot_action, boot_action_status,
			active_instance, leader_term, river_job, river_leader, river_queue`); err != nil {
			return "", nil, fmt.Errorf("reset tables: %w", err)
		}
	}
	return url, cleanup, nil
}

func newPool(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = maxConns
	return pgxpool.NewWithConfig(ctx, cfg)
}

// progress prints f() every 2 s until the returned stop is called.
func progress(label string, f func() string) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(os.Stderr, "  … %s: %s\n", label, f())
			}
		}
	}()
	return func() { close(done) }
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pgxTx is the transaction type of River's pgx driver.
type pgxTx = pgx.Tx

// quietStore opens a store on a fresh database of the scenario's own (see
// database) over a pool of 4 connections; closeAll closes the store and the
// pool and drops the database.
func quietStore(ctx context.Context, cfg *config, opts statestore.Options) (*statestore.Store, *pgxpool.Pool, func(), error) {
	url, cleanup, err := database(ctx, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	pool, err := newPool(ctx, url, 4)
	if err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	s := statestore.New(pool, opts)
	return s, pool, func() { s.Close(); pool.Close(); cleanup() }, nil
}

// walOf runs fn in a transaction of its own and returns the WAL bytes
// that transaction wrote, records and full-page images, read back with
// pg_walinspect by transaction id: other sessions' writes do not count.
func walOf(ctx context.Context, pool *pgxpool.Pool, s *statestore.Store, fn func(s *statestore.Store) error) (float64, error) {
	var before, xid string
	if err := pool.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&before); err != nil {
		return 0, err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit: a no-op
	if err := tx.QueryRow(ctx, "SELECT (pg_current_xact_id()::text::numeric % 4294967296)::text").Scan(&xid); err != nil {
		return 0, err
	}
	if err := fn(s.WithTx(tx)); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	var bytes float64
	err = pool.QueryRow(ctx, `SELECT coalesce(sum(record_length), 0)::float8
		FROM pg_get_wal_records_info($1::pg_lsn, pg_current_wal_flush_lsn()) WHERE xid::text = $2`, before, xid).Scan(&bytes)
	return bytes, err
}

func median(vs []float64) float64 {
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// ---- appendbatch ----
