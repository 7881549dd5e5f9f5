package hapg_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drydock-go/statemgmt/internal/hapg"
)

// TestHAFormationFailsOver (make test-ha): a pg_auto_failover formation with
// the tuned timing promotes node2 after node1 is killed; a row committed
// before the kill is there.
func TestHAFormationFailsOver(t *testing.T) {
	if os.Getenv("STATEMGMT_TEST_HA") == "" {
		t.Skip("pg_auto_failover formation: make test-ha (STATEMGMT_TEST_HA=1)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f, err := hapg.StartFormation(ctx, hapg.TunedTiming)
	if errors.Is(err, hapg.ErrNoAutoFailover) {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	conn, err := pgx.Connect(ctx, f.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t (v int); INSERT INTO t VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	killed := time.Now()
	if err := f.Nodes[0].Kill(); err != nil {
		t.Fatal(err)
	}
	for {
		cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
		conn, err = pgx.Connect(cctx, f.URL("postgres"))
		if err == nil {
			_, err = conn.Exec(cctx, "INSERT INTO t VALUES (8)")
			if err != nil {
				conn.Close(ctx)
			}
		}
		ccancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no write on node2 after the kill: %v\n%s", err, f.LogTail(40))
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer conn.Close(ctx)
	t.Logf("kill → first write on the new primary: %v", time.Since(killed).Round(10*time.Millisecond))
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM t WHERE v = 7").Scan(&n); err != nil || n != 1 {
		t.Fatalf("row committed before the kill: %d (%v)", n, err)
	}
}
