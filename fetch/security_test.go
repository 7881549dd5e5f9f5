package fetch

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// eventually polls cond until it holds or the (generous) limit passes. It
// only waits for something the code under test must do promptly; a test
// using it asserts outcomes, never durations.
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// A document fetched with alice's credentials is never served, from the
// cache, to a call without credentials or with other ones.
func TestCacheKeyedByCredentials(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write([]byte("alice's protected design"))
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	r := newResolver(t, Options{})
	ctx := context.Background()
	res, err := r.Fetch(ctx, "http://alice:secret@"+host+"/site.yaml")
	if err != nil || string(res.Data) != "alice's protected design" {
		t.Fatalf("alice: %v", err)
	}
	for _, uri := range []string{
		"http://" + host + "/site.yaml",
		"http://mallory:guess@" + host + "/site.yaml",
		"http://alice:guess@" + host + "/site.yaml",
		"http://alice@" + host + "/site.yaml",
		"http://alice:@" + host + "/site.yaml",
	} {
		res, err := r.Fetch(ctx, uri)
		if err == nil {
			t.Fatalf("%s got the protected document (from cache: %v)", strings.Replace(uri, host, "HOST", 1), res.FromCache)
		}
		if !errors.Is(err, ErrHTTPStatus) || !strings.Contains(err.Error(), "401") {
			t.Fatalf("%s: error %v, want the server's 401", uri, err)
		}
	}
	if res, err := r.Fetch(ctx, "http://alice:secret@"+host+"/site.yaml"); err != nil || !res.FromCache {
		t.Fatalf("alice again: from cache %v, %v", res != nil && res.FromCache, err)
	}
	if n := calls.Load(); n != 6 {
		t.Fatalf("server saw %d requests, want 6 (alice once, each other caller once)", n)
	}
	// The keys are keyed hashes: the password is nowhere in them.
	r.cache.mu.Lock()
	defer r.cache.mu.Unlock()
	for k := range r.cache.m {
		if strings.Contains(k, "secret") || strings.Contains(k, "alice") || strings.Contains(k, host) {
			t.Fatalf("cache key %q shows the URI or its credentials", k)
		}
	}
}

// A call without credentials does not join a fetch in flight for alice.
func TestSingleFlightKeyedByCredentials(t *testing.T) {
	var calls atomic.Int32
	gate := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		<-gate
		w.Write([]byte("alice's protected design"))
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	r := newResolver(t, Options{})
	aliceDone := make(chan error, 1)
	go func() {
		_, err := r.Fetch(context.Background(), "http://alice:secret@"+host+"/site.yaml")
		aliceDone <- err
	}()
	if !eventually(func() bool { return calls.Load() == 1 }) {
		t.Fatal("alice's request never reached the server")
	}
	anonDone := make(chan struct{})
	var anonRes *Result
	var anonErr error
	go func() {
		defer close(anonDone)
		anonRes, anonErr = r.Fetch(context.Background(), "http://"+host+"/site.yaml")
	}()
	// The anonymous call must make its own request (and get 401) while
	// alice's is still held; a call that joined alice's flight only returns
	// once the gate opens.
	eventually(func() bool {
		select {
		case <-anonDone:
			return true
		default:
			return false
		}
	})
	close(gate)
	<-anonDone
	if err := <-aliceDone; err != nil {
		t.Fatalf("alice: %v", err)
	}
	if anonErr == nil {
		t.Fatalf("the anonymous call shared alice's fetch and got %q", anonRes.Data)
	}
	if !errors.Is(anonErr, ErrHTTPStatus) {
		t.Fatalf("anonymous: %v, want the server's 401", anonErr)
	}
}

