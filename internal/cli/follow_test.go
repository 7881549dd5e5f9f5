package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drydock-go/statemgmt/statestore"
)

// syncBuffer is a bytes.Buffer safe to read while statectl writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// withAppName names the connections statectl opens, so the test can find
// and kill exactly those.
func withAppName(url, name string) string {
	switch {
	case !strings.Contains(url, "://"):
		return url + " application_name=" + name
	case strings.Contains(url, "?"):
		return url + "&application_name=" + name
	default:
		return url + "?application_name=" + name
	}
}

// msg tail -f survives the database dropping its connections (as in a
// server restart: every backend killed, the listener's included) twice,
// and goes on after the last message it printed: each message printed
// exactly once.
func TestTailFollowReconnectsAndResumes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url, s := setup(t)
	task, err := s.CreateTask(ctx, statestore.NewTask{Action: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	appendMsg := func(text string) {
		t.Helper()
		if _, err := s.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: text}); err != nil {
			t.Fatal(err)
		}
	}
	appendMsg("m1")
	appendMsg("m2")

	var stdout, stderr syncBuffer
	tailCtx, stopTail := context.WithCancel(ctx)
	defer stopTail()
	exited := make(chan int, 1)
	go func() {
		exited <- Main(tailCtx, []string{"--database-url", withAppName(url, "statectl_tail_test"),
			"msg", "tail", "-f", task.ID.String()}, strings.NewReader(""), &stdout, &stderr)
	}()
	waitFor := func(text string) {
		t.Helper()
		for !strings.Contains(stdout.String(), text) {
			select {
			case code := <-exited:
				t.Fatalf("msg tail -f exited (%d) before printing %q\nstdout: %s\nstderr: %s", code, text, stdout.String(), stderr.String())
			case <-ctx.Done():
				t.Fatalf("never printed %q\nstdout: %s\nstderr: %s", text, stdout.String(), stderr.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	kill := func() {
		t.Helper()
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = 'statectl_tail_test'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatal("no statectl connection to kill")
		}
	}
	waitFor(" m2")
	for i := 3; i <= 4; i++ {
		kill()
		appendMsg(fmt.Sprintf("m%d", i))
		waitFor(fmt.Sprintf(" m%d", i))
	}
	stopTail()
	if code := <-exited; code != 0 {
		t.Fatalf("exit code %d after Ctrl-C\nstderr: %s", code, stderr.String())
	}
	for i := 1; i <= 4; i++ {
		if n := strings.Count(stdout.String(), fmt.Sprintf("#%d ", i)); n != 1 {
			t.Errorf("message #%d printed %d times\nstdout: %s", i, n, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "retrying") {
		t.Errorf("stderr does not say the connection was lost: %s", stderr.String())
	}
}
