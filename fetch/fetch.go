// Package fetch resolves design-document URIs — the design_ref of a task —
// into bytes, robustly: retries with exponential backoff and jitter, size
// limits enforced while reading, safe redirects (never https to http;
// credentials only to their own origin), a bounded in-memory TTL cache (LRU)
// with single-flight and ETag revalidation keyed by URI and credentials,
// file:// roots no symbolic link escapes, optional integrity digests, and no
// credential ever in an error, a log line or the returned metadata. Every
// Result owns its bytes. A Resolver holds its roots open and keeps idle
// connections: Close it when done.
//
// Supported schemes (one table, see handlers):
//
//	file:///abs/path                absolute paths only; optionally confined to Options.Roots
//	                                (each root opened once by New and held; files opened
//	                                beneath it with os.Root: no symlink escape)
//	http://, https://               basic auth from the URI's user info
//	deckhand+http(s)://…            the prefix is dropped and the service is called
//	promenade+http(s)://…           with a token from Options.Tokens
//
// A "#sha256=<hex>" fragment (or WithSHA256) makes the fetch fail unless the
// document has that digest.
package fetch

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Defaults. The retry and timeout defaults follow the original resolver
// (3 retries, 16 s connect, 300 s read) except that waits grow
// exponentially with jitter from 500 ms instead of sleeping 5^n seconds.
const (
	DefaultRetries        = 3
	DefaultRetryWaitMin   = 500 * time.Millisecond
	DefaultRetryWaitMax   = 30 * time.Second
	DefaultConnectTimeout = 16 * time.Second
	DefaultReadTimeout    = 300 * time.Second
	DefaultMaxBytes       = 64 << 20
	DefaultMaxRedirects   = 5
	DefaultCacheTTL       = 180 * time.Second
	// DefaultCacheMaxEntries and DefaultCacheMaxBytes bound the cache.
	DefaultCacheMaxEntries = 1024
	DefaultCacheMaxBytes   = 256 << 20
)

// Errors callers can test with errors.Is.
var (
	// ErrUnsupportedScheme: no handler for the URI's scheme.
	ErrUnsupportedScheme = errors.New("fetch: unsupported scheme")
	// ErrInvalidURI: the URI is malformed or not allowed (relative file path,
	// path outside the allowed roots, ...).
	ErrInvalidURI = errors.New("fetch: invalid URI")
	// ErrTooLarge: the document exceeds Options.MaxBytes.
	ErrTooLarge = errors.New("fetch: document too large")
	// ErrDigestMismatch: the document's SHA-256 is not the expected one.
	ErrDigestMismatch = errors.New("fetch: digest mismatch")
	// ErrNotFound: the file or HTTP resource does not exist (404, 410, ENOENT).
	ErrNotFound = errors.New("fetch: not found")
	// ErrHTTPStatus: the server answered with a non-success status.
	ErrHTTPStatus = errors.New("fetch: unexpected HTTP status")
	// ErrRedirect: a redirect was refused (https to http, scheme, count).
	ErrRedirect = errors.New("fetch: redirect refused")
	// ErrOutsideRoots: a file:// path is not beneath any of Options.Roots, or
	// reaches outside them through a symbolic link. It is also an
	// ErrInvalidURI.
	ErrOutsideRoots = fmt.Errorf("%w: outside the allowed roots", ErrInvalidURI)
	// ErrEmptyToken: a TokenSource gave an empty (or blank) token (e.g. StaticToken("")),
	// a configuration error; no request is sent.
	ErrEmptyToken = errors.New("fetch: empty service token")
	// ErrNoTokenSource: a deckhand+ or promenade+ URI was fetched by a
	// Resolver without Options.Tokens.
	ErrNoTokenSource = errors.New("fetch: no service token source")
	// ErrClosed: Fetch was called after Close.
	ErrClosed = errors.New("fetch: resolver closed")
)

// TokenSource supplies the token for deckhand+ and promenade+ URIs.
type TokenSource interface {
	// Token returns a token valid for a request made now.
	Token(ctx context.Context) (string, error)
}