// dualServer serves h on one loopback port both over TLS and in clear (the
// first byte of a connection tells which), so a redirect can change the
// scheme and nothing else.
func dualServer(t *testing.T, tlsHandler, plainHandler http.Handler) (httpsURL, httpURL string, pool *x509.CertPool) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsL := &chanListener{addr: ln.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}
	plainL := &chanListener{addr: ln.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				br := bufio.NewReader(c)
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				b, err := br.Peek(1)
				c.SetReadDeadline(time.Time{})
				if err != nil {
					c.Close()
					return
				}
				to := plainL
				if b[0] == 0x16 { // TLS handshake record
					to = tlsL
				}
				select {
				case to.conns <- &peekedConn{Conn: c, r: br}:
				case <-to.done:
					c.Close()
				}
			}()
		}
	}()
	ts := httptest.NewUnstartedServer(tlsHandler)
	ts.Listener = tlsL
	ts.StartTLS()
	plain := &http.Server{Handler: plainHandler}
	go plain.Serve(plainL)
	t.Cleanup(func() {
		ln.Close()
		ts.Close()
		plain.Close()
	})
	pool = x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	return ts.URL, "http://" + ln.Addr().String(), pool
}

type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *chanListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *chanListener) Addr() net.Addr { return l.addr }

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// An https fetch is never redirected to http, not even to the same host and
// port: neither the basic-auth password nor the service token travels in
// clear. An http to https redirect on the same host is another origin:
// credentials are dropped.
func TestRedirectNeverDowngrades(t *testing.T) {
	var clearHits atomic.Int32
	var clearAuth, tlsAuth atomic.Value
	clearAuth.Store("")
	tlsAuth.Store("")
	var httpURL string
	tlsHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/down":
			http.Redirect(w, r, httpURL+"/doc", http.StatusFound)
		case "/down-twice": // https -> https (same origin) -> http
			http.Redirect(w, r, "/down", http.StatusFound)
		default:
			tlsAuth.Store(r.Header.Get("Authorization") + r.Header.Get("X-Auth-Token"))
			w.Write([]byte("over tls"))
		}
	})
	var httpsURL string
	plainHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/up" {
			http.Redirect(w, r, httpsURL+"/doc", http.StatusFound)
			return
		}
		clearHits.Add(1)
		clearAuth.Store(r.Header.Get("Authorization") + r.Header.Get("X-Auth-Token"))
		w.Write([]byte("in clear"))
	})
	httpsURL, httpURL, pool := dualServer(t, tlsHandler, plainHandler)
	if strings.TrimPrefix(httpsURL, "https://") != strings.TrimPrefix(httpURL, "http://") {
		t.Fatalf("not one host and port: %s, %s", httpsURL, httpURL)
	}
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	for _, header := range []string{"", "X-Auth-Token"} {
		r := newResolver(t, Options{TLS: tlsCfg, Tokens: StaticToken("tok-S3cret"), TokenHeader: header, CacheTTL: -1})
		withUser, _ := url.Parse(httpsURL)
		withUser.User = url.UserPassword("u", "pw-S3cret")
		for _, uri := range []string{
			withUser.String() + "/down",
			withUser.String() + "/down-twice",
			"deckhand+" + httpsURL + "/down",
			"promenade+" + httpsURL + "/down-twice",
		} {
			_, err := r.Fetch(context.Background(), uri)
			if !errors.Is(err, ErrRedirect) {
				t.Fatalf("%s (token header %q): error %v, want ErrRedirect", uri, header, err)
			}
		}
	}
	if n := clearHits.Load(); n != 0 {
		t.Fatalf("an https fetch was redirected to http %d time(s); credentials seen in clear: %q", n, clearAuth.Load())
	}

	// http -> https, same host and port: another scheme, another origin.
	r := newResolver(t, Options{TLS: tlsCfg, Tokens: StaticToken("tok-S3cret"), CacheTTL: -1})
	withUser, _ := url.Parse(httpURL)
	withUser.User = url.UserPassword("u", "pw-S3cret")
	for _, uri := range []string{withUser.String() + "/up", "deckhand+" + httpURL + "/up"} {
		res, err := r.Fetch(context.Background(), uri)
		if err != nil || string(res.Data) != "over tls" {
			t.Fatalf("%s: %v", uri, err)
		}
		if got := tlsAuth.Load().(string); got != "" {
			t.Fatalf("%s: credentials %q followed the redirect to another origin", uri, got)
		}
	}
}

