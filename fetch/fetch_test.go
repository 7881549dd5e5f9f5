package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// quick returns options with millisecond retry waits for tests.
func quick(o Options) Options {
	if o.RetryWaitMin == 0 {
		o.RetryWaitMin = time.Millisecond
	}
	if o.RetryWaitMax == 0 {
		o.RetryWaitMax = 20 * time.Millisecond
	}
	return o
}

func newResolver(t *testing.T, o Options) *Resolver {
	t.Helper()
	r, err := New(quick(o))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func digest(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestHTTPSuccessAndMetadata(t *testing.T) {
	body := []byte("schema: drydock/Region/v1\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-yaml")
		w.Write(body)
	}))
	defer srv.Close()
	r := newResolver(t, Options{})
	res, err := r.Fetch(context.Background(), srv.URL+"/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.Data, body) || res.ContentType != "application/x-yaml" || res.Size != int64(len(body)) ||
		res.SHA256 != digest(body) || res.FromCache || res.URL != srv.URL+"/design.yaml" {
		t.Fatalf("result = %+v", res)
	}
	again, err := r.Fetch(context.Background(), srv.URL+"/design.yaml")
	if err != nil || !again.FromCache {
		t.Fatalf("second fetch: cached %v, %v", again != nil && again.FromCache, err)
	}
	if fresh, err := r.Fetch(context.Background(), srv.URL+"/design.yaml", BypassCache()); err != nil || fresh.FromCache {
		t.Fatalf("bypass: %v", err)
	}
}

func TestBasicAuthHeaderExact(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	u.User = url.UserPassword("drydock", "p@ss:w0rd")
	res, err := newResolver(t, Options{}).Fetch(context.Background(), u.String()+"/d")
	if err != nil {
		t.Fatal(err)
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("drydock:p@ss:w0rd"))
	if got != want {
		t.Fatalf("Authorization = %q, want %q", got, want)
	}
	if strings.Contains(res.URL, "p@ss") || strings.Contains(res.URL, "drydock@") {
		t.Fatalf("metadata URL carries credentials: %s", res.URL)
	}
}

func TestServiceToken(t *testing.T) {
	var auth, xauth, path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth, xauth, path = r.Header.Get("Authorization"), r.Header.Get("X-Auth-Token"), r.URL.Path
		w.Write([]byte("docs"))
	}))
	defer srv.Close()
	ref := "deckhand+" + srv.URL + "/api/v1.0/revisions/1/rendered-documents"
	if _, err := newResolver(t, Options{}).Fetch(context.Background(), ref); err == nil || !strings.Contains(err.Error(), "token source") {
		t.Fatalf("no token source: %v", err)
	}
	if _, err := newResolver(t, Options{Tokens: StaticToken("tok-123")}).Fetch(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	if auth != "Bearer tok-123" || path != "/api/v1.0/revisions/1/rendered-documents" {
		t.Fatalf("Authorization %q path %q", auth, path)
	}
	if _, err := newResolver(t, Options{Tokens: StaticToken("tok-456"), TokenHeader: "X-Auth-Token"}).Fetch(context.Background(), "promenade+"+srv.URL+"/p"); err != nil {
		t.Fatal(err)
	}
	if xauth != "tok-456" {
		t.Fatalf("X-Auth-Token = %q", xauth)
	}
}

