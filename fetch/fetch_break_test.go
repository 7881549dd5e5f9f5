package fetch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// DEFECT: the root itself is re-opened by path, following symbolic links, on
// every fetch (openBeneath → os.OpenRoot(root.real)). The Options doc says
// "Each root is resolved once, by New" and the README says no symbolic link
// "swapped in during the fetch" leads out; but whoever can write the root's
// parent directory can replace the root with a link to anywhere after New,
// and every later fetch of file:///<root>/… reads beneath the link's target.
// Suggested fix: open each root once in New (keep the *os.Root, or an
// O_PATH|O_DIRECTORY descriptor) and resolve beneath that descriptor; or
// open the root with O_NOFOLLOW on every component and check (dev, inode)
// against what New saw.
// FIXED: New opens each root once with os.OpenRoot and keeps it; every
// fetch opens beneath that held root (Resolver.Close releases it).
func TestRootBoundToDirectoryNewOpened(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{root, outside} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "doc"), []byte("inside"), 0o600); err != nil {
		t.Fatal(err)
	}
	const secret = "OUTSIDE-THE-ROOT"
	if err := os.WriteFile(filepath.Join(outside, "doc"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newResolver(t, Options{Roots: []string{root}, CacheTTL: -1})
	uri := "file://" + filepath.Join(root, "doc")
	if res, err := r.Fetch(context.Background(), uri); err != nil || string(res.Data) != "inside" {
		t.Fatalf("baseline: %v", err)
	}
	// The root (not something beneath it) is swapped for a link out.
	if err := os.Rename(root, root+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, root); err != nil {
		t.Fatal(err)
	}
	res, err := r.Fetch(context.Background(), uri)
	if err == nil && string(res.Data) == secret {
		t.Fatalf("read %q from outside the root: the root %s, resolved by New, was re-opened through a symbolic link swapped in later", res.Data, root)
	}
}

// DEFECT: Options.MaxBytes = math.MaxInt64 (a natural "no limit") is
// accepted by New, but readLimited reads through io.LimitReader(rd, max+1),
// and max+1 overflows to a negative limit: every document is read as zero
// bytes and returned as a successful, empty document (with the empty
// string's sha256). Suggested fix: cap the limit (if max == MaxInt64 use
// max, or read max then probe one more byte), or reject such values in New.
func TestBreakMaxBytesMaxInt64ReturnsEmptyDocuments(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "doc.yaml")
	if err := os.WriteFile(p, []byte("kind: Site\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("kind: Site\n")) }))
	defer srv.Close()
	r := newResolver(t, Options{MaxBytes: math.MaxInt64})
	for _, uri := range []string{"file://" + p, srv.URL + "/doc.yaml"} {
		res, err := r.Fetch(context.Background(), uri)
		if err != nil {
			t.Fatalf("%s: %v", uri, err)
		}
		if string(res.Data) != "kind: Site\n" {
			t.Errorf("%s: got %d bytes %q (sha256 %s), want the 11-byte document", uri, res.Size, res.Data, res.SHA256)
		}
	}
}

// DEFECT: a huge Retry-After (seconds) overflows time.Duration in
// retryAfter (time.Duration(s) * time.Second wraps negative for s >
// ~9.2e9), and backoff then clamps max(0, …) to 0: a server asking to be
// left alone for a long time is retried at once, instead of after the
// documented cap RetryWaitMax. Suggested fix: if s > int64(hi/time.Second)
// return hi (compare before multiplying).
func TestBreakRetryAfterOverflowRetriesImmediately(t *testing.T) {
	const lo, hi = 500 * time.Millisecond, 30 * time.Second
	for _, v := range []string{"10000000000", "9300000000", "18446744073"} {
		resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {v}}}
		if d := backoff(lo, hi, 0, resp); d != hi {
			t.Errorf("Retry-After: %s → wait %v, want the cap %v", v, d, hi)
		}
	}
}