func TestSameOrigin(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"https://h/x", "https://h/y", true},
		{"https://h/x", "https://h:443/y", true},
		{"http://h:80/x", "http://h/y", true},
		{"https://H:8443/x", "https://h:8443/y", true},
		{"https://h/x", "http://h/x", false},
		{"http://h:8080/x", "https://h:8080/x", false},
		{"https://h:8443/x", "https://h:9443/x", false},
		{"https://h/x", "https://sub.h/x", false},
		{"https://h/x", "https://h.evil/x", false},
	}
	for _, tc := range tests {
		a, _ := url.Parse(tc.a)
		b, _ := url.Parse(tc.b)
		if got := sameOrigin(a, b); got != tc.want {
			t.Errorf("sameOrigin(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// A directory component swapped between a real directory and a symbolic
// link out of the root while fetches run: no fetch ever returns the file
// outside. (The old EvalSymlinks-then-Open read it within a few thousand
// attempts.)
func TestFileSymlinkSwapNeverEscapes(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(root, "d"), outside} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	const secret = "OUTSIDE-THE-ROOT"
	if err := os.WriteFile(filepath.Join(outside, "doc"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "d", "doc"), []byte("inside"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newResolver(t, Options{Roots: []string{root}, CacheTTL: -1})

	stop := make(chan struct{})
	swapped := make(chan struct{})
	var swaps atomic.Int64
	go func() {
		defer close(swapped)
		d, parked := filepath.Join(root, "d"), filepath.Join(root, "d.real")
		targets := []string{outside, "../outside"} // absolute and relative links out
		for i := 0; ; i++ {
			select {
			case <-stop:
				os.Remove(d)
				os.Rename(parked, d)
				return
			default:
			}
			if os.Rename(d, parked) != nil {
				continue
			}
			os.Symlink(targets[i%2], d)
			runtime.Gosched()
			os.Remove(d)
			os.Rename(parked, d)
			runtime.Gosched()
			swaps.Add(1)
		}
	}()
	uri := "file://" + filepath.Join(root, "d", "doc")
	var ok, refused int
	kinds := map[string]int{}
	for i := 0; i < 20000; i++ {
		res, err := r.Fetch(context.Background(), uri)
		if err == nil {
			if string(res.Data) != "inside" {
				close(stop)
				<-swapped
				t.Fatalf("attempt %d read %q from outside the root", i, res.Data)
			}
			ok++
			continue
		}
		// Mid-swap the path may be missing, a link out, or a link that is a
		// directory again by the time it is read: any refusal is fine.
		switch {
		case errors.Is(err, ErrNotFound):
			kinds["not found"]++
		case errors.Is(err, ErrOutsideRoots):
			kinds["outside the roots"]++
		default:
			kinds["other"]++
		}
		refused++
	}
	close(stop)
	<-swapped
	t.Logf("20000 fetches during %d swaps: %d read the file inside, %d refused %v", swaps.Load(), ok, refused, kinds)
}

// Links inside the root: relative ones staying inside are followed; any that
// leave (relative climbing out, absolute) are ErrOutsideRoots, as are
// absolute links even to a place inside (os.Root does not follow them).
func TestFileSymlinkEscapes(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(root, "sub"), outside} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "sub", "doc"), []byte("inside"), 0o600)
	os.WriteFile(filepath.Join(outside, "doc"), []byte("outside"), 0o600)
	links := map[string]string{
		"rel-in":      "sub/doc",
		"rel-in-dir":  "sub",
		"rel-out":     "../outside/doc",
		"rel-out-dir": "../outside",
		"abs-out":     filepath.Join(outside, "doc"),
		"abs-in":      filepath.Join(root, "sub", "doc"),
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	// The root configured through a symlink: paths under either spelling work.
	alias := filepath.Join(base, "alias")
	if err := os.Symlink(root, alias); err != nil {
		t.Fatal(err)
	}
	r := newResolver(t, Options{Roots: []string{alias}})
	tests := []struct {
		path string
		want error
	}{
		{filepath.Join(root, "rel-in"), nil},
		{filepath.Join(alias, "rel-in"), nil},
		{filepath.Join(root, "rel-in-dir", "doc"), nil},
		{filepath.Join(root, "rel-out"), ErrOutsideRoots},
		{filepath.Join(root, "rel-out-dir", "doc"), ErrOutsideRoots},
		{filepath.Join(alias, "abs-out"), ErrOutsideRoots},
		{filepath.Join(root, "abs-in"), ErrOutsideRoots},
		{filepath.Join(outside, "doc"), ErrOutsideRoots},
		{filepath.Join(root, "sub", "nope"), ErrNotFound},
	}
	for _, tc := range tests {
		res, err := r.Fetch(context.Background(), "file://"+tc.path)
		if tc.want == nil {
			if err != nil || string(res.Data) != "inside" {
				t.Errorf("%s: %v", tc.path, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) || !errors.Is(err, ErrInvalidURI) && tc.want == ErrOutsideRoots {
			t.Errorf("%s: error %v, want %v", tc.path, err, tc.want)
		}
	}
}

// A named pipe is refused at once (a plain open would wait for a writer
// forever), with or without roots.
func TestFileFIFORefused(t *testing.T) {
	root := t.TempDir()
	fifo := filepath.Join(root, "pipe.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, opts := range []Options{{Roots: []string{root}}, {}} {
		r := newResolver(t, opts)
		done := make(chan error, 1)
		go func() {
			_, err := r.Fetch(context.Background(), "file://"+fifo)
			done <- err
		}()
		var err error
		if !eventually(func() bool {
			select {
			case err = <-done:
				return true
			default:
				return false
			}
		}) {
			// Unblock the stuck open so the goroutine ends, then fail.
			if w, oerr := os.OpenFile(fifo, os.O_RDWR, 0); oerr == nil {
				w.Close()
			}
			t.Fatalf("Fetch of a FIFO (roots %v) blocked", opts.Roots)
		}
		if !errors.Is(err, ErrInvalidURI) || !strings.Contains(err.Error(), "named pipe") {
			t.Fatalf("FIFO (roots %v): error %v, want ErrInvalidURI naming a named pipe", opts.Roots, err)
		}
	}
}

// A finished context stops a file fetch: nothing is read or returned.
func TestFileReadHonoursContext(t *testing.T) {
	root := t.TempDir()
	doc := filepath.Join(root, "site.yaml")
	if err := os.WriteFile(doc, []byte("kind: Site\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newResolver(t, Options{Roots: []string{root}, CacheTTL: -1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if res, err := r.Fetch(ctx, "file://"+doc); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v, %v", res, err)
	}
	// The reader itself checks the context between reads.
	ctx, cancel = context.WithCancel(context.Background())
	f, err := os.Open(doc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cr := &ctxReader{ctx: ctx, r: f}
	buf := make([]byte, 4)
	if _, err := cr.Read(buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := cr.Read(buf); !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel: %v", err)
	}
}

// The first caller of a shared fetch gives up: the others still get the
// document, from the one upstream request.
func TestSingleFlightFirstCallerCancels(t *testing.T) {
	var calls atomic.Int32
	gate := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-gate:
			w.Write([]byte("shared"))
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	r := newResolver(t, Options{})
	uri := srv.URL + "/d"
	tgt, err := parseTarget(uri)
	if err != nil {
		t.Fatal(err)
	}
	key := r.cacheKey(tgt) + "#"

	firstCtx, cancelFirst := context.WithCancel(context.Background())
	firstDone := make(chan error, 1)
	go func() {
		_, err := r.Fetch(firstCtx, uri)
		firstDone <- err
	}()
	if !eventually(func() bool { return calls.Load() == 1 }) {
		t.Fatal("the first request never reached the server")
	}
	const others = 5
	results := make(chan error, others)
	for i := 0; i < others; i++ {
		go func() {
			res, err := r.Fetch(context.Background(), uri)
			if err == nil && string(res.Data) != "shared" {
				err = errors.New("wrong data " + string(res.Data))
			}
			results <- err
		}()
	}
	if !eventually(func() bool { return r.flights.waiting(key) == 1+others }) {
		t.Fatalf("%d callers wait on the shared fetch, want %d", r.flights.waiting(key), 1+others)
	}
	cancelFirst()
	if err := <-firstDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: %v, want context.Canceled", err)
	}
	close(gate)
	for i := 0; i < others; i++ {
		if err := <-results; err != nil {
			t.Fatalf("a caller sharing the fetch failed because the first one gave up: %v", err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("server saw %d requests, want 1", n)
	}
}

// When every caller has given up, the shared request is cancelled (the
// server sees it go) and the next call starts afresh.
func TestSingleFlightAllCallersGone(t *testing.T) {
	var calls atomic.Int32
	abandoned := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			<-r.Context().Done()
			abandoned <- struct{}{}
			return
		}
		w.Write([]byte("fresh"))
	}))
	defer srv.Close()
	r := newResolver(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.Fetch(ctx, srv.URL)
		done <- err
	}()
	if !eventually(func() bool { return calls.Load() == 1 }) {
		t.Fatal("the request never reached the server")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("caller: %v", err)
	}
	select {
	case <-abandoned:
	case <-time.After(30 * time.Second):
		t.Fatal("the shared request kept running after its only caller gave up")
	}
	res, err := r.Fetch(context.Background(), srv.URL)
	if err != nil || string(res.Data) != "fresh" {
		t.Fatalf("next call: %v", err)
	}
}

// An empty token is a configuration error: New refuses StaticToken(""), and
// a TokenSource that yields "" fails the fetch before any request is sent.
func TestEmptyTokenIsConfigError(t *testing.T) {
	if _, err := New(Options{Tokens: StaticToken("")}); !errors.Is(err, ErrEmptyToken) || !strings.Contains(err.Error(), "Options.Tokens") {
		t.Fatalf("New with StaticToken(\"\"): %v, want ErrEmptyToken naming Options.Tokens", err)
	}
	if _, err := StaticToken("").Token(context.Background()); !errors.Is(err, ErrEmptyToken) {
		t.Fatalf("StaticToken(\"\").Token: %v", err)
	}
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Write([]byte("docs"))
	}))
	defer srv.Close()
	r := newResolver(t, Options{Tokens: emptyTokens{}})
	if _, err := r.Fetch(context.Background(), "deckhand+"+srv.URL+"/d"); !errors.Is(err, ErrEmptyToken) {
		t.Fatalf("empty token from a source: %v", err)
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("a request went out with an empty token (%d)", n)
	}
	if _, err := newResolver(t, Options{}).Fetch(context.Background(), "deckhand+"+srv.URL+"/d"); !errors.Is(err, ErrNoTokenSource) {
		t.Fatalf("no token source: %v", err)
	}
}

type emptyTokens struct{}

func (emptyTokens) Token(context.Context) (string, error) { return "", nil }

// The shared fetch's own budget never overflows into a negative (already
// expired) timeout, whatever the options.
func TestFlightBudgetSaturates(t *testing.T) {
	r := newResolver(t, Options{ReadTimeout: time.Duration(1<<62) + 1, RetryWaitMin: time.Millisecond, RetryWaitMax: time.Duration(1 << 62), Retries: 1000})
	if b := r.flightBudget(); b <= 0 {
		t.Fatalf("budget %v", b)
	}
	if b := newResolver(t, Options{}).flightBudget(); b != DefaultConnectTimeout+4*DefaultReadTimeout+3*20*time.Millisecond {
		t.Fatalf("default budget %v", b)
	}
}
