package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/net/html"

	"github.com/drydock-go/statemgmt/internal/console"
	"github.com/drydock-go/statemgmt/internal/hostile"
	"github.com/drydock-go/statemgmt/statestore"
)

const prefix = "/console"

func serve(t testing.TB, f *fixture, opts console.Options) *httptest.Server {
	t.Helper()
	opts.Prefix = prefix
	h, err := console.New(f.store, opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(prefix+"/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func fetch(t testing.TB, method, url string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// injected lists whatever in a page could execute or was not put there by
// the console: scripts other than the console's own, elements that load or
// run things, event-handler and style attributes, javascript: URLs, and the
// element the payloads try to add (id "pwned").
func injected(doc *html.Node) []string {
	var found []string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script":
				if attr(n, "src") != prefix+"/static/console.js" || n.FirstChild != nil {
					found = append(found, "a script that is not the console's")
				}
			case "img", "svg", "iframe", "object", "embed", "style", "base", "form":
				if n.Data != "form" || attr(n, "id") != "filters" {
					found = append(found, "a <"+n.Data+"> element")
				}
			}
			for _, a := range n.Attr {
				k := strings.ToLower(a.Key)
				switch {
				case strings.HasPrefix(k, "on"):
					found = append(found, "an event handler attribute "+k)
				case k == "style":
					found = append(found, "a style attribute")
				case k == "id" && a.Val == "pwned":
					found = append(found, "the injected element #pwned")
				case (k == "href" || k == "src") && strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:"):
					found = append(found, "a javascript: URL")
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return found
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// text is the page's text as a browser would show it.
func text(doc *html.Node) string {
	var b strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return b.String()
}

func parse(t testing.TB, body string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// Every page that shows stored values, fed the store's hostile corpus and
// the markup payloads: each payload shows up as text, and nothing in the
// page could execute or was injected.
func TestPagesShowHostileValuesAsText(t *testing.T) {
	f := seed(t, 30, 3)
	srv := serve(t, f, console.Options{})
	var child uuid.UUID
	if subs, err := f.store.ListSubtasks(context.Background(), f.evil.ID, statestore.AllSubtasks); err != nil || len(subs) == 0 {
		t.Fatalf("subtasks of the hostile task: %v", err)
	} else {
		child = subs[0].ID
	}
	markup := func(n int) []string { // the first n payloads, as stored
		var out []string
		for _, h := range hostile.Markup[:n] {
			out = append(out, h.V)
		}
		return out
	}
	all := markup(len(hostile.Markup))
	for _, tc := range []struct {
		path string
		want []string // text the page must show verbatim
	}{
		{"/tasks", nil},
		{"/tasks?action=hostile", nil},
		{"/tasks/" + f.evil.ID.String(), all},
		{"/tasks/" + child.String(), nil},
		{"/leadership", []string{hostile.Markup[1].V, "orchestrator-2", "leading (lock held)", "resigned"}},
		{"/nodes", nil},
		{"/nodes/" + f.node, all},
	} {
		t.Run(tc.path, func(t *testing.T) {
			code, hdr, body := fetch(t, http.MethodGet, srv.URL+prefix+tc.path)
			if code != http.StatusOK {
				t.Fatalf("status %d: %.300s", code, body)
			}
			if got := hdr.Get("Content-Security-Policy"); got != console.ContentSecurityPolicy {
				t.Errorf("Content-Security-Policy %q", got)
			}
			doc := parse(t, body)
			if bad := injected(doc); len(bad) > 0 {
				t.Errorf("the page holds %s", strings.Join(bad, "; "))
			}
			shown := text(doc)
			for _, v := range tc.want {
				if !strings.Contains(shown, v) {
					t.Errorf("the page does not show %q as text", v)
				}
			}
		})
	}
}

// The console is read-only: every method but GET and HEAD is refused on
// every path, with Allow, and nothing in the database changes.
func TestOnlyGetAndHead(t *testing.T) {
	f := seed(t, 5, 1)
	srv := serve(t, f, console.Options{})
	before := dbState(t, f)
	paths := []string{"/", "/tasks", "/tasks/" + f.root.ID.String(), "/tasks/" + f.root.ID.String() + "/events",
		"/leadership", "/nodes", "/nodes/" + f.node, "/static/console.js", "/nope"}
	for _, p := range paths {
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions, "PROPFIND"} {
			code, hdr, _ := fetch(t, m, srv.URL+prefix+p)
			if code != http.StatusMethodNotAllowed || hdr.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: status %d, Allow %q; want 405 and GET, HEAD", m, p, code, hdr.Get("Allow"))
			}
		}
		if p == "/nope" || strings.HasSuffix(p, "/events") {
			continue
		}
		code, _, body := fetch(t, http.MethodHead, srv.URL+prefix+p)
		if code != http.StatusOK || body != "" {
			t.Errorf("HEAD %s: status %d, %d body bytes", p, code, len(body))
		}
	}
	if diff := cmp.Diff(before, dbState(t, f)); diff != "" {
		t.Errorf("the database changed (-before +after):\n%s", diff)
	}
}

// dbState summarises what a write would change.
func dbState(t testing.TB, f *fixture) [5]int64 {
	t.Helper()
	var v [5]int64
	err := f.pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM tasks), (SELECT sum(version) FROM tasks),
		(SELECT count(*) FROM result_message), (SELECT count(*) FROM boot_action_status), (SELECT count(*) FROM build_data)`).
		Scan(&v[0], &v[1], &v[2], &v[3], &v[4])
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var hrefPattern = regexp.MustCompile(`href="([^"]*)"`)

// Crawling every page reachable from the console's navigation finds the
// boot action key and its digest nowhere (the console never reads the digest).
func TestNoSecretOnAnyPage(t *testing.T) {
	f := seed(t, 20, 2)
	srv := serve(t, f, console.Options{PageSize: 10})
	seen := map[string]bool{}
	queue := []string{prefix + "/tasks", prefix + "/leadership", prefix + "/nodes"}
	sawNode := false
	for len(queue) > 0 && len(seen) < 400 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		code, _, body := fetch(t, http.MethodGet, srv.URL+p)
		if code != http.StatusOK {
			t.Errorf("GET %s: %d", p, code)
			continue
		}
		sawNode = sawNode || p == prefix+"/nodes/"+f.node
		for name, secret := range f.secrets {
			if strings.Contains(body, secret) {
				t.Errorf("%s shows the %s", p, name)
			}
		}
		for _, m := range hrefPattern.FindAllStringSubmatch(body, -1) {
			u := html.UnescapeString(m[1])
			if strings.HasPrefix(u, prefix+"/") && !strings.HasPrefix(u, prefix+"/static/") {
				queue = append(queue, u)
			}
		}
	}
	if !sawNode || len(seen) < 20 {
		t.Fatalf("crawled %d pages (node page: %v): the crawl proves nothing", len(seen), sawNode)
	}
	t.Logf("%d pages crawled, no secret on any", len(seen))
}

var (
	rowPattern  = regexp.MustCompile(`<tr class="task" data-id="([0-9a-f-]{36})">`)
	nextPattern = regexp.MustCompile(`<a href="([^"]*)" id="next-page"`)
)

// Filters by status and action, and keyset paging: following Next from the
// first page lists exactly the tasks the store lists for that filter, in
// its order, each once.
func TestTaskListFiltersAndPages(t *testing.T) {
	f := seed(t, 95, 2)
	srv := serve(t, f, console.Options{PageSize: 10})
	ctx := context.Background()
	for _, tc := range []struct {
		query  string
		filter statestore.TaskFilter
	}{
		{"", statestore.TaskFilter{}},
		{"status=queued", statestore.TaskFilter{Statuses: []statestore.TaskStatus{statestore.StatusQueued}}},
		{"action=prepare_site", statestore.TaskFilter{Actions: []string{"prepare_site"}}},
		{"status=running&status=complete&action=deploy_node,verify_site", statestore.TaskFilter{
			Statuses: []statestore.TaskStatus{statestore.StatusRunning, statestore.StatusComplete},
			Actions:  []string{"deploy_node", "verify_site"}}},
		{"status=requested&action=nothing_like_it", statestore.TaskFilter{
			Statuses: []statestore.TaskStatus{statestore.StatusRequested}, Actions: []string{"nothing_like_it"}}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			tc.filter.Limit = 10000
			page, err := f.store.ListTasks(ctx, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{}
			for _, tk := range page.Tasks {
				want = append(want, tk.ID.String())
			}
			got, pages := []string{}, 0
			for next := prefix + "/tasks?" + tc.query; next != ""; pages++ {
				code, _, body := fetch(t, http.MethodGet, srv.URL+next)
				if code != http.StatusOK {
					t.Fatalf("GET %s: %d", next, code)
				}
				for _, m := range rowPattern.FindAllStringSubmatch(body, -1) {
					got = append(got, m[1])
				}
				next = ""
				if m := nextPattern.FindStringSubmatch(body); m != nil {
					next = html.UnescapeString(m[1])
				}
				if pages > 100 {
					t.Fatal("paging does not end")
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("listed (-store +console):\n%s", diff)
			}
			if wantPages := max(1, (len(want)+9)/10); pages != wantPages {
				t.Errorf("%d pages for %d tasks, want %d", pages, len(want), wantPages)
			}
		})
	}
}

// Bad input in a URL is a 400 naming the parameter; unknown things 404.
func TestBadRequestsNameTheParameter(t *testing.T) {
	f := seed(t, 3, 1)
	srv := serve(t, f, console.Options{})
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/tasks?status=bogus", 400, "status: must be one of"},
		{"/tasks?action=Bad-Action", 400, "action: each must be"},
		{"/tasks?cursor=not-a-cursor", 400, "cursor: not a cursor of this list"},
		{"/tasks?status=queued&cursor=%00", 400, "cursor: not a cursor of this list"},
		{"/nodes?data=AAAA", 400, "data: not a cursor of this list"},
		{"/nodes?data=" + strings.Repeat("A", 5000), 400, "data: not a cursor of this list"},
		{"/tasks/" + f.root.ID.String() + "/events?after=99999999999999999999", 400, "after: must be a message sequence number"},
		{"/tasks/nope", 400, "task id: not a UUID"},
		{"/tasks/" + uuid.NewString(), 404, "read task: not found"},
		{"/tasks/" + f.root.ID.String() + "/events?after=-1", 400, "after: must be a message sequence number"},
		{"/tasks/" + f.root.ID.String() + "/events?after=x", 400, "after: must be a message sequence number"},
		{"/nodes/bad%20name", 400, "invalid node"},
		{"/nodes/unknown-node", 404, "nothing is recorded for this node"},
		{"/no/such/page", 404, "no such page"},
	} {
		code, _, body := fetch(t, http.MethodGet, srv.URL+prefix+tc.path)
		msg := ""
		if m := regexp.MustCompile(`id="error-message">([^<]*)<`).FindStringSubmatch(body); m != nil {
			msg = html.UnescapeString(m[1])
		}
		if code != tc.code || !strings.Contains(msg, tc.want) {
			t.Errorf("GET %s: %d %q; want %d and a message with %q", tc.path, code, msg, tc.code, tc.want)
		}
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	f := &fixture{store: statestore.New(nilPool(t), statestore.Options{DisableListen: true, DisableNotify: true})}
	for _, tc := range []struct {
		opts console.Options
		want string
	}{
		{console.Options{Prefix: "console"}, "Options.Prefix"},
		{console.Options{Prefix: "/console/"}, "Options.Prefix"},
		{console.Options{Prefix: "/a b"}, "Options.Prefix"},
		{console.Options{Prefix: `/"><script>`}, "Options.Prefix"},
		{console.Options{PageSize: -1}, "Options.PageSize"},
		{console.Options{PageSize: 1001}, "Options.PageSize"},
		{console.Options{TreeLimit: 100001}, "Options.TreeLimit"},
		{console.Options{RecentMessages: -5}, "Options.RecentMessages"},
		{console.Options{MaxStreams: -1}, "Options.MaxStreams"},
		{console.Options{Heartbeat: -time.Second}, "Options.Heartbeat"},
		{console.Options{StreamWriteTimeout: -time.Second}, "Options.StreamWriteTimeout"},
	} {
		if _, err := console.New(f.store, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): %v; want an error naming %s", tc.opts, err, tc.want)
		}
	}
	if _, err := console.New(nil, console.Options{}); err == nil {
		t.Error("New(nil store): no error")
	}
	for _, p := range []string{"", "/console", "/ops/console-1.2_x"} {
		if _, err := console.New(f.store, console.Options{Prefix: p}); err != nil {
			t.Errorf("New(Prefix %q): %v", p, err)
		}
	}
}

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	fields map[string][]string
}