// StaticToken is a TokenSource that always returns the same token. An empty
// StaticToken is a configuration error: New refuses it, and Token returns
// ErrEmptyToken.
type StaticToken string

// Token implements TokenSource.
func (t StaticToken) Token(context.Context) (string, error) {
	if strings.TrimSpace(string(t)) == "" {
		return "", ErrEmptyToken
	}
	return string(t), nil
}

// String never reveals the token.
func (StaticToken) String() string { return "[REDACTED]" }

// GoString never reveals the token (%#v).
func (StaticToken) GoString() string { return `fetch.StaticToken("[REDACTED]")` }

// MarshalText never reveals the token (encoding/json, slog's handlers).
func (StaticToken) MarshalText() ([]byte, error) { return []byte("[REDACTED]"), nil }

// LogValue never reveals the token.
func (StaticToken) LogValue() slog.Value { return slog.StringValue("[REDACTED]") }

// Options configure a Resolver. The zero value is usable.
type Options struct {
	// Roots, when set, confine file:// paths to these directories: a path
	// must lie beneath a root (as written, or as the root resolves), and the
	// file is opened beneath it with os.Root, so no symbolic link — absolute,
	// or relative and climbing out, even one swapped in during the fetch —
	// reaches outside. Each root is opened once, by New, and stays bound to
	// the directory New found: replacing the root (or a link to it) later
	// does not move it — to follow a re-pointed root, e.g. a
	// "current -> releases/v2" deploy flip, make a new Resolver (and Close
	// the old one).
	Roots []string
	// Tokens supplies tokens for deckhand+ and promenade+ URIs. It is the
	// Resolver's one service identity: cached service documents are shared by
	// every caller of the Resolver. An empty StaticToken is refused.
	Tokens TokenSource
	// TokenHeader is the header the token goes in: "Authorization" (the
	// default) sends "Bearer <token>"; any other name (e.g. "X-Auth-Token",
	// as Keystone services expect) sends the bare token.
	TokenHeader string
	// TLS configures https (custom CA pool, client certificate).
	TLS *tls.Config
	// Retries after the first attempt (default 3; -1 for none).
	Retries int
	// Bounds of the wait between attempts (defaults 500 ms and 30 s). A
	// server's Retry-After is honoured up to RetryWaitMax.
	RetryWaitMin, RetryWaitMax time.Duration
	// ConnectTimeout bounds dialling (default 16 s); ReadTimeout bounds one
	// attempt from request to last byte (default 300 s). The caller's
	// context bounds everything.
	ConnectTimeout, ReadTimeout time.Duration
	// MaxBytes is the largest document accepted (default 64 MiB).
	MaxBytes int64
	// MaxRedirects (default 5; -1 for none).
	MaxRedirects int
	// CacheTTL is how long a fetched document is served from memory
	// (default 180 s; -1 disables the cache). Entries are keyed by the URI
	// and its user info (through a keyed hash), so a document fetched with
	// one user's credentials is never served to a call with other or no
	// credentials. An expired entry that came with an ETag is kept for
	// revalidation (If-None-Match) until 10 × CacheTTL after it was
	// stored, then dropped.
	CacheTTL time.Duration
	// CacheMaxEntries and CacheMaxBytes bound the cache (defaults 1024
	// entries and 256 MiB of documents); past either, the least recently
	// used entries are evicted. A document larger than CacheMaxBytes is
	// not cached.
	CacheMaxEntries int
	// CacheMaxBytes bounds the bytes of cached documents; see
	// CacheMaxEntries.
	CacheMaxBytes int64
	// Logger gets retries at debug and give-ups at warn; slog.Default() when nil.
	Logger *slog.Logger
	// MeterProvider receives the Resolver's metrics (attempts, retries,
	// cache hits, bytes; see docs/observability.md);
	// otel.GetMeterProvider() when nil.
	MeterProvider metric.MeterProvider
	// TracerProvider receives a span per Fetch (named fetch.Fetch, with the
	// URI's scheme only: never the URI, which may carry credentials);
	// otel.GetTracerProvider() when nil.
	TracerProvider trace.TracerProvider
}

