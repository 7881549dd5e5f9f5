package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Close releases the held roots and idle connections; later fetches fail
// with ErrClosed, and closing again is harmless.
func TestResolverClose(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "doc"), []byte("d"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("h")) }))
	defer srv.Close()
	r, err := New(quick(Options{Roots: []string{dir}}))
	if err != nil {
		t.Fatal(err)
	}
	uris := []string{"file://" + filepath.Join(dir, "doc"), srv.URL + "/doc"}
	for _, u := range uris {
		if _, err := r.Fetch(context.Background(), u); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := r.roots[0].root.Stat("."); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("the root is still open after Close: Stat: %v", err)
	}
	// A file fetch that got past the check when Close ran.
	if _, err := r.openFile(filepath.Join(dir, "doc")); !errors.Is(err, ErrClosed) {
		t.Fatalf("open beneath a closed root: %v, want ErrClosed", err)
	}
	for _, u := range uris { // cached before Close: still refused
		if _, err := r.Fetch(context.Background(), u); !errors.Is(err, ErrClosed) {
			t.Fatalf("%s after Close: %v, want ErrClosed", u, err)
		}
	}
}

// A root is the directory New opened: a "current -> releases/v1" link
// flipped to v2 is followed by a new Resolver only (the documented way).
func TestRootFlipNeedsNewResolver(t *testing.T) {
	base := t.TempDir()
	for _, v := range []string{"v1", "v2"} {
		d := filepath.Join(base, "releases", v)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "site.yaml"), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	current := filepath.Join(base, "current")
	if err := os.Symlink(filepath.Join("releases", "v1"), current); err != nil {
		t.Fatal(err)
	}
	uri := "file://" + filepath.Join(current, "site.yaml")
	old := newResolver(t, Options{Roots: []string{current}, CacheTTL: -1})
	if res, err := old.Fetch(context.Background(), uri); err != nil || string(res.Data) != "v1" {
		t.Fatalf("before the flip: %v", err)
	}
	// The deploy flip: a new link renamed over the old one (atomic).
	if err := os.Symlink(filepath.Join("releases", "v2"), current+".new"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(current+".new", current); err != nil {
		t.Fatal(err)
	}
	if res, err := old.Fetch(context.Background(), uri); err != nil || string(res.Data) != "v1" {
		t.Fatalf("the old Resolver after the flip: %v (want v1, its root)", err)
	}
	if res, err := newResolver(t, Options{Roots: []string{current}, CacheTTL: -1}).Fetch(context.Background(), uri); err != nil || string(res.Data) != "v2" {
		t.Fatalf("a new Resolver after the flip: %v (want v2)", err)
	}
}

// A pinned fetch served from the cache checks the digest of the bytes it
// returns, not the digest stored with them: a cache entry altered in place
// (as the aliasing defect of TestResultOwnsItsBytes once allowed) is
// ErrDigestMismatch.
func TestPinnedCacheHitChecksReturnedBytes(t *testing.T) {
	const doc = "kind: Site\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(doc)) }))
	defer srv.Close()
	r := newResolver(t, Options{})
	if _, err := r.Fetch(context.Background(), srv.URL+"/d"); err != nil {
		t.Fatal(err)
	}
	r.cache.mu.Lock()
	if len(r.cache.m) != 1 {
		t.Fatalf("%d cache entries, want 1", len(r.cache.m))
	}
	for _, e := range r.cache.m {
		copy(e.res.Data, "kind: EVIL")
	}
	r.cache.mu.Unlock()
	res, err := r.Fetch(context.Background(), srv.URL+"/d", WithSHA256(digest([]byte(doc))))
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("pinned cache hit on altered bytes: %v, data %q", err, res.Data)
	}
}

// Callers sharing one flight each get their own bytes.
func TestSingleFlightCallersOwnBytes(t *testing.T) {
	gate := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-gate
		w.Write([]byte("shared"))
	}))
	defer srv.Close()
	r := newResolver(t, Options{CacheTTL: -1})
	tg, err := parseTarget(srv.URL + "/d")
	if err != nil {
		t.Fatal(err)
	}
	key := r.cacheKey(tg) + "#"
	results := make([]*Result, 2)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _ = r.Fetch(context.Background(), srv.URL+"/d")
		}()
	}
	for r.flights.waiting(key) < 2 {
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	if results[0] == nil || results[1] == nil {
		t.Fatal("a shared fetch failed")
	}
	if &results[0].Data[0] == &results[1].Data[0] {
		t.Fatal("two callers of one flight share the same Data")
	}
}