// DEFECT: Result.Data is shared between the cache, the single flight and
// every caller (Fetch copies the Result struct, not the bytes), and a
// cached document's digest check compares the stored SHA256 string, never
// the bytes. A caller that edits its document in place (e.g. rewriting
// it before parsing) silently changes what every later caller gets, and a
// later Fetch with WithSHA256 / #sha256= of the real document returns the
// altered bytes with no ErrDigestMismatch. Suggested fix: hand each caller
// its own copy of Data (bytes.Clone), or document that Data must not be
// modified and recompute the digest on cache hits that expect one.
// FIXED: every Result owns its Data (cloned from the cache and from a
// shared flight), and a pinned cache hit checks the digest of the bytes it
// returns (TestPinnedCacheHitChecksReturnedBytes).
func TestResultOwnsItsBytes(t *testing.T) {
	const doc = "kind: Site\nname: prod\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(doc)) }))
	defer srv.Close()
	r := newResolver(t, Options{})
	res, err := r.Fetch(context.Background(), srv.URL+"/site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	copy(res.Data, "kind: EVIL") // the first caller's own business…
	again, err := r.Fetch(context.Background(), srv.URL+"/site.yaml#sha256="+digest([]byte(doc)))
	if err != nil {
		t.Fatalf("second fetch: %v", err)
	}
	if string(again.Data) != doc {
		t.Fatalf("a fetch pinned to sha256 %s returned %q (sha256 %s) without ErrDigestMismatch", digest([]byte(doc)), again.Data, digest(again.Data))
	}
}

// DEFECT: a redirect refused because its Location carries user info puts
// that Location verbatim (net/http's url.Error.URL is the raw Location) in
// the returned error and the warn log: "redirect URL carries credentials"
// … with the password in it. The README: "Passwords and tokens never appear
// in errors, logs or Result". Suggested fix: in get, when the error is a
// *url.Error, replace its URL by the request's credential-free URL (or
// redact user info from ue.URL) before wrapping/logging.
func TestBreakRefusedRedirectLocationPasswordInErrorAndLog(t *testing.T) {
	const password = "R3directPassw0rd"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://svc:"+password+"@"+r.Host+"/other")
		w.WriteHeader(http.StatusFound)
	}))
	defer srv.Close()
	var logs bytes.Buffer
	r := newResolver(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	_, err := r.Fetch(context.Background(), srv.URL+"/doc")
	if err == nil {
		t.Fatal("redirect to a URL with user info was followed")
	}
	all := err.Error() + "\n" + logs.String()
	if strings.Contains(all, password) {
		t.Fatalf("password leaked:\n%s", all)
	}
}

// DEFECT: StaticToken hides the token from String only. %#v (GoString is
// not defined) prints fetch.StaticToken("…") — also through a Resolver or
// Options — and encoding/json, hence slog's JSON handler, marshals it as a
// plain string. Logging the options with slog.NewJSONHandler puts the
// service token in the log. Suggested fix: give StaticToken GoString,
// MarshalText/MarshalJSON and LogValue returning "[REDACTED]" (and a
// Format method, so %d/%x cannot print it either).
func TestBreakStaticTokenLeaksThroughGoStringAndJSON(t *testing.T) {
	const token = "T0kenV4lue-break"
	opts := Options{Tokens: StaticToken(token)}
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("fetch resolver configured", "options", opts)
	j, _ := json.Marshal(struct{ Tokens TokenSource }{opts.Tokens})
	for name, s := range map[string]string{
		"%#v of StaticToken":          fmt.Sprintf("%#v", StaticToken(token)),
		"%#v of Options":              fmt.Sprintf("%#v", opts),
		"%#v of Resolver.opts":        fmt.Sprintf("%#v", r.opts),
		"json of a TokenSource field": string(j),
		"slog JSON handler":           logs.String(),
	} {
		if strings.Contains(s, token) {
			t.Errorf("%s leaks the token: %s", name, s)
		}
	}
}