// Result is a fetched document and what is known about it. Every Result
// owns its Data: a copy, never shared with the cache, a concurrent caller
// or a later call, so the caller may modify it.
type Result struct {
	// Data is the document.
	Data []byte
	// URL is where the document came from (after redirects), without
	// credentials or fragment.
	URL string
	// ContentType is the server's Content-Type; for file:// the type of the
	// file's extension, else one sniffed from its first bytes.
	ContentType string
	// Size is len(Data).
	Size int64
	// SHA256 is the hex digest of Data.
	SHA256 string
	// FromCache says the document came from the Resolver's cache, fresh,
	// without a request.
	FromCache bool
}

// FetchOption adjusts one Fetch call.
type FetchOption func(*fetchOpts)

type fetchOpts struct {
	digest      string
	bypassCache bool
}

// WithSHA256 makes the fetch fail with ErrDigestMismatch unless the
// document's SHA-256 is hexDigest; nothing is cached on a mismatch. The
// digest checked is that of the bytes returned, also on a cache hit.
func WithSHA256(hexDigest string) FetchOption {
	return func(o *fetchOpts) { o.digest = strings.ToLower(hexDigest) }
}

// BypassCache fetches from the source even when a cached copy is fresh (the
// fresh copy then replaces it).
func BypassCache() FetchOption { return func(o *fetchOpts) { o.bypassCache = true } }

// Resolver fetches documents. It is safe for concurrent use.
type Resolver struct {
	opts   Options
	roots  []fileRoot
	logger *slog.Logger
	http   *httpFetcher

	cache   *cache
	flights flightGroup
	tel     *telemetry
	closed  atomic.Bool
	// keyMAC is the random key of the hash that turns a URI and its
	// credentials into a cache and single-flight key.
	keyMAC []byte
}

// handler fetches one parsed target; cached is the previous copy (for
// revalidation) or nil.
type handler func(ctx context.Context, r *Resolver, t *target, cached *Result, etag string) (res *Result, newETag string, err error)

// handlers is the table of supported schemes: adding a scheme is one entry.
var handlers = map[string]handler{
	"file":            fetchFile,
	"http":            fetchHTTP,
	"https":           fetchHTTP,
	"deckhand+http":   fetchService,
	"deckhand+https":  fetchService,
	"promenade+http":  fetchService,
	"promenade+https": fetchService,
}

