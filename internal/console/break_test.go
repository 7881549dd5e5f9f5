package console_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/net/html"

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

// Every response carries the security headers, not only the pages that
// render: errors of every kind (400, 404, 405, 503, a database failure's
// 500), redirects, static assets and their 404s, and the live stream. With
// the database unreachable through a URL holding a password, every page is
// a 500 that names neither the password nor the cause, and the log, which
// gets the cause, does not hold the password either.
func TestBreakSecurityHeadersOnEveryResponseAndNoPasswordWhenTheDatabaseIsDown(t *testing.T) {
	const password = "pw-Zq8-never-shown"
	f := seed(t, 3, 1)
	// Served directly, not behind a ServeMux of the test's: a mux in front
	// answers some requests itself (it redirects /console and unclean paths
	// such as /console/tasks/../nodes), without the console's headers.
	lh, err := console.New(f.store, console.Options{Prefix: prefix, MaxStreams: 1})
	if err != nil {
		t.Fatal(err)
	}
	live := httptest.NewServer(lh)
	t.Cleanup(live.Close)

	var logs bytes.Buffer
	var logMu sync.Mutex
	pool, err := pgxpool.New(context.Background(), "postgres://admin:"+password+"@127.0.0.1:1/gone?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	down := statestore.New(pool, statestore.Options{DisableListen: true, DisableNotify: true})
	t.Cleanup(down.Close)
	h, err := console.New(down, console.Options{Prefix: prefix,
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{mu: &logMu, w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	dead := httptest.NewServer(h)
	t.Cleanup(dead.Close)

	// Hold the one stream slot so the next stream is refused with 503.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	events := prefix + "/tasks/" + f.root.ID.String() + "/events"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, live.URL+events, nil)
	if err != nil {
		t.Fatal(err)
	}
	held, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Body.Close()
	checkHeaders := func(what string, h http.Header) {
		t.Helper()
		for k, want := range map[string]string{"Content-Security-Policy": console.ContentSecurityPolicy,
			"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %s %q, want %q", what, k, got, want)
			}
		}
	}
	checkHeaders("the live stream", held.Header)

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		srv    *httptest.Server
		method string
		path   string
		code   int
	}{
		{live, http.MethodGet, "/tasks", 200},
		{live, http.MethodHead, "/tasks", 200},
		{live, http.MethodGet, "/static/console.js", 200},
		{live, http.MethodGet, "/static/console.css", 200},
		{live, http.MethodGet, "/static/favicon.svg", 200},
		{live, http.MethodGet, "/static/nope.js", 404},
		{live, http.MethodGet, "/static/..%2fconsole.go", 404},
		{live, http.MethodGet, "", 301},
		{live, http.MethodGet, "/tasks/../nodes", 307}, // ServeMux cleans the path, keeping the method
		{live, http.MethodGet, "/tasks?status=bogus", 400},
		{live, http.MethodGet, "/tasks/nope", 400},
		{live, http.MethodGet, "/tasks/" + uuid.NewString(), 404},
		{live, http.MethodGet, "/nowhere", 404},
		{live, http.MethodPost, "/tasks", 405},
		{live, http.MethodPost, "/tasks/../tasks", 405},
		{live, http.MethodPut, "/tasks/%2e%2e/tasks", 405},
		{live, http.MethodGet, "/tasks/x%2F..%2F..%2Fnodes", 400},
		{live, http.MethodGet, "/nodes/..%2F..%2Fetc", 400},
		{live, http.MethodDelete, "/tasks/" + f.root.ID.String(), 405},
		{live, http.MethodGet, events, 503},
		{dead, http.MethodGet, "/tasks", 500},
		{dead, http.MethodGet, "/tasks?status=queued&action=deploy_node", 500},
		{dead, http.MethodGet, "/tasks/" + f.root.ID.String(), 500},
		{dead, http.MethodGet, events, 500},
		{dead, http.MethodGet, "/leadership", 500},
		{dead, http.MethodGet, "/nodes", 500},
		{dead, http.MethodGet, "/nodes/node-01", 500},
	} {
		u := tc.srv.URL + prefix + tc.path
		if tc.path == events {
			u = tc.srv.URL + events
		}
		// The raw path reaches the server as written (no client-side cleaning).
		req, err := http.NewRequestWithContext(ctx, tc.method, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = req.URL.EscapedPath()
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		what := fmt.Sprintf("%s %s", tc.method, u)
		if resp.StatusCode != tc.code {
			t.Errorf("%s: %d, want %d", what, resp.StatusCode, tc.code)
		}
		checkHeaders(what, resp.Header)
		if strings.Contains(string(body), password) || strings.Contains(string(body), "127.0.0.1:1") {
			t.Errorf("%s: the page shows the database's address or password: %s", what, body)
		}
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "the store failed") && !strings.Contains(logs.String(), "err=") {
		t.Errorf("the causes were not logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), password) {
		t.Errorf("the log holds the database password: %s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Keyset paging while another connection keeps adding tasks (of the very
// action and status filtered on): following Next lists every task that
// existed before the first page exactly once, and no task twice.
func TestBreakPagingWhileTasksAreAdded(t *testing.T) {
	f := seed(t, 120, 2)
	srv := serve(t, f, console.Options{PageSize: 7})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, tc := range []struct {
		query  string
		filter statestore.TaskFilter
	}{
		{"", statestore.TaskFilter{}},
		{"status=queued", statestore.TaskFilter{Statuses: []statestore.TaskStatus{statestore.StatusQueued}}},
		{"action=deploy_node", statestore.TaskFilter{Actions: []string{"deploy_node"}}},
		{"status=queued&status=requested&action=deploy_node,verify_site", statestore.TaskFilter{
			Statuses: []statestore.TaskStatus{statestore.StatusQueued, statestore.StatusRequested},
			Actions:  []string{"deploy_node", "verify_site"}}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			tc.filter.Limit = 10000
			before, err := f.store.ListTasks(ctx, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			added := make(chan error, 1)
			go func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						added <- nil
						return
					default:
					}
					_, err := f.store.CreateTasks(ctx,
						statestore.NewTask{Action: "deploy_node", CreatedBy: fmt.Sprintf("late-%d", i)},
						statestore.NewTask{Action: "verify_site", Status: statestore.StatusRequested},
						statestore.NewTask{Action: "prepare_site"})
					if err != nil {
						added <- err
						return
					}
				}
			}()
			seen := map[string]int{}
			pages := 0
			for next := prefix + "/tasks?" + tc.query; next != ""; pages++ {
				code, _, body := fetch(t, http.MethodGet, srv.URL+next)
				if code != http.StatusOK {
					t.Fatalf("GET %s: %d", next, code)
				}
				for _, m := range rowPattern.FindAllStringSubmatch(body, -1) {
					seen[m[1]]++
				}
				next = ""
				if m := nextPattern.FindStringSubmatch(body); m != nil {
					next = html.UnescapeString(m[1])
				}
				if pages > 1000 {
					t.Fatal("paging does not end")
				}
			}
			close(stop)
			if err := <-added; err != nil {
				t.Fatal(err)
			}
			for id, n := range seen {
				if n > 1 {
					t.Errorf("task %s listed %d times", id, n)
				}
			}
			for _, tk := range before.Tasks {
				if seen[tk.ID.String()] != 1 {
					t.Errorf("task %s (there before the first page) listed %d times", tk.ID, seen[tk.ID.String()])
				}
			}
			t.Logf("%d pages, %d tasks listed, %d there before", pages, len(seen), len(before.Tasks))
		})
	}
}

// A task deleted (by retention) while its page follows it: the stream
// says so with a "gone" event and ends, instead of heartbeating for ever
// over a task that no longer exists (and the browser, told, stops
// reconnecting to a 404).
func TestBreakStreamEndsWhenTheTaskIsDeleted(t *testing.T) {
	f := seed(t, 3, 1)
	srv := serve(t, f, console.Options{Heartbeat: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	task, err := f.store.CreateTask(ctx, statestore.NewTask{Action: "doomed"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: "before"}); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+prefix+"/tasks/"+task.ID.String()+"/events?after=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	readEvents(t, r, 1) // the stream is following the task
	if _, err := f.store.DeleteTasksCreatedBefore(ctx, time.Now().Add(time.Hour), statestore.RetentionOptions{IncludeActive: true}); err != nil {
		t.Fatal(err)
	}
	var rest strings.Builder
	if _, err := io.Copy(&rest, r); err != nil { // until the handler ends the stream
		t.Fatalf("the stream of a deleted task did not end: %v (got %q)", err, rest.String())
	}
	if !strings.Contains(rest.String(), "event: gone\n") {
		t.Errorf("the stream ended without a gone event: %q", rest.String())
	}
}

// A stored value cannot split a stream event by any of the line ends SSE
// knows (LF, CR, CRLF), in any field the event carries, Extra included
// (stored with whitespace of its own between the JSON tokens): the raw
// stream holds no CR at all, each event one data line, and every field
// reads back as stored.
func TestBreakStreamEventsSurviveEveryLineEnd(t *testing.T) {
	f := seed(t, 3, 1)
	srv := serve(t, f, console.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	task, err := f.store.CreateTask(ctx, statestore.NewTask{Action: "line_ends"})
	if err != nil {
		t.Fatal(err)
	}
	nasty := "a\rdata: {\"message\":\"cr\"}\r\rb\r\nevent: failure\r\n\u2028\u2029\u0085</script>"
	sent := statestore.NewMessage{Message: nasty, Context: nasty[:40], ContextType: "t\rx",
		Extra: []byte("{\r\n\t\"k\" :\r [\"" + `\r\n\u2028</script>` + "\"\r] }")}
	if _, err := f.store.AppendMessage(ctx, task.ID, sent); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+prefix+"/tasks/"+task.ID.String()+"/events?after=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw bytes.Buffer
	r := bufio.NewReader(io.TeeReader(resp.Body, &raw))
	events := readEvents(t, r, 1)
	if bytes.ContainsRune(raw.Bytes(), '\r') {
		t.Fatalf("the stream holds a CR, which ends an SSE line: %q", raw.String())
	}
	ev := events[len(events)-1]
	if len(ev.fields["data"]) != 1 || len(ev.fields) != 3 {
		t.Fatalf("event fields %v; want one id, one event, one data", ev.fields)
	}
	var got struct {
		Message     string          `json:"message"`
		Context     string          `json:"context"`
		ContextType string          `json:"context_type"`
		Extra       json.RawMessage `json:"extra"`
	}
	if err := json.Unmarshal([]byte(ev.fields["data"][0]), &got); err != nil {
		t.Fatal(err)
	}
	var wantExtra, gotExtra any
	if err := json.Unmarshal(sent.Extra, &wantExtra); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got.Extra, &gotExtra); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]any{sent.Message, sent.Context, sent.ContextType, wantExtra},
		[]any{got.Message, got.Context, got.ContextType, gotExtra}); diff != "" {
		t.Errorf("streamed (-stored +streamed):\n%s", diff)
	}
}

// A reconnecting EventSource's Last-Event-ID is input like ?after=: a bad
// one is a 400 naming the header, and it wins over ?after=.
func TestBreakBadLastEventIDNamesTheHeader(t *testing.T) {
	f := seed(t, 3, 1)
	srv := serve(t, f, console.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, id := range []string{"-1", "x", "99999999999999999999", "1e3", "+1x"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+prefix+"/tasks/"+f.root.ID.String()+"/events?after=0", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Last-Event-ID", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "Last-Event-ID: must be a message sequence number") {
			t.Errorf("Last-Event-ID %q: %d; want 400 naming Last-Event-ID", id, resp.StatusCode)
		}
	}
}
