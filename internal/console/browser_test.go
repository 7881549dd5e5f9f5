package console_test

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/internal/console"
	"github.com/drydock-go/statemgmt/internal/hostile"
	"github.com/drydock-go/statemgmt/statestore"
)

// liveRequirement is how soon after its append a message must show on the
// task's page.
const liveRequirement = time.Second

// chromium finds the browser: $STATEMGMT_CHROMIUM, else chromium on PATH
// (Debian's package). Missing, the test is skipped locally and fails in CI.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("STATEMGMT_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium not found: apt-get install -y chromium (or set STATEMGMT_CHROMIUM to a Chromium binary)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; CI must run the browser test")
	}
	t.Skip("SKIPPED the browser test: " + msg)
	return ""
}

// screenshotDir is where the test saves its screenshots:
// $STATEMGMT_SCREENSHOTS, else internal/console/testdata/screenshots
// (ignored by git).
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("STATEMGMT_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("testdata", "screenshots")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// basicAuth is a stand-in for the server's auth middleware.
func basicAuth(user, pass string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 || subtle.ConstantTimeCompare([]byte(p), []byte(pass)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="statemgmt"`)
			http.Error(w, "401 unauthorized: the console needs credentials", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// withoutCSP removes the console's Content-Security-Policy, so the hostile
// pages prove escaping alone keeps scripts out (CSP would block inline
// ones anyway). It wraps the ResponseWriter, as middleware does; Unwrap
// lets the stream flush through it.
func withoutCSP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&cspStripper{ResponseWriter: w}, r)
	})
}

type cspStripper struct {
	http.ResponseWriter
	wrote bool
}

func (s *cspStripper) WriteHeader(code int) {
	if !s.wrote {
		s.wrote = true
		s.Header().Del("Content-Security-Policy")
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *cspStripper) Write(b []byte) (int, error) {
	if !s.wrote {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(b)
}

func (s *cspStripper) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// initScript runs in every page before its own scripts (DevTools injects
// it; CSP does not apply): it counts CSP violations and stamps the time
// each message row appears, by its text, for the live check.
const initScript = `
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) { window.__csp.push(e.violatedDirective + " " + e.blockedURI); });
window.__seenAt = {};
document.addEventListener("DOMContentLoaded", function () {
  new MutationObserver(function (records) {
    var now = Date.now();
    records.forEach(function (r) {
      r.addedNodes.forEach(function (n) {
        if (n.nodeType === 1 && n.matches("tr.message")) {
          var td = n.querySelector("td.msg");
          if (td && !(td.textContent in window.__seenAt)) { window.__seenAt[td.textContent] = now; }
        }
      });
    });
  }).observe(document.body, {childList: true, subtree: true});
});
`

// injectionCheck lists what in the page could have executed or been
// injected (empty: nothing).
const injectionCheck = `(function () {
  var found = [];
  if (document.getElementById("pwned")) { found.push("#pwned"); }
  document.querySelectorAll("img, svg, iframe, object, embed, style, base").forEach(function (e) { found.push("<" + e.tagName + ">"); });
  document.querySelectorAll("script").forEach(function (s) { if (!s.src || s.textContent) { found.push("an inline script"); } });
  document.querySelectorAll("*").forEach(function (e) {
    for (var i = 0; i < e.attributes.length; i++) {
      var a = e.attributes[i].name.toLowerCase();
      if (a.indexOf("on") === 0 || a === "style") { found.push(e.tagName + "[" + a + "]"); }
    }
  });
  document.querySelectorAll("[href], [src]").forEach(function (e) {
    var u = (e.getAttribute("href") || e.getAttribute("src") || "").trim().toLowerCase();
    if (u.indexOf("javascript:") === 0) { found.push("javascript: URL"); }
  });
  return found;
})()`

type browser struct {
	t    *testing.T
	ctx  context.Context
	dir  string
	mu   sync.Mutex
	dlgs []string // dialogs that opened (each dismissed)
}

func startBrowser(t *testing.T, ctx context.Context) *browser {
	t.Helper()
	exe := chromium(t)
	profile := t.TempDir() // a fresh profile; removed after the browser exits (cleanups run in reverse)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(profile),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900))
	t.Cleanup(cancelAlloc)
	bctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		if err := chromedp.WaitClosed(bctx); err != nil && ctx.Err() == nil {
			t.Logf("waiting for chromium to exit: %v", err)
		}
	})
	if err := chromedp.Do(bctx); err != nil { // starts the browser and the tab
		t.Fatalf("start chromium (%s): %v", exe, err)
	}
	b := &browser{t: t, ctx: bctx, dir: screenshotDir(t)}
	dialogs := chromedp.Events(bctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dlgs = append(b.dlgs, ev.Message)
			b.mu.Unlock()
			_, _ = chromedp.Call(bctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false}) // the dialog is already recorded as a failure
		}
	}()
	if _, err := chromedp.Call(bctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: initScript}); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](b *browser, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("evaluate %.60s: %v", js, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it is true (the deadline is
// the test's, generous: page loads on a loaded machine take what they take).
func (b *browser) waitFor(what, cond string) {
	b.t.Helper()
	for {
		_, err := chromedp.Run(b.ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(25*time.Millisecond),
			chromedp.WithPollingTimeout(0))) // no timeout of its own: the test's deadline bounds it
		if err == nil {
			return
		}
		if b.ctx.Err() == nil && navigatedAway(err) {
			continue // the page the poll ran in was replaced: poll the new one
		}
		b.t.Fatalf("waiting for %s (%s): %v", what, cond, err)
	}
}

// navigatedAway: an evaluation ended because its page went away.
func navigatedAway(err error) bool {
	for _, s := range []string{"navigated or closed", "Execution context was destroyed", "Cannot find context"} {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}

// open navigates and waits for the page and its script to be ready.
func (b *browser) open(url, ready string) {
	b.t.Helper()
	b.do("open "+url, chromedp.Navigate(url))
	b.waitFor(ready+" on "+url, `document.readyState === "complete" && document.querySelector(`+jsString(ready)+`) !== null`)
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// clean checks the page: nothing injected, no CSP violation (when csp), no dialog so far.
func (b *browser) clean(where string, csp bool) {
	b.t.Helper()
	if found := eval[[]string](b, injectionCheck); len(found) > 0 {
		b.t.Errorf("%s: injected into the page: %v", where, found)
	}
	if v := eval[[]string](b, `window.__csp`); csp && len(v) > 0 {
		b.t.Errorf("%s: Content-Security-Policy violations: %v", where, v)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.dlgs) > 0 {
		b.t.Errorf("%s: dialogs opened: %q", where, b.dlgs)
	}
}

func (b *browser) rowIDs() []string {
	b.t.Helper()
	return eval[[]string](b, `Array.from(document.querySelectorAll("tr.task")).map(function (r) { return r.dataset.id; })`)
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`).Replace(s) + "'"
}

