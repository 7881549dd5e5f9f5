package hapg_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
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

// TestHAPairDiesWithTestProcess: a test process that starts a pair and is
// then killed with SIGKILL (no cleanup runs) leaves no server running, and
// the next Start removes its directory.
func TestHAPairDiesWithTestProcess(t *testing.T) {
	if os.Getenv("HAPG_CHILD") != "" {
		ctx := context.Background()
		p, err := hapg.Start(ctx)
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		fmt.Printf("PORTS %d %d %s\n", p.Primary.Port, p.Standby.Port, p.Dir())
		select {} // until killed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHAPairDiesWithTestProcess$")
	cmd.Env = append(os.Environ(), "HAPG_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var ports [2]int
	var dir string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "PORTS %d %d %s", &ports[0], &ports[1], &dir); err == nil {
			break
		}
		t.Log(sc.Text())
	}
	if ports[0] == 0 {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("the child never started its pair")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // killed
	for _, port := range ports {
		deadline := time.Now().Add(time.Minute)
		for {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
			if err != nil {
				break
			}
			c.Close()
			if time.Now().After(deadline) {
				t.Fatalf("a server on port %d still runs a minute after its test process died", port)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	p, err := hapg.Start(ctx) // sweeps the dead owner's directory
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the dead test process's directory %s is still there (%v)", dir, err)
	}
}