func TestRetriesAndStatuses(t *testing.T) {
	tests := []struct {
		name      string
		statuses  []int
		wantCalls int32
		wantErr   error
	}{
		{"503 then 200 is retried", []int{503, 200}, 2, nil},
		{"500 three times then 200", []int{500, 500, 500, 200}, 4, nil},
		{"404 is not retried", []int{404, 200}, 1, ErrNotFound},
		{"403 is not retried", []int{403, 200}, 1, ErrHTTPStatus},
		{"501 is not retried", []int{501, 200}, 1, ErrHTTPStatus},
		{"503 forever gives up", []int{503, 503, 503, 503, 503}, 4, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := calls.Add(1)
				code := tc.statuses[min(int(n)-1, len(tc.statuses)-1)]
				w.WriteHeader(code)
				fmt.Fprintf(w, "answer %d", code)
			}))
			defer srv.Close()
			res, err := newResolver(t, Options{}).Fetch(context.Background(), srv.URL)
			if got := calls.Load(); got != tc.wantCalls {
				t.Errorf("server saw %d requests, want %d", got, tc.wantCalls)
			}
			last := tc.statuses[min(int(tc.wantCalls)-1, len(tc.statuses)-1)]
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), fmt.Sprint(last)) {
					t.Fatalf("error = %v, want %v naming %d", err, tc.wantErr, last)
				}
			case last == 200:
				if err != nil || string(res.Data) != "answer 200" {
					t.Fatalf("= %v, %v", res, err)
				}
			default:
				if err == nil || !strings.Contains(err.Error(), "4 attempt") {
					t.Fatalf("error = %v, want a give-up after 4 attempts", err)
				}
			}
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	var calls atomic.Int32
	var first, second time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			first = time.Now()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		second = time.Now()
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	r := newResolver(t, Options{RetryWaitMax: 5 * time.Second})
	if _, err := r.Fetch(context.Background(), srv.URL); err != nil {
		t.Fatal(err)
	}
	// Retry waits are 1 ms otherwise: a wait near a second can only be the header.
	if gap := second.Sub(first); gap < 900*time.Millisecond {
		t.Fatalf("retried after %v; Retry-After: 1 asked for a second", gap)
	}
}

func TestSlowServerTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	r := newResolver(t, Options{ReadTimeout: 100 * time.Millisecond, Retries: -1})
	if _, err := r.Fetch(context.Background(), srv.URL); err == nil {
		t.Fatal("a server that never answers did not time out")
	}
	// The caller's context bounds everything, retries included.
	r2 := newResolver(t, Options{ReadTimeout: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := r2.Fetch(ctx, srv.URL); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("context deadline: %v", err)
	}
}

func TestBodyOverLimit(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 2048)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush() // no Content-Length: the limit must hold while reading
		}
		w.Write(big)
	}))
	defer srv.Close()
	r := newResolver(t, Options{MaxBytes: 1024})
	for _, p := range []string{"/sized", "/chunked"} {
		if _, err := r.Fetch(context.Background(), srv.URL+p); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: error = %v, want ErrTooLarge", p, err)
		}
	}
}

func TestRedirects(t *testing.T) {
	var otherAuth string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherAuth = r.Header.Get("Authorization") + r.Header.Get("X-Auth-Token")
		w.Write([]byte("elsewhere"))
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL+"/doc", http.StatusFound)
		case "/file":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	u.User = url.UserPassword("u", "secret")
	r := newResolver(t, Options{Tokens: StaticToken("tok"), TokenHeader: "X-Auth-Token"})
	res, err := r.Fetch(context.Background(), u.String()+"/away")
	if err != nil {
		t.Fatal(err)
	}
	// 127.0.0.1 with another port is another host: credentials dropped.
	if otherAuth != "" || string(res.Data) != "elsewhere" || res.URL != other.URL+"/doc" {
		t.Fatalf("credentials %q reached the other host; result %+v", otherAuth, res)
	}
	if _, err := r.Fetch(context.Background(), "deckhand+"+srv.URL+"/away"); err != nil || otherAuth != "" {
		t.Fatalf("token %q reached the other host (%v)", otherAuth, err)
	}
	if _, err := r.Fetch(context.Background(), srv.URL+"/file"); !errors.Is(err, ErrRedirect) {
		t.Fatalf("redirect to file://: %v", err)
	}
	if _, err := r.Fetch(context.Background(), srv.URL+"/loop"); !errors.Is(err, ErrRedirect) {
		t.Fatalf("redirect loop: %v", err)
	}
}