// DEFECT: after retries, a server that keeps answering 503 (or 500, 502,
// 504; 429 is fine) gives an error that is not ErrHTTPStatus: go-retryablehttp's
// ErrorPropagatedRetryPolicy turns the status into its own plain error
// ("unexpected HTTP status 503 Service Unavailable") and get returns the
// attemptsError wrapping that, before the status switch ever sees the
// response. The package doc: "ErrHTTPStatus: the server answered with a
// non-success status" — callers cannot tell "the server said 503" from a
// network failure. (403 and 501, not retried, are ErrHTTPStatus.)
// Suggested fix: in the ErrorHandler (or get), when resp != nil, close
// the error into fmt.Errorf("%w %d …: giving up after %d attempt(s)",
// ErrHTTPStatus, resp.StatusCode, attempts).
func TestBreakRetriedStatusIsNotErrHTTPStatus(t *testing.T) {
	for _, code := range []int{429, 500, 502, 503, 504} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }))
		_, err := newResolver(t, Options{Logger: slog.New(slog.DiscardHandler)}).Fetch(context.Background(), srv.URL)
		srv.Close()
		if !errors.Is(err, ErrHTTPStatus) {
			t.Errorf("HTTP %d after retries: %v — not ErrHTTPStatus", code, err)
		}
	}
}

// DEFECT (minor): a whitespace-only token ("   ", e.g. a blank line in a
// token file or an env var set to a space) passes both the New check and
// the fetch-time check (tok == ""), and the request goes out with
// "Authorization: Bearer    ", which the server parses as "Bearer" with no
// credential: the empty bearer header issue 15 item 6 was about, by
// another spelling. Suggested fix: strings.TrimSpace(tok) == "" is
// ErrEmptyToken (at New for StaticToken, and at fetch time).
func TestBreakWhitespaceTokenSendsEmptyBearer(t *testing.T) {
	var calls atomic.Int32
	var seen atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		seen.Store(r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	r, err := New(Options{Tokens: StaticToken("   ")})
	if err != nil {
		if errors.Is(err, ErrEmptyToken) {
			return
		}
		t.Fatal(err)
	}
	_, err = r.Fetch(context.Background(), "deckhand+"+srv.URL+"/x")
	if calls.Load() != 0 || !errors.Is(err, ErrEmptyToken) {
		t.Fatalf("a blank token: error %v, %d request(s) sent with Authorization %q", err, calls.Load(), seen.Load())
	}
}

// DEFECT: a connection lost while the body is read is not retried. The
// README: "retried: connection errors, 429, 5xx except 501"; but
// go-retryablehttp only retries until the response headers arrive, and get
// reads the body afterwards, outside the retry loop: a reset after the
// first bytes (or a ReadTimeout expiring mid-body) fails the fetch at once
// with "unexpected EOF" — for the multi-MiB documents this package exists
// for, the likeliest connection error of all. Suggested fix: read the body
// inside the retry (e.g. loop over attempts in get, treating a body read
// error other than ErrTooLarge or a finished context as retryable, with the
// same backoff), or document that only errors before the headers are
// retried.
// FIXED: get retries a body cut short like a connection error, on the same
// attempt budget and backoff, honouring the context
// (TestMidBodyRetryBudgetAndContext).
func TestConnectionLostMidBodyRetried(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Content-Length", "100")
			w.Write([]byte("kind: Si"))
			w.(http.Flusher).Flush()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close() // the connection drops mid-body
			}
			return
		}
		w.Write([]byte("kind: Site\n"))
	}))
	defer srv.Close()
	res, err := newResolver(t, Options{Logger: slog.New(slog.DiscardHandler)}).Fetch(context.Background(), srv.URL)
	if err != nil {
		t.Fatalf("after %d request(s): %v — a connection error mid-body was not retried", calls.Load(), err)
	}
	if string(res.Data) != "kind: Site\n" {
		t.Fatalf("got %q", res.Data)
	}
}

