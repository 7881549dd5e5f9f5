package hapg_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drydock-go/statemgmt/internal/hapg"
)

// TestHAPairSurvivesPrimaryKill: a row committed on the primary (synchronous
// commit) is on the promoted standby after the primary's process group is
// killed, and the multi-host URL reaches the new primary; the zombie comes
// back read-write; Close leaves nothing running.
func TestHAPairSurvivesPrimaryKill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := hapg.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	conn, err := pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t (v int); INSERT INTO t VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	if err := p.Primary.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := p.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err = pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v int
	if err := conn.QueryRow(ctx, "SELECT v FROM t").Scan(&v); err != nil || v != 42 {
		t.Fatalf("after promotion: v=%d err=%v", v, err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO t VALUES (43)"); err != nil {
		t.Fatalf("write on the promoted standby: %v", err)
	}

	if err := p.RestartAsZombie(ctx); err != nil {
		t.Fatal(err)
	}
	z, err := pgx.Connect(ctx, p.Primary.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close(ctx)
	var ro string
	if err := z.QueryRow(ctx, "SHOW transaction_read_only").Scan(&ro); err != nil || ro != "off" {
		t.Fatalf("zombie: transaction_read_only=%q err=%v", ro, err)
	}
}