func TestETagRevalidation(t *testing.T) {
	var full, notModified atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"v1"` {
			notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		full.Add(1)
		w.Header().Set("ETag", `"v1"`)
		w.Write([]byte("document v1"))
	}))
	defer srv.Close()
	r := newResolver(t, Options{CacheTTL: 50 * time.Millisecond})
	if _, err := r.Fetch(context.Background(), srv.URL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(80 * time.Millisecond) // expire the entry
	res, err := r.Fetch(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if full.Load() != 1 || notModified.Load() != 1 || string(res.Data) != "document v1" {
		t.Fatalf("full %d, 304 %d, data %q", full.Load(), notModified.Load(), res.Data)
	}
	r.ClearCache()
	if _, err := r.Fetch(context.Background(), srv.URL); err != nil || full.Load() != 2 {
		t.Fatalf("after ClearCache: full %d, %v", full.Load(), err)
	}
}

func TestSingleFlight(t *testing.T) {
	var calls atomic.Int32
	gate := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		<-gate
		w.Write([]byte("shared"))
	}))
	defer srv.Close()
	r := newResolver(t, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.Fetch(context.Background(), srv.URL+"/d")
			if err == nil && string(res.Data) != "shared" {
				err = fmt.Errorf("data %q", res.Data)
			}
			errs <- err
		}()
	}
	time.Sleep(200 * time.Millisecond) // all 100 are waiting on the one request
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("100 concurrent fetches made %d upstream requests, want 1", n)
	}
}

func TestDigest(t *testing.T) {
	body := []byte("pinned document")
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Write(body)
	}))
	defer srv.Close()
	r := newResolver(t, Options{})
	good := digest(body)
	bad := digest([]byte("other"))
	if _, err := r.Fetch(context.Background(), srv.URL+"/a#sha256="+bad); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("fragment mismatch: %v", err)
	}
	if _, err := r.Fetch(context.Background(), srv.URL+"/a", WithSHA256(bad)); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("option mismatch: %v", err)
	}
	if calls.Load() != 2 {
		t.Fatalf("a mismatched document was cached (%d requests for 2 fetches)", calls.Load())
	}
	if res, err := r.Fetch(context.Background(), srv.URL+"/a#sha256="+strings.ToUpper(good)); err != nil || res.SHA256 != good {
		t.Fatalf("fragment match: %v", err)
	}
	if _, err := r.Fetch(context.Background(), srv.URL+"/a", WithSHA256(good)); err != nil {
		t.Fatalf("option match: %v", err)
	}
	if _, err := r.Fetch(context.Background(), srv.URL+"/a#sha256="+good, WithSHA256(bad)); !errors.Is(err, ErrInvalidURI) {
		t.Fatalf("disagreeing digests: %v", err)
	}
	if _, err := r.Fetch(context.Background(), srv.URL+"/a#sha256=zz"); !errors.Is(err, ErrInvalidURI) {
		t.Fatalf("malformed digest: %v", err)
	}
}

func TestFiles(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	doc := filepath.Join(root, "site.yaml")
	if err := os.WriteFile(doc, []byte("kind: Site\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("no"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := newResolver(t, Options{Roots: []string{root}})
	res, err := r.Fetch(context.Background(), "file://"+doc)
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Data) != "kind: Site\n" || res.URL != "file://"+doc || res.SHA256 != digest(res.Data) {
		t.Fatalf("file result = %+v", res)
	}
	tests := []struct {
		name, uri string
		want      error
	}{
		{"relative", "file:site.yaml", ErrInvalidURI},
		{"host-qualified", "file://server/share/site.yaml", ErrInvalidURI},
		{"missing", "file://" + filepath.Join(root, "nope.yaml"), ErrNotFound},
		{"directory", "file://" + filepath.Join(root, "dir"), ErrInvalidURI},
		{"symlink escape", "file://" + filepath.Join(root, "escape"), ErrInvalidURI},
		{"outside roots", "file://" + filepath.Join(outside, "secret"), ErrInvalidURI},
		{"dot-dot escape", "file://" + root + "/../" + filepath.Base(outside) + "/secret", ErrInvalidURI},
		{"user info", "file://u:p@/etc/hosts", ErrInvalidURI},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := r.Fetch(context.Background(), tc.uri); !errors.Is(err, tc.want) {
				t.Fatalf("Fetch(%s) error = %v, want %v", tc.uri, err, tc.want)
			}
		})
	}
	// Without roots any absolute path is allowed.
	free := newResolver(t, Options{})
	if _, err := free.Fetch(context.Background(), "file://"+filepath.Join(outside, "secret")); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownSchemeAndMalformedURIs(t *testing.T) {
	r := newResolver(t, Options{})
	_, err := r.Fetch(context.Background(), "ftp://example/x")
	if !errors.Is(err, ErrUnsupportedScheme) || !strings.Contains(err.Error(), `"ftp"`) || !strings.Contains(err.Error(), "deckhand+https") {
		t.Fatalf("unknown scheme error = %v (must name it and list the supported ones)", err)
	}
	for _, bad := range []string{"", "not a uri", "http://", "http://host:notaport/x", "http://[::1/x", "https:opaque", "/abs/no/scheme", "http://h/x#frag", "http://h/\x00"} {
		if _, err := r.Fetch(context.Background(), bad); !errors.Is(err, ErrInvalidURI) && !errors.Is(err, ErrUnsupportedScheme) {
			t.Errorf("Fetch(%q) error = %v, want invalid URI or unsupported scheme", bad, err)
		}
	}
}

// No password or token may reach an error or a log line, whatever fails.
func TestCredentialsNeverLeak(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/500":
			w.WriteHeader(500)
		case "/404":
			w.WriteHeader(404)
		default:
			w.Write([]byte("ok"))
		}
	}))
	defer srv.Close()
	const password, token = "Sup3rS3cretPw", "T0kenV4lue"
	r := newResolver(t, Options{Logger: logger, Tokens: StaticToken(token), Retries: 2})
	host := strings.TrimPrefix(srv.URL, "http://")
	var errs []string
	for _, uri := range []string{
		"http://admin:" + password + "@" + host + "/500",
		"http://admin:" + password + "@" + host + "/404",
		"http://admin:" + password + "@" + host + ":99999/x",
		"http://admin:" + password + "@127.0.0.1:1/refused",
		"http://admin:" + password + "@" + host + "/ok#sha256=" + strings.Repeat("0", 64),
		"deckhand+http://" + host + "/500",
		"deckhand+http://" + host + "/ok",
		"ftp://admin:" + password + "@" + host + "/x",
		"http://admin:" + password + "@[::1/x",
	} {
		res, err := r.Fetch(context.Background(), uri)
		if err != nil {
			errs = append(errs, err.Error(), fmt.Sprintf("%+v", err))
		} else {
			errs = append(errs, res.URL)
		}
	}
	errs = append(errs, fmt.Sprint(StaticToken(token)), fmt.Sprintf("%v", Options{Tokens: StaticToken(token)}))
	all := strings.Join(errs, "\n") + "\n" + logs.String()
	for _, secret := range []string{password, token} {
		if strings.Contains(all, secret) {
			t.Fatalf("%q leaked:\n%s", secret, all)
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	if _, err := New(Options{Roots: []string{"relative/dir"}}); err == nil {
		t.Error("relative root accepted")
	}
	if _, err := New(Options{RetryWaitMin: time.Second, RetryWaitMax: time.Millisecond}); err == nil {
		t.Error("max wait below min accepted")
	}
	r, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := r.opts
	if o.Retries != 3 || o.ConnectTimeout != 16*time.Second || o.ReadTimeout != 300*time.Second || o.MaxBytes != 64<<20 ||
		o.CacheTTL != 180*time.Second || o.MaxRedirects != 5 || o.RetryWaitMin != 500*time.Millisecond || o.RetryWaitMax != 30*time.Second {
		t.Fatalf("defaults = %+v", o)
	}
}

func TestBackoffBounds(t *testing.T) {
	for attempt := 0; attempt < 40; attempt++ {
		d := backoff(10*time.Millisecond, time.Second, attempt, nil)
		if d < 10*time.Millisecond || d > time.Second {
			t.Fatalf("attempt %d: wait %v outside [10ms, 1s]", attempt, d)
		}
	}
	resp := &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": []string{"120"}}}
	if d := backoff(time.Millisecond, 5*time.Second, 0, resp); d != 5*time.Second {
		t.Fatalf("Retry-After 120 with max 5s: wait %v", d)
	}
}

func TestHTTPSWithCustomCA(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Write([]byte("over tls"))
	}))
	defer srv.Close()
	// Unknown CA: refused, and a verification failure is not retried.
	if _, err := newResolver(t, Options{}).Fetch(context.Background(), srv.URL); err == nil {
		t.Fatal("a certificate from an unknown CA was accepted")
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("handler reached %d times through an unverified TLS connection", n)
	}
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	res, err := newResolver(t, Options{TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}).Fetch(context.Background(), srv.URL)
	if err != nil || string(res.Data) != "over tls" {
		t.Fatalf("with the CA: %v", err)
	}
}