// SupportedSchemes lists the schemes Fetch understands, sorted.
func SupportedSchemes() []string {
	out := make([]string, 0, len(handlers))
	for s := range handlers {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// New returns a Resolver; invalid options are an error naming the option.
func New(opts Options) (*Resolver, error) {
	if opts.Retries == 0 {
		opts.Retries = DefaultRetries
	}
	if opts.Retries < 0 {
		opts.Retries = 0
	}
	if opts.RetryWaitMin <= 0 {
		opts.RetryWaitMin = DefaultRetryWaitMin
	}
	if opts.RetryWaitMax <= 0 {
		opts.RetryWaitMax = DefaultRetryWaitMax
	}
	if opts.RetryWaitMax < opts.RetryWaitMin {
		return nil, fmt.Errorf("fetch: RetryWaitMax (%v) is below RetryWaitMin (%v)", opts.RetryWaitMax, opts.RetryWaitMin)
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxBytes < 0 {
		return nil, fmt.Errorf("fetch: MaxBytes must be positive, got %d", opts.MaxBytes)
	}
	if opts.MaxRedirects == 0 {
		opts.MaxRedirects = DefaultMaxRedirects
	}
	if opts.MaxRedirects < 0 {
		opts.MaxRedirects = 0
	}
	if opts.CacheTTL == 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	if opts.CacheMaxEntries == 0 {
		opts.CacheMaxEntries = DefaultCacheMaxEntries
	}
	if opts.CacheMaxEntries < 0 {
		return nil, fmt.Errorf("fetch: CacheMaxEntries must be positive, got %d", opts.CacheMaxEntries)
	}
	if opts.CacheMaxBytes == 0 {
		opts.CacheMaxBytes = DefaultCacheMaxBytes
	}
	if opts.CacheMaxBytes < 0 {
		return nil, fmt.Errorf("fetch: CacheMaxBytes must be positive, got %d", opts.CacheMaxBytes)
	}
	if opts.TokenHeader == "" {
		opts.TokenHeader = "Authorization"
	}
	if st, ok := opts.Tokens.(StaticToken); ok && strings.TrimSpace(string(st)) == "" {
		return nil, fmt.Errorf("fetch: Options.Tokens is an empty StaticToken: %w", ErrEmptyToken)
	}
	keyMAC := make([]byte, 32)
	if _, err := rand.Read(keyMAC); err != nil {
		return nil, fmt.Errorf("fetch: random cache key: %w", err)
	}
	roots, err := openRoots(opts.Roots)
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	tel, err := newTelemetry(opts.MeterProvider, opts.TracerProvider)
	if err != nil {
		logger.Warn("fetch: some metrics will not be recorded", "error", err)
	}
	r := &Resolver{opts: opts, roots: roots, logger: logger, cache: newCache(opts.CacheMaxEntries, opts.CacheMaxBytes), keyMAC: keyMAC, tel: tel}
	r.http = newHTTPFetcher(r)
	return r, nil
}

// ClearCache forgets every cached document.
func (r *Resolver) ClearCache() { r.cache.clear() }

// Close releases the Resolver's file roots, idle HTTP connections and
// cache. Fetches already running finish or fail; later ones fail with
// ErrClosed. Closing twice is harmless.
func (r *Resolver) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	var errs []error
	for _, root := range r.roots {
		if err := root.root.Close(); err != nil {
			errs = append(errs, fmt.Errorf("fetch: close root %s: %w", root.given, err))
		}
	}
	r.http.closeIdle()
	r.cache.clear()
	return errors.Join(errs...)
}

// Fetch resolves uri and returns the document. Concurrent calls for the same
// document with the same credentials share one upstream request; that
// request runs detached from the callers, each of which waits on its own
// context, and is cancelled once every caller has given up.
func (r *Resolver) Fetch(ctx context.Context, uri string, options ...FetchOption) (_ *Result, err error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	var fo fetchOpts
	for _, o := range options {
		o(&fo)
	}
	t, err := parseTarget(uri)
	if err != nil {
		return nil, err
	}
	ctx, span := r.tel.tracer.Start(ctx, "fetch.Fetch", r.tel.spanAttrs[t.scheme])
	defer endSpan(span, &err)
	want, err := expectedDigest(fo.digest, t.fragmentDigest)
	if err != nil {
		return nil, err
	}
	h := handlers[t.scheme]

	key := r.cacheKey(t)
	useCache := r.opts.CacheTTL > 0
	if useCache && !fo.bypassCache {
		if res, fresh := r.cache.get(key); fresh {
			r.tel.cacheHits.Add(ctx, 1, r.tel.schemes[t.scheme])
			cp := own(res)
			cp.FromCache = true
			if want != "" {
				// Check the bytes returned, not the digest stored.
				if err := checkDigest(finish(cp.Data, cp.URL, cp.ContentType), want); err != nil {
					return nil, err
				}
			}
			return cp, nil
		}
	}
	// Single flight per document, credentials and digest expectation.
	res, err := r.flights.do(ctx, key+"#"+want, r.flightBudget(), func(ctx context.Context) (*Result, error) {
		var stale *Result
		var etag string
		if useCache {
			stale, etag = r.cache.stale(key)
		}
		ctx, st := withStats(ctx)
		res, newETag, err := h(ctx, r, t, stale, etag)
		if t.scheme == "file" {
			st.attempts = 1
			if err == nil {
				st.bytes = int64(len(res.Data))
			}
		}
		r.tel.record(ctx, t.scheme, st)
		if err != nil {
			return nil, err
		}
		if err := checkDigest(res, want); err != nil {
			return nil, err // nothing cached
		}
		if useCache {
			r.cache.put(key, res, newETag, r.opts.CacheTTL)
		}
		return res, nil
	})
	if err != nil {
		return nil, err
	}
	return own(res), nil
}

// own copies res with its own Data: the cache and the callers sharing a
// single flight never share bytes.
func own(res *Result) *Result {
	cp := *res
	cp.Data = bytes.Clone(res.Data)
	if cp.Data == nil {
		cp.Data = []byte{}
	}
	return &cp
}

// cacheKey is the cache and single-flight key of t: an HMAC, under the
// Resolver's random key, of the URI without credentials and of the user
// info. Calls with other (or no) credentials get another key; the key
// reveals nothing about the password.
func (r *Resolver) cacheKey(t *target) string {
	m := hmac.New(sha256.New, r.keyMAC)
	for _, field := range []string{t.key, t.user, t.password} {
		var n [8]byte
		for i, l := 0, uint64(len(field)); i < 8; i++ {
			n[i] = byte(l >> (8 * i))
		}
		m.Write(n[:]) // length-prefixed: no two field lists hash alike
		m.Write([]byte(field))
	}
	if t.hasUser {
		m.Write([]byte{1})
	} else {
		m.Write([]byte{0})
	}
	return hex.EncodeToString(m.Sum(nil))
}

// flightBudget bounds a shared fetch that no caller's context bounds: every
// attempt's read timeout and every retry wait at their longest.
// It saturates instead of overflowing for huge options.
func (r *Resolver) flightBudget() time.Duration {
	o := r.opts
	total := o.ConnectTimeout
	add := func(d time.Duration, times int) {
		for i := 0; i < times; i++ {
			if d > math.MaxInt64-total {
				total = math.MaxInt64
				return
			}
			total += d
		}
	}
	add(o.ReadTimeout, o.Retries+1)
	add(o.RetryWaitMax, o.Retries)
	return total
}

// finish fills the derived metadata of a fetched document.
func finish(data []byte, finalURL, contentType string) *Result {
	sum := sha256.Sum256(data)
	return &Result{Data: data, URL: finalURL, ContentType: contentType, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
}

func expectedDigest(option, fragment string) (string, error) {
	for _, d := range []string{option, fragment} {
		if d == "" {
			continue
		}
		if b, err := hex.DecodeString(d); err != nil || len(b) != sha256.Size {
			return "", fmt.Errorf("%w: expected sha256 digest must be 64 hex digits", ErrInvalidURI)
		}
	}
	if option != "" && fragment != "" && option != fragment {
		return "", fmt.Errorf("%w: the URI's #sha256 fragment and the WithSHA256 option disagree", ErrInvalidURI)
	}
	if option != "" {
		return option, nil
	}
	return fragment, nil
}

func checkDigest(res *Result, want string) error {
	if want != "" && res.SHA256 != want {
		return fmt.Errorf("%w: %s has sha256 %s, expected %s", ErrDigestMismatch, res.URL, res.SHA256, want)
	}
	return nil
}

// target is a parsed URI: the scheme's handler input, with credentials
// separated from everything that may be shown.
type target struct {
	scheme         string   // as in handlers
	u              *url.URL // without user info or fragment
	user, password string
	hasUser        bool
	fragmentDigest string
	key            string // u as text (no credentials); Resolver.cacheKey adds them, hashed
}

// parseTarget parses and checks a URI. Its errors never contain the URI
// (it may hold a password); they say what is wrong.
func parseTarget(uri string) (*target, error) {
	if uri == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidURI)
	}
	if strings.ContainsAny(uri, "\x00\r\n") {
		return nil, fmt.Errorf("%w: contains control characters", ErrInvalidURI)
	}
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot be parsed (%s)", ErrInvalidURI, parseReason(err))
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme == "" {
		return nil, fmt.Errorf("%w: no scheme (want one of %s)", ErrUnsupportedScheme, strings.Join(SupportedSchemes(), ", "))
	}
	if _, ok := handlers[scheme]; !ok {
		return nil, fmt.Errorf("%w %q (want one of %s)", ErrUnsupportedScheme, clip(scheme), strings.Join(SupportedSchemes(), ", "))
	}
	t := &target{scheme: scheme}
	if u.User != nil {
		t.hasUser = true
		t.user = u.User.Username()
		t.password, _ = u.User.Password()
	}
	if u.Fragment != "" {
		d, ok := strings.CutPrefix(u.Fragment, "sha256=")
		if !ok {
			return nil, fmt.Errorf("%w: the only fragment understood is #sha256=<hex>", ErrInvalidURI)
		}
		if d == "" { // an empty pin is a mistake, never "no pin"
			return nil, fmt.Errorf("%w: expected sha256 digest must be 64 hex digits", ErrInvalidURI)
		}
		t.fragmentDigest = strings.ToLower(d)
	}
	clean := *u
	clean.User, clean.Fragment, clean.RawFragment = nil, "", ""
	clean.Scheme = scheme
	if scheme == "file" {
		if err := checkFileURL(&clean, t.hasUser); err != nil {
			return nil, err
		}
	} else if clean.Host == "" || clean.Opaque != "" {
		return nil, fmt.Errorf("%w: %s URI needs a host", ErrInvalidURI, scheme)
	}
	t.u = &clean
	t.key = clean.String()
	return t, nil
}

// parseReason extracts url.Parse's reason without the URL it quotes.
func parseReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		msg := ue.Err.Error()
		// Some reasons quote a piece of the URI (e.g. an invalid port); keep
		// only the reason's kind.
		if i := strings.Index(msg, " \""); i >= 0 {
			msg = msg[:i]
		}
		if i := strings.Index(msg, ": "); i >= 0 {
			msg = msg[:i]
		}
		return msg
	}
	return "malformed"
}