// The console in Debian's Chromium, behind a basic-auth middleware, on a
// seeded database: the auth wall, filters, keyset paging, a task tree, a
// message appearing live within a second of its append, every page free
// of injected markup, dialogs and CSP violations, and screenshots of each.
func TestConsoleInBrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	exe := chromium(t)
	f := seed(t, 120, 6)
	const user, pass = "operator", "browser-test-pw"
	h, err := console.New(f.store, console.Options{Prefix: "/console", PageSize: 20})
	if err != nil {
		t.Fatal(err)
	}
	bare, err := console.New(f.store, console.Options{Prefix: "/nocsp", PageSize: 20})
	if err != nil {
		t.Fatal(err)
	}
	// fast heartbeats, so a stream notices its task deleted at once
	fast, err := console.New(f.store, console.Options{Prefix: "/fast", Heartbeat: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/console/", basicAuth(user, pass, h))
	mux.Handle("/fast/", basicAuth(user, pass, fast))
	mux.Handle("/nocsp/", basicAuth(user, pass, withoutCSP(bare)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	base := srv.URL + "/console"

	// The auth wall, from Go: no or wrong credentials are a 401.
	for _, creds := range [][2]string{{}, {user, "wrong"}} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/tasks", nil)
		if err != nil {
			t.Fatal(err)
		}
		if creds[0] != "" {
			req.SetBasicAuth(creds[0], creds[1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("credentials %q: status %d, want 401", creds[0], resp.StatusCode)
		}
	}

	b := startBrowser(t, ctx)
	t.Logf("chromium %s; screenshots in %s", exe, b.dir)

	// The auth wall, in the browser: without credentials no console.
	// Headless Chromium has nobody to ask for credentials: it ends the
	// navigation with ERR_INVALID_AUTH_CREDENTIALS, or shows the 401.
	resp, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(base+"/tasks"))
	switch {
	case err != nil && strings.Contains(err.Error(), "ERR_INVALID_AUTH_CREDENTIALS"):
	case err != nil:
		t.Fatal(err)
	case resp.Status != http.StatusUnauthorized:
		t.Fatalf("without credentials: status %d, want 401", resp.Status)
	}
	if eval[bool](b, `document.getElementById("tasks") !== null`) {
		t.Fatal("without credentials the browser shows the console")
	}
	b.screenshot("01-auth-wall.png")
	if _, err := chromedp.Call(b.ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	if _, err := chromedp.Call(b.ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Authorization": auth}}); err != nil {
		t.Fatal(err)
	}

	// The first page.
	b.open(base+"/tasks", "#tasks")
	if ids := b.rowIDs(); len(ids) != 20 {
		t.Fatalf("first page: %d rows, want 20", len(ids))
	}
	b.clean("tasks", true)
	b.screenshot("02-tasks.png")

	// Filter: ticking a status applies it; then an action, with the button.
	b.do("tick queued", chromedp.Click(chromedp.CSS(`input[name=status][value=queued]`)))
	b.waitFor("the queued filter", `location.search.indexOf("status=queued") >= 0 && document.readyState === "complete" && document.getElementById("tasks") !== null`)
	b.do("type an action", chromedp.SetValue(chromedp.CSS("#action"), "deploy_node"), chromedp.Click(chromedp.CSS("#apply")))
	b.waitFor("the action filter", `location.search.indexOf("action=deploy_node") >= 0 && document.readyState === "complete" && document.getElementById("tasks") !== null`)
	b.screenshot("03-tasks-filtered.png")
	shown := eval[[]string](b, `Array.from(document.querySelectorAll("tr.task")).map(function (r) { return r.querySelector(".action").textContent + "/" + r.querySelector(".status").textContent; })`)
	for _, s := range shown {
		if s != "deploy_node/queued" {
			t.Fatalf("filtered page shows a %s task", s)
		}
	}

	// Page through the filtered list by its Next links.
	var got []string
	for pages := 1; ; pages++ {
		got = append(got, b.rowIDs()...)
		next := eval[string](b, `(document.getElementById("next-page") || {href: ""}).href`)
		if next == "" {
			break
		}
		if pages > 50 {
			t.Fatal("paging does not end")
		}
		b.do("next page", chromedp.Click(chromedp.CSS("#next-page")))
		b.waitFor("the next page", `location.href === `+jsString(next)+` && document.readyState === "complete" && document.getElementById("tasks") !== null`)
	}
	page, err := f.store.ListTasks(ctx, statestore.TaskFilter{Statuses: []statestore.TaskStatus{statestore.StatusQueued},
		Actions: []string{"deploy_node"}, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, tk := range page.Tasks {
		want = append(want, tk.ID.String())
	}
	if len(want) <= 20 {
		t.Fatalf("only %d queued deploy_node tasks: paging is not exercised", len(want))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("paged through (-store +browser):\n%s", diff)
	}
	b.clean("last filtered page", true)

	// Open a tree: from the list of deploy_site tasks, click the root.
	b.open(base+"/tasks?action=deploy_site", "#tasks")
	b.do("open the tree", chromedp.Click(chromedp.CSS(`tr[data-id="`+f.root.ID.String()+`"] a.task-link`)))
	b.waitFor("the task page", `location.pathname.endsWith(`+jsString(f.root.ID.String())+`) && document.getElementById("tree") !== null && document.readyState === "complete"`)
	if n := eval[int](b, `document.querySelectorAll("#tree li.tree-node").length`); n != 1+f.subtask {
		t.Fatalf("the tree shows %d tasks, want %d", n, 1+f.subtask)
	}
	if n := eval[int](b, `document.querySelectorAll("#tree > li > ul > li > ul > li").length`); n != f.subtask/2 {
		t.Fatalf("the tree shows %d grandchildren, want %d", n, f.subtask/2)
	}

	// Live: each message shows within liveRequirement of its append.
	b.waitFor("the live stream", `document.getElementById("live-state").dataset.state === "live"`)
	for i := range 3 {
		text := fmt.Sprintf("live message %d %s", i, uuid.NewString())
		start := time.Now()
		if _, err := f.store.AppendMessage(ctx, f.root.ID, statestore.NewMessage{Message: text, Context: "node-01", ContextType: "node"}); err != nil {
			t.Fatal(err)
		}
		seen, err := chromedp.Run(b.ctx, chromedp.Poll[int64](`window.__seenAt[`+jsString(text)+`] || 0`,
			chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(time.Minute)))
		if err != nil {
			t.Fatalf("message %d never showed: %v", i, err)
		}
		latency := time.UnixMilli(seen).Sub(start)
		t.Logf("message %d showed %s after its append began", i, latency)
		if latency > liveRequirement {
			t.Errorf("message %d showed %s after its append; the requirement is %s", i, latency, liveRequirement)
		}
	}
	b.clean("task tree", true)
	b.screenshot("04-task-tree-live.png")

	for _, p := range []struct{ path, ready, shot string }{
		{"/leadership", "#history", "05-leadership.png"},
		{"/nodes", "#boot-contexts", "06-nodes.png"},
		{"/nodes/" + f.node, "#boot-statuses", "07-node.png"},
	} {
		b.open(base+p.path, p.ready)
		b.clean(p.path, true)
		b.screenshot(p.shot)
	}

	// The hostile corpus, rendered with the CSP removed: escaping alone
	// keeps every payload text.
	nocsp := srv.URL + "/nocsp"
	for _, p := range []struct{ path, ready, shot string }{
		{"/tasks?action=hostile,hostile_child", "#tasks", ""},
		{"/leadership", "#history", ""},
		{"/nodes", "#build-data", ""},
		{"/nodes/" + f.node, "#boot-statuses", "08-hostile-node.png"},
		{"/tasks/" + f.evil.ID.String(), "#messages", ""},
	} {
		b.open(nocsp+p.path, p.ready)
		b.clean("without CSP "+p.path, false)
		if p.shot != "" {
			b.screenshot(p.shot)
		}
	}
	// Still on the hostile task: every markup payload arrives live, as text.
	b.waitFor("the live stream", `document.getElementById("live-state").dataset.state === "live"`)
	before := eval[int](b, `document.querySelectorAll("#message-rows tr").length`)
	var payloads []string
	for _, h := range hostile.Markup {
		payloads = append(payloads, h.V)
		if _, err := f.store.AppendMessage(ctx, f.evil.ID, statestore.NewMessage{Message: h.V, Context: clip(h.V, 1024)}); err != nil {
			t.Fatal(err)
		}
	}
	b.waitFor("the hostile messages", `document.querySelectorAll("#message-rows tr").length >= `+fmt.Sprint(before+len(payloads)))
	b.clean("without CSP, live hostile messages", false)
	seen := eval[[]string](b, `Object.keys(window.__seenAt)`)
	for _, p := range payloads {
		if !slices.Contains(seen, p) {
			t.Errorf("payload %q did not arrive as text; rows: %q", p, seen)
		}
	}
	body := eval[string](b, `document.body.innerText`)
	for _, p := range []string{hostile.Markup[0].V, hostile.Markup[1].V} {
		if !strings.Contains(body, p) {
			t.Errorf("the hostile task page does not show %q", p)
		}
	}
	b.screenshot("09-hostile-task.png")

	// The task followed is deleted (retention; last, as it deletes every
	// task): the page says so, and has closed its stream rather than
	// reconnecting to a 404 for ever.
	b.open(srv.URL+"/fast/tasks/"+f.root.ID.String(), "#messages")
	b.waitFor("the live stream", `document.getElementById("live-state").dataset.state === "live"`)
	if _, err := f.store.DeleteTasksCreatedBefore(ctx, time.Now().Add(time.Hour), statestore.RetentionOptions{IncludeActive: true}); err != nil {
		t.Fatal(err)
	}
	b.waitFor("the page to say the task is gone", `document.getElementById("live-state").dataset.state === "gone"`)
	b.clean("a deleted task's page", true)
}