// readEvents parses events from an SSE body until n message events came.
func readEvents(t *testing.T, r *bufio.Reader, n int) []sseEvent {
	t.Helper()
	var out []sseEvent
	cur := sseEvent{fields: map[string][]string{}}
	for messages := 0; messages < n; {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d events: %v", len(out), err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if len(cur.fields) > 0 {
				out = append(out, cur)
				if cur.fields["event"] != nil && cur.fields["event"][0] == "message" {
					messages++
				}
			}
			cur = sseEvent{fields: map[string][]string{}}
		case strings.HasPrefix(line, ":"): // comment
		default:
			k, v, _ := strings.Cut(line, ":")
			cur.fields[k] = append(cur.fields[k], strings.TrimPrefix(v, " "))
		}
	}
	return out
}

// The live stream: messages appended after the stream opened arrive as
// one "message" event each, with the sequence as id and exactly one data
// line, whatever the message holds (newlines, "data:" lines of its own);
// Last-Event-ID resumes after that sequence.
func TestStreamSendsEachMessageAsOneEvent(t *testing.T) {
	f := seed(t, 3, 1)
	srv := serve(t, f, console.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	task, err := f.store.CreateTask(ctx, statestore.NewTask{Action: "stream"})
	if err != nil {
		t.Fatal(err)
	}
	open := func(lastEventID string) *bufio.Reader {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+prefix+"/tasks/"+task.ID.String()+"/events?after=0", nil)
		if err != nil {
			t.Fatal(err)
		}
		if lastEventID != "" {
			req.Header.Set("Last-Event-ID", lastEventID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/event-stream") {
			t.Fatalf("status %d, Content-Type %q", resp.StatusCode, ct)
		}
		return bufio.NewReader(resp.Body)
	}
	r := open("")
	var sent []string
	for _, h := range hostile.Markup {
		sent = append(sent, h.V)
	}
	sent = append(sent, "plain")
	for _, m := range sent {
		if _, err := f.store.AppendMessage(ctx, task.ID, statestore.NewMessage{Message: m, Context: "c\nid: 99"}); err != nil {
			t.Fatal(err)
		}
	}
	events := readEvents(t, r, len(sent))
	var got []string
	for i, ev := range events {
		if ev.fields["event"] == nil {
			continue // the retry announcement
		}
		if len(ev.fields["data"]) != 1 || len(ev.fields["id"]) != 1 || len(ev.fields["event"]) != 1 || len(ev.fields) != 3 {
			t.Fatalf("event %d has fields %v; want one id, one event, one data", i, ev.fields)
		}
		var m struct {
			Seq     int64  `json:"seq"`
			Message string `json:"message"`
			Context string `json:"context"`
		}
		if err := json.Unmarshal([]byte(ev.fields["data"][0]), &m); err != nil {
			t.Fatal(err)
		}
		if ev.fields["id"][0] != fmt.Sprint(m.Seq) || m.Context != "c\nid: 99" {
			t.Errorf("event id %q for sequence %d, context %q", ev.fields["id"][0], m.Seq, m.Context)
		}
		got = append(got, m.Message)
	}
	if diff := cmp.Diff(sent, got); diff != "" {
		t.Errorf("streamed (-appended +streamed):\n%s", diff)
	}
	// Reconnecting with Last-Event-ID 3 resumes at 4.
	events = readEvents(t, open("3"), 1)
	last := events[len(events)-1]
	if last.fields["id"][0] != "4" {
		t.Errorf("resumed at id %v, want 4", last.fields["id"])
	}
}

// nilPool is a pool that never connects (pgxpool connects lazily): for
// tests that only build handlers.
func nilPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Mounted at the root (no prefix), pages and their links work the same.
func TestServesAtTheRoot(t *testing.T) {
	f := seed(t, 3, 1)
	h, err := console.New(f.store, console.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	code, _, body := fetch(t, http.MethodGet, srv.URL+"/")
	if code != http.StatusOK || !strings.Contains(body, `href="/tasks/`+f.root.ID.String()+`"`) ||
		!strings.Contains(body, `src="/static/console.js"`) {
		t.Fatalf("GET /: %d, links to the root task or the script missing", code)
	}
	if code, hdr, _ := fetch(t, http.MethodGet, srv.URL+"/static/console.js"); code != http.StatusOK ||
		!strings.HasPrefix(hdr.Get("Content-Type"), "text/javascript") {
		t.Errorf("GET /static/console.js: %d %q", code, hdr.Get("Content-Type"))
	}
}

// Live streams beyond MaxStreams are refused with 503 and Retry-After
// until one closes.
func TestStreamsAreBounded(t *testing.T) {
	f := seed(t, 3, 1)
	srv := serve(t, f, console.Options{MaxStreams: 1})
	url := srv.URL + prefix + "/tasks/" + f.root.ID.String() + "/events"
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil { // the stream is open
		t.Fatal(err)
	}
	code, hdr, _ := fetch(t, http.MethodGet, url)
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Errorf("second stream: %d, Retry-After %q; want 503 with Retry-After", code, hdr.Get("Retry-After"))
	}
	cancel()
	resp.Body.Close()
	// The slot frees when the handler sees the client gone: poll for it.
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithCancel(context.Background())
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		code := resp.StatusCode
		cancel()
		resp.Body.Close()
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slot of a closed stream never freed: %d", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An idle stream sends heartbeat comments; when the client goes, the
// handler ends (its slot frees) and nothing writes to the response after
// (the race detector watches the heartbeat's last write).
func TestStreamHeartbeatsAndEndsWithTheClient(t *testing.T) {
	f := seed(t, 3, 1)
	srv := serve(t, f, console.Options{MaxStreams: 1, Heartbeat: time.Millisecond})
	url := srv.URL + prefix + "/tasks/" + f.root.ID.String() + "/events?after=2"
	for round := range 20 { // each round needs the previous stream's slot
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusServiceUnavailable { // the previous handler has not ended yet
			resp.Body.Close()
			cancel()
			time.Sleep(10 * time.Millisecond)
			continue
		}
		r := bufio.NewReader(resp.Body)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if line == ": heartbeat\n" {
				break
			}
		}
		cancel()
		resp.Body.Close()
	}
}

// A task's page shows the path from its top-level task (linked, in order)
// and its own subtree; a top-level task's page has no path.
func TestTaskPageShowsPathAndSubtree(t *testing.T) {
	f := seed(t, 3, 2)
	srv := serve(t, f, console.Options{})
	ctx := context.Background()
	kids, err := f.store.ListSubtasks(ctx, f.root.ID, statestore.AllSubtasks)
	if err != nil || len(kids) != 2 {
		t.Fatalf("children: %v %d", err, len(kids))
	}
	grand, err := f.store.ListSubtasks(ctx, kids[0].ID, statestore.AllSubtasks)
	if err != nil || len(grand) != 1 {
		t.Fatalf("grandchildren: %v %d", err, len(grand))
	}
	grand2, err := f.store.ListSubtasks(ctx, kids[1].ID, statestore.AllSubtasks)
	if err != nil || len(grand2) != 1 {
		t.Fatalf("grandchildren: %v %d", err, len(grand2))
	}
	treeIDs := regexp.MustCompile(`<li class="tree-node[^"]*" data-id="([0-9a-f-]{36})">`)
	pathLinks := regexp.MustCompile(`<a class="mono" href="` + prefix + `/tasks/([0-9a-f-]{36})"`)
	for _, tc := range []struct {
		id         uuid.UUID
		path, tree []string
	}{
		{f.root.ID, nil, []string{f.root.ID.String(), kids[0].ID.String(), grand[0].ID.String(), kids[1].ID.String(), grand2[0].ID.String()}},
		{kids[0].ID, []string{f.root.ID.String()}, []string{kids[0].ID.String(), grand[0].ID.String()}},
		{grand[0].ID, []string{f.root.ID.String(), kids[0].ID.String()}, []string{grand[0].ID.String()}},
	} {
		code, _, body := fetch(t, http.MethodGet, srv.URL+prefix+"/tasks/"+tc.id.String())
		if code != http.StatusOK {
			t.Fatalf("%s: %d", tc.id, code)
		}
		var path, tree []string
		if i := strings.Index(body, `id="ancestors"`); i >= 0 {
			nav := body[i : i+strings.Index(body[i:], "</nav>")]
			for _, m := range pathLinks.FindAllStringSubmatch(nav, -1) {
				path = append(path, m[1])
			}
		}
		for _, m := range treeIDs.FindAllStringSubmatch(body, -1) {
			tree = append(tree, m[1])
		}
		if diff := cmp.Diff(tc.path, path); diff != "" {
			t.Errorf("%s: path (-want +got):\n%s", tc.id, diff)
		}
		if diff := cmp.Diff(tc.tree, tree); diff != "" {
			t.Errorf("%s: tree (-want +got):\n%s", tc.id, diff)
		}
	}
}