// The cache's bounds: entries and bytes (least recently used evicted
// first), documents larger than the byte bound not cached, and ETag
// entries kept for revalidation etagRetain × TTL, no longer. A random
// sequence of operations keeps the map, the LRU list, the drop heap and
// the byte count consistent.
func TestCacheBounds(t *testing.T) {
	res := func(n int) *Result { return &Result{Data: bytes.Repeat([]byte("x"), n)} }
	keys := func(c *cache) string {
		var out []string
		for e := c.lru.Front(); e != nil; e = e.Next() {
			out = append(out, e.Value.(*cacheEntry).key)
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		name       string
		maxEntries int
		maxBytes   int64
		ops        func(c *cache)
		want       string // keys, most recently used first
	}{
		{"entries, LRU", 3, 1 << 20, func(c *cache) {
			for _, k := range []string{"a", "b", "c"} {
				c.put(k, res(1), "", time.Hour)
			}
			c.get("a") // a is used: b is now the least recent
			c.put("d", res(1), "", time.Hour)
		}, "d,a,c"},
		{"bytes, LRU", 100, 10, func(c *cache) {
			c.put("a", res(4), "", time.Hour)
			c.put("b", res(4), "", time.Hour)
			c.put("c", res(4), "", time.Hour)
		}, "c,b"},
		{"larger than the byte bound: not cached", 100, 10, func(c *cache) {
			c.put("a", res(4), "", time.Hour)
			c.put("big", res(11), "", time.Hour)
		}, "a"},
		{"replacing an entry", 100, 10, func(c *cache) {
			c.put("a", res(8), "", time.Hour)
			c.put("a", res(9), "", time.Hour)
		}, "a"},
		{"expired entries dropped by the next put", 100, 1 << 20, func(c *cache) {
			c.put("plain", res(1), "", time.Nanosecond)
			c.put("etag", res(1), `"v1"`, time.Nanosecond)
			time.Sleep(time.Millisecond) // ≥ etagRetain × 1 ns
			c.put("new", res(1), "", time.Hour)
		}, "new"},
		{"stale drops what expired without an ETag", 100, 1 << 20, func(c *cache) {
			c.put("plain", res(1), "", time.Nanosecond)
			time.Sleep(time.Millisecond)
			if r, _ := c.stale("plain"); r != nil {
				panic("an expired entry without an ETag was offered for revalidation")
			}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache(tc.maxEntries, tc.maxBytes)
			tc.ops(c)
			if got := keys(c); got != tc.want {
				t.Fatalf("cache holds %q, want %q", got, tc.want)
			}
			checkCache(t, c)
		})
	}

	t.Run("ETag entries kept etagRetain × TTL", func(t *testing.T) {
		c := newCache(10, 1<<20)
		const ttl = time.Hour
		c.put("e", res(1), `"v1"`, ttl)
		c.put("p", res(1), "", ttl)
		e, p := c.m["e"], c.m["p"]
		if got := e.dropAt.Sub(e.expires); got != (etagRetain-1)*ttl {
			t.Errorf("an ETag entry is dropped %v after it expires, want %v", got, (etagRetain-1)*ttl)
		}
		if !p.dropAt.Equal(p.expires) {
			t.Errorf("an entry without an ETag is dropped %v after it expires, want at once", p.dropAt.Sub(p.expires))
		}
	})

	t.Run("random operations", func(t *testing.T) {
		c := newCache(8, 64)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < 20000; i++ {
			k := fmt.Sprint(rng.IntN(20))
			switch rng.IntN(5) {
			case 0, 1:
				etag := ""
				if rng.IntN(2) == 0 {
					etag = `"e"`
				}
				c.put(k, res(rng.IntN(20)), etag, time.Duration(rng.IntN(3))*time.Microsecond)
			case 2:
				c.get(k)
			case 3:
				c.stale(k)
			case 4:
				if rng.IntN(100) == 0 {
					c.clear()
				}
			}
			checkCache(t, c)
		}
	})

	t.Run("options", func(t *testing.T) {
		for _, o := range []Options{{CacheMaxEntries: -1}, {CacheMaxBytes: -1}} {
			_, err := New(o)
			if err == nil || !strings.Contains(err.Error(), "CacheMax") {
				t.Errorf("New(%+v): %v, want an error naming the option", o, err)
			}
		}
		r := newResolver(t, Options{})
		if r.cache.maxEntries != DefaultCacheMaxEntries || r.cache.maxBytes != DefaultCacheMaxBytes {
			t.Errorf("defaults: %d entries, %d bytes", r.cache.maxEntries, r.cache.maxBytes)
		}
	})

	t.Run("through a Resolver", func(t *testing.T) {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.Write([]byte(r.URL.Path))
		}))
		defer srv.Close()
		r := newResolver(t, Options{CacheMaxEntries: 2})
		for _, p := range []string{"/a", "/b", "/c", "/c", "/b", "/a"} {
			if _, err := r.Fetch(context.Background(), srv.URL+p); err != nil {
				t.Fatal(err)
			}
		}
		// a, b, c fetched; c and b from the cache; a was evicted by c.
		if n := calls.Load(); n != 4 {
			t.Fatalf("%d upstream requests, want 4", n)
		}
	})
}