// DEFECT: cached documents that came with an ETag are never evicted. put's
// sweep ("keep the map from growing without bound") skips every entry with
// an ETag, stale only drops ETag-less ones, and nothing else removes
// entries: each distinct URI (times each distinct set of credentials) that
// a server answered with an ETag — Deckhand's rendered documents of every
// revision, say — stays in memory for the Resolver's lifetime, bodies of up
// to MaxBytes included, and every put scans them all under the lock.
// Suggested fix: bound the cache (entry count and total bytes, LRU), and
// drop ETag entries some time after they expire (e.g. 10 × TTL).
// FIXED: the cache is bounded (CacheMaxEntries, CacheMaxBytes, LRU) and an
// ETag entry is dropped 10 × CacheTTL after it was stored, found through a
// heap ordered by drop time, without scanning (TestCacheBounds).
func TestETagEntriesEvicted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.Write(bytes.Repeat([]byte("x"), 4096))
	}))
	defer srv.Close()
	r := newResolver(t, Options{CacheTTL: time.Millisecond})
	const n = 500
	for i := 0; i < n; i++ {
		if _, err := r.Fetch(context.Background(), fmt.Sprintf("%s/revisions/%d/rendered-documents", srv.URL, i)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // every entry is long expired
	if _, err := r.Fetch(context.Background(), srv.URL+"/one-more"); err != nil {
		t.Fatal(err)
	}
	r.cache.mu.Lock()
	kept, bytesKept := len(r.cache.m), 0
	for _, e := range r.cache.m {
		bytesKept += len(e.res.Data)
	}
	r.cache.mu.Unlock()
	if kept > n/2 {
		t.Fatalf("%d expired documents (%d bytes) still cached with a 1 ms TTL: ETag entries are never evicted", kept, bytesKept)
	}
}

// DEFECT (minor): an empty pin, "#sha256=" (a digest lost to a shell
// variable that was not set: "…#sha256=$DIGEST"), is accepted as no pin at
// all: expectedDigest skips empty strings, so the document is returned
// unverified. "#sha256=<hex>" promises the fetch fails unless the document
// has that digest; an empty one can never match and should be
// ErrInvalidURI like any other malformed digest. Suggested fix: in
// parseTarget, a "sha256=" fragment with nothing after it is ErrInvalidURI
// ("expected sha256 digest must be 64 hex digits").
func TestBreakEmptySHA256FragmentIsNoPin(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("tampered")) }))
	defer srv.Close()
	res, err := newResolver(t, Options{}).Fetch(context.Background(), srv.URL+"/site.yaml#sha256=")
	if !errors.Is(err, ErrInvalidURI) {
		t.Fatalf("#sha256= (empty): error %v, returned %q unverified", err, res.Data)
	}
}

// DEFECT: a redirect whose Location cannot be parsed puts the raw Location
// in the error text ("failed to parse Location header %q" — net/http), so a
// password in it reaches the error and the warn log; redacting the
// url.Error's URL field (as done for refused redirects) does not reach
// this one. Suggested fix: for errors that carry a Location, replace the
// error text by a fixed one ("the server's redirect Location cannot be
// parsed") — e.g. match *url.Error with Err text prefix "failed to parse
// Location header" — or fetch without following redirects and follow them
// in get, parsing Location itself.
func TestBreakUnparsableLocationPasswordInError(t *testing.T) {
	const password = "L0cationPassw0rd"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://svc:"+password+"@"+r.Host+":notaport/other")
		w.WriteHeader(http.StatusFound)
	}))
	defer srv.Close()
	var logs bytes.Buffer
	r := newResolver(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	_, err := r.Fetch(context.Background(), srv.URL+"/doc")
	if err == nil {
		t.Fatal("an unparsable redirect was followed")
	}
	if all := err.Error() + "\n" + logs.String(); strings.Contains(all, password) {
		t.Fatalf("password leaked:\n%s", all)
	}
}
