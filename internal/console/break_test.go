package console_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/drydock-go/statemgmt/internal/console"
	"github.com/drydock-go/statemgmt/statestore"
)

// A client that opens a stream and never reads it (slowloris) must not hold
// its MaxStreams slot for ever: once the kernel buffers are full the
// stream's write blocks, and the write timeout ends the handler, freeing the
// slot for the next client.
func TestBreakStreamClientThatNeverReadsLosesItsSlot(t *testing.T) {
	f := seed(t, 3, 1)
	srv := serve(t, f, console.Options{MaxStreams: 1, Heartbeat: 50 * time.Millisecond, StreamWriteTimeout: 500 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	task, err := f.store.CreateTask(ctx, statestore.NewTask{Action: "flood"})
	if err != nil {
		t.Fatal(err)
	}
	// 24 MB of messages: far more than loopback's socket buffers hold.
	big := strings.Repeat("x", 60000)
	for range 8 {
		batch := make([]statestore.NewMessage, 50)
		for i := range batch {
			batch[i] = statestore.NewMessage{Message: big}
		}
		if _, err := f.store.AppendMessages(ctx, task.ID, batch...); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	path := prefix + "/tasks/" + task.ID.String() + "/events?after=0"
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: console\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	// Read the status line only, so the stream is known to hold the slot;
	// then never read again.
	if line, err := bufio.NewReaderSize(conn, 16).ReadString('\n'); err != nil || !strings.Contains(line, " 200 ") {
		t.Fatalf("the stalled stream: %q %v", line, err)
	}
	url := srv.URL + path
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("the slot of the stalled stream never freed: %v", err)
		}
		code := resp.StatusCode
		resp.Body.Close()
		if code == http.StatusOK {
			return
		}
		if code != http.StatusServiceUnavailable {
			t.Fatalf("status %d", code)
		}
		select {
		case <-ctx.Done():
			t.Fatal("the slot of the stalled stream never freed")
		case <-time.After(100 * time.Millisecond):
		}
	}
}