// checkCache asserts the cache's structures agree with each other and its bounds.
func checkCache(t *testing.T, c *cache) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) != c.lru.Len() || len(c.m) != len(c.drops) {
		t.Fatalf("map %d, lru %d, heap %d entries", len(c.m), c.lru.Len(), len(c.drops))
	}
	var sum int64
	for k, e := range c.m {
		sum += int64(len(e.res.Data))
		if e.key != k || c.drops[e.index] != e || e.elem.Value.(*cacheEntry) != e {
			t.Fatalf("entry %q is inconsistent", k)
		}
	}
	for i := 1; i < len(c.drops); i++ {
		if c.drops[i].dropAt.Before(c.drops[(i-1)/2].dropAt) {
			t.Fatalf("heap order broken at %d", i)
		}
	}
	if sum != c.bytes || len(c.m) > c.maxEntries || c.bytes > c.maxBytes {
		t.Fatalf("%d entries, %d bytes (counted %d); bounds %d, %d", len(c.m), sum, c.bytes, c.maxEntries, c.maxBytes)
	}
}

// A body cut short is retried on the attempt budget shared with the retries
// before the headers (Retries: 2 is three requests in all, whatever fails),
// never when the document is too large, and a cancelled context stops the
// wait before the next attempt.
func TestMidBodyRetryBudgetAndContext(t *testing.T) {
	cut := func(w http.ResponseWriter) {
		w.Header().Set("Content-Length", "100")
		w.Write([]byte("kind: Si"))
		w.(http.Flusher).Flush()
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
	}
	quiet := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name    string
		answers []string // per request: "cut", "503", "ok", "big"; the last repeats
		opts    Options
		calls   int32
		wantErr error // nil: success
	}{
		{"always cut", []string{"cut"}, Options{Retries: 2}, 3, errAny},
		{"503 then cut", []string{"503", "cut"}, Options{Retries: 2}, 3, errAny},
		{"cut then 503", []string{"cut", "503"}, Options{Retries: 2}, 3, ErrHTTPStatus},
		{"cut, 503, then ok", []string{"cut", "503", "ok"}, Options{Retries: 2}, 3, nil},
		{"no retries", []string{"cut", "ok"}, Options{Retries: -1}, 1, errAny},
		{"too large is not retried", []string{"big", "ok"}, Options{Retries: 2, MaxBytes: 10}, 1, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1))
				switch tc.answers[min(n, len(tc.answers))-1] {
				case "cut":
					cut(w)
				case "503":
					w.WriteHeader(http.StatusServiceUnavailable)
				case "big":
					w.(http.Flusher).Flush() // chunked: no Content-Length
					w.Write(bytes.Repeat([]byte("x"), 100))
				default:
					w.Write([]byte("kind: Site\n"))
				}
			}))
			defer srv.Close()
			o := tc.opts
			o.Logger = quiet
			res, err := newResolver(t, o).Fetch(context.Background(), srv.URL)
			if n := calls.Load(); n != tc.calls {
				t.Errorf("%d requests, want %d", n, tc.calls)
			}
			switch {
			case tc.wantErr == nil && (err != nil || string(res.Data) != "kind: Site\n"):
				t.Fatalf("want the document, got %v", err)
			case tc.wantErr == errAny && err == nil, tc.wantErr != nil && tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
			var ae *attemptsError
			if tc.wantErr != nil && tc.wantErr != ErrTooLarge && (!errors.As(err, &ae) || ae.attempts != int(tc.calls)) {
				t.Errorf("error %v does not count %d attempts", err, tc.calls)
			}
		})
	}

	t.Run("context cancelled during the wait", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			cut(w)
		}))
		defer srv.Close()
		// Cancelled when get announces the wait before the next attempt.
		onRetry := slog.New(cancelOn{"body cut short", cancel})
		r := newResolver(t, Options{Retries: 5, RetryWaitMin: time.Hour, RetryWaitMax: time.Hour, Logger: onRetry, CacheTTL: -1})
		// The retry loop itself (Fetch's caller would return at once
		// anyway: the shared flight is detached).
		tg, err := parseTarget(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = r.http.get(ctx, tg.u, http.Header{}, nil, "")
		if !errors.Is(err, context.Canceled) || calls.Load() != 1 {
			t.Fatalf("%v after %d request(s), want context.Canceled after 1", err, calls.Load())
		}
	})
}

var errAny = errors.New("any error")

// cancelOn is a slog.Handler that calls cancel on a record whose message
// contains msg.
type cancelOn struct {
	msg    string
	cancel context.CancelFunc
}

func (cancelOn) Enabled(context.Context, slog.Level) bool { return true }
func (h cancelOn) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.msg) {
		h.cancel()
	}
	return nil
}
func (h cancelOn) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h cancelOn) WithGroup(string) slog.Handler      { return h }

// BenchmarkCachePut stores into a full cache of 10 000 entries half of
// which carry an ETag: each store evicts one entry, never scanning.
func BenchmarkCachePut(b *testing.B) {
	const n = 10000
	c := newCache(n, 1<<40)
	res := &Result{Data: make([]byte, 64)}
	for i := 0; i < n; i++ {
		c.put(fmt.Sprint(i), res, []string{"", `"e"`}[i%2], time.Hour)
	}
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = fmt.Sprint(n + i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.put(keys[i%len(keys)], res, `"e"`, time.Hour)
	}
}