func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// flightGroup runs one call per key at a time; concurrent callers share it.
// The call runs detached from every caller's context (with its own time
// budget); each caller waits on its own context, and the call is cancelled
// when the last caller still waiting gives up.
type flightGroup struct {
	mu sync.Mutex
	m  map[string]*flight
}

type flight struct {
	done    chan struct{}
	res     *Result
	err     error
	waiters int                // callers waiting; guarded by flightGroup.mu
	cancel  context.CancelFunc // stops the call
}

func (g *flightGroup) do(ctx context.Context, key string, budget time.Duration, fn func(context.Context) (*Result, error)) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g.mu.Lock()
	if g.m == nil {
		g.m = map[string]*flight{}
	}
	f, ok := g.m[key]
	if ok {
		f.waiters++
	} else {
		// Detached: values (loggers, traces) kept, cancellation not.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
		f = &flight{done: make(chan struct{}), waiters: 1, cancel: cancel}
		g.m[key] = f
		go func() {
			defer func() {
				if p := recover(); p != nil {
					f.err = fmt.Errorf("fetch: internal error: %v", p)
				}
				g.mu.Lock()
				if g.m[key] == f {
					delete(g.m, key)
				}
				g.mu.Unlock()
				cancel()
				close(f.done)
			}()
			f.res, f.err = fn(fctx)
		}()
	}
	g.mu.Unlock()

	select {
	case <-f.done:
		return f.res, f.err
	case <-ctx.Done():
		g.mu.Lock()
		f.waiters--
		if f.waiters == 0 {
			// Nobody wants the result any more: stop the call, and let the
			// next caller start afresh rather than join a cancelled call.
			f.cancel()
			if g.m[key] == f {
				delete(g.m, key)
			}
		}
		g.mu.Unlock()
		return nil, ctx.Err()
	}
}

// waiting reports how many callers wait on the call for key (for tests).
func (g *flightGroup) waiting(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.m[key]; ok {
		return f.waiters
	}
	return 0
}
