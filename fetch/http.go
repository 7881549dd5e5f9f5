package fetch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// httpFetcher does HTTP(S) with retries through go-retryablehttp; a body
// cut short is retried by get, on the same attempt budget.
type httpFetcher struct {
	r  *Resolver
	hc *http.Client
}

func newHTTPFetcher(r *Resolver) *httpFetcher {
	o := r.opts
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       o.TLS,
		TLSHandshakeTimeout:   o.ConnectTimeout,
		ResponseHeaderTimeout: o.ReadTimeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	hc := &http.Client{
		Transport: transport,
		Timeout:   o.ReadTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > o.MaxRedirects {
				return fmt.Errorf("%w: more than %d redirects", ErrRedirect, o.MaxRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("%w: redirect to a %s URL", ErrRedirect, clip(req.URL.Scheme))
			}
			if req.URL.User != nil {
				return fmt.Errorf("%w: redirect URL carries credentials", ErrRedirect)
			}
			// Never downgrade: once a hop was https, no later one is http
			// (credentials, tokens and the document would travel in clear).
			if req.URL.Scheme == "http" {
				for _, v := range via {
					if v.URL.Scheme == "https" {
						return fmt.Errorf("%w: redirect from https to http", ErrRedirect)
					}
				}
			}
			// Credentials only go to the origin (scheme, host and port) they
			// were given for; Go's client alone would send Authorization to
			// the same host name on another port or scheme, and knows
			// nothing of custom token headers.
			if !sameOrigin(req.URL, via[0].URL) {
				req.Header.Del("Authorization")
				req.Header.Del(o.TokenHeader)
			}
			return nil
		},
	}
	return &httpFetcher{r: r, hc: hc}
}

// closeIdle closes the idle connections (Resolver.Close).
func (f *httpFetcher) closeIdle() { f.hc.CloseIdleConnections() }

// client returns a retrying client that makes at most retryMax retries and
// counts the attempts it starts in *attempts.
func (f *httpFetcher) client(retryMax int, attempts *int) *retryablehttp.Client {
	o, r := f.r.opts, f.r
	return &retryablehttp.Client{
		HTTPClient:   f.hc,
		RetryMax:     retryMax,
		RetryWaitMin: o.RetryWaitMin,
		RetryWaitMax: o.RetryWaitMax,
		CheckRetry:   checkRetry,
		Backoff:      backoff,
		// Keep the last response: Fetch reports its status itself.
		ErrorHandler: func(resp *http.Response, err error, attempts int) (*http.Response, error) {
			if err != nil {
				// A status retried to the end (5xx, 429) is still the
				// server's answer: ErrHTTPStatus, not the policy's plain error.
				if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500) &&
					!errors.Is(err, ErrRedirect) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
					err = fmt.Errorf("%w %d %s", ErrHTTPStatus, resp.StatusCode, http.StatusText(resp.StatusCode))
				}
				return resp, &attemptsError{attempts: attempts, err: err}
			}
			return resp, nil
		},
		RequestLogHook: func(_ retryablehttp.Logger, req *http.Request, attempt int) {
			*attempts++
			if attempt > 0 {
				r.logger.DebugContext(req.Context(), "fetch: retrying", "url", req.URL.String(), "attempt", attempt+1)
			}
		},
	}
}

type attemptsError struct {
	attempts int
	err      error
}

// Error implements error.
func (e *attemptsError) Error() string {
	return fmt.Sprintf("giving up after %d attempt(s): %v", e.attempts, e.err)
}

// Unwrap returns the last attempt's error.
func (e *attemptsError) Unwrap() error { return e.err }

// sameOrigin: same scheme, host and port (an omitted port is the scheme's
// default).
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}

// checkRetry retries connection errors, 429 and 5xx except 501; never other
// 4xx, refused redirects, TLS verification failures or a finished context.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil && (errors.Is(err, ErrRedirect) || badLocation(err)) {
		return false, err
	}
	return retryablehttp.ErrorPropagatedRetryPolicy(ctx, resp, err)
}

// backoff waits a random time between RetryWaitMin and an exponentially
// growing ceiling (full jitter), or what a 429/503 Retry-After asks, capped
// at RetryWaitMax.
func backoff(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
			return max(0, min(d, hi))
		}
	}
	ceiling := lo << min(attempt, 30)
	if ceiling > hi || ceiling <= 0 {
		ceiling = hi
	}
	if ceiling <= lo {
		return lo
	}
	return lo + time.Duration(rand.Int64N(int64(ceiling-lo)))
}

// retryAfter parses Retry-After: delay-seconds or an HTTP date.
func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	// Seconds: a value too large for a Duration (ParseInt saturates on
	// ErrRange) means the longest wait, never an overflowed one.
	if s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); (err == nil || errors.Is(err, strconv.ErrRange)) && s >= 0 {
		if s > int64(math.MaxInt64/time.Second) {
			return math.MaxInt64, true
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t)), true
	}
	return 0, false
}

// fetchHTTP fetches http(s) URIs with basic auth from the user info.
func fetchHTTP(ctx context.Context, r *Resolver, t *target, cached *Result, etag string) (*Result, string, error) {
	headers := http.Header{}
	if t.hasUser {
		req := &http.Request{Header: http.Header{}}
		req.SetBasicAuth(t.user, t.password)
		headers.Set("Authorization", req.Header.Get("Authorization"))
	}
	return r.http.get(ctx, t.u, headers, cached, etag)
}

// fetchService fetches deckhand+ / promenade+ URIs: the prefix is dropped
// and the token goes in Options.TokenHeader.
func fetchService(ctx context.Context, r *Resolver, t *target, cached *Result, etag string) (*Result, string, error) {
	if r.opts.Tokens == nil {
		return nil, "", fmt.Errorf("%w: %s URIs need a token source (Options.Tokens)", ErrNoTokenSource, t.scheme)
	}
	tok, err := r.opts.Tokens.Token(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("fetch: get service token: %w", err)
	}
	if strings.TrimSpace(tok) == "" {
		return nil, "", fmt.Errorf("fetch: the token source gave an empty token: %w", ErrEmptyToken)
	}
	u := *t.u
	u.Scheme = t.scheme[strings.Index(t.scheme, "+")+1:]
	headers := http.Header{}
	if strings.EqualFold(r.opts.TokenHeader, "Authorization") {
		headers.Set("Authorization", "Bearer "+tok)
	} else {
		headers.Set(r.opts.TokenHeader, tok)
	}
	return r.http.get(ctx, &u, headers, cached, etag)
}

// get performs the request with retries, revalidating with If-None-Match
// when a cached copy has an ETag. A connection lost (or the read timeout
// expiring) while the body is read is retried like a connection error,
// with the same backoff, within the same budget of Options.Retries.
func (f *httpFetcher) get(ctx context.Context, u *url.URL, headers http.Header, cached *Result, etag string) (*Result, string, error) {
	o := f.r.opts
	attempts := 0
	if st := statsFrom(ctx); st != nil {
		defer func() { st.attempts += attempts }()
	}
	for {
		res, newETag, bodyErr, err := f.attempt(ctx, u, headers, cached, etag, o.Retries+1-attempts, &attempts)
		if bodyErr == nil {
			return res, newETag, err
		}
		if ctx.Err() != nil {
			return nil, "", fmt.Errorf("fetch %s: %w", u, ctx.Err())
		}
		if attempts >= o.Retries+1 {
			f.r.logger.WarnContext(ctx, "fetch: giving up", "url", u.String(), "error", bodyErr)
			return nil, "", fmt.Errorf("fetch %s: %w", u, &attemptsError{attempts: attempts, err: bodyErr})
		}
		wait := backoff(o.RetryWaitMin, o.RetryWaitMax, attempts-1, nil)
		f.r.logger.DebugContext(ctx, "fetch: body cut short, retrying", "url", u.String(), "error", bodyErr, "wait", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, "", fmt.Errorf("fetch %s: %w", u, ctx.Err())
		case <-t.C:
		}
	}
}

// attempt makes one request, with up to tries-1 retries before the body is
// read, adding the attempts made to *attempts. A failure reading the body
// that a retry may cure (not ErrTooLarge, not the context) is bodyErr.
func (f *httpFetcher) attempt(ctx context.Context, u *url.URL, headers http.Header, cached *Result, etag string, tries int, attempts *int) (res *Result, newETag string, bodyErr, err error) {
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, "", nil, fmt.Errorf("%w: cannot build request", ErrInvalidURI)
	}
	for k, vs := range headers {
		req.Header[k] = vs
	}
	if cached != nil && etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	before := *attempts
	resp, err := f.client(tries-1, attempts).Do(req)
	if err != nil {
		if ae := (*attemptsError)(nil); errors.As(err, &ae) && before > 0 {
			ae.attempts += before // count the attempts cut short before
		}
		if resp != nil {
			resp.Body.Close()
		}
		redactURLError(err)
		f.r.logger.WarnContext(ctx, "fetch: giving up", "url", u.String(), "error", err)
		if ctx.Err() != nil {
			return nil, "", nil, fmt.Errorf("fetch %s: %w", u, ctx.Err())
		}
		return nil, "", nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	defer resp.Body.Close()
	final := *resp.Request.URL
	final.User = nil
	switch {
	case resp.StatusCode == http.StatusNotModified && cached != nil:
		res := *cached
		return &res, etag, nil, nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, "", nil, fmt.Errorf("fetch %s: %w (HTTP %d)", &final, ErrNotFound, resp.StatusCode)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		f.r.logger.WarnContext(ctx, "fetch: giving up", "url", final.String(), "status", resp.StatusCode)
		return nil, "", nil, fmt.Errorf("fetch %s: %w %d %s", &final, ErrHTTPStatus, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	if resp.ContentLength > f.r.opts.MaxBytes {
		return nil, "", nil, fmt.Errorf("fetch %s: %w: server announces %d bytes, limit %d", &final, ErrTooLarge, resp.ContentLength, f.r.opts.MaxBytes)
	}
	data, err := readLimited(resp.Body, f.r.opts.MaxBytes)
	switch {
	case err == nil:
		if st := statsFrom(ctx); st != nil {
			st.bytes += int64(len(data))
		}
		return finish(data, final.String(), resp.Header.Get("Content-Type")), resp.Header.Get("ETag"), nil, nil
	case errors.Is(err, ErrTooLarge) || ctx.Err() != nil:
		return nil, "", nil, fmt.Errorf("fetch %s: %w", &final, err)
	}
	// The connection was lost, or the read timeout expired, mid-body.
	return nil, "", fmt.Errorf("reading the body of %s: %w", &final, err), nil
}

// redactURLError drops the user info from the URL of a *url.Error in err's
// chain: for a refused redirect, net/http puts the raw Location there, and a
// server may have put credentials in it.
func redactURLError(err error) {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return
	}
	if badLocation(ue) { // net/http quotes the raw Location in the text
		ue.Err = fmt.Errorf("%w: the redirect's Location cannot be parsed", ErrRedirect)
	}
	if pu, perr := url.Parse(ue.URL); perr == nil {
		if pu.User != nil {
			pu.User = nil
			ue.URL = pu.String()
		}
	} else {
		ue.URL = "(unparsable URL)"
	}
}

// badLocation: net/http could not parse a redirect's Location (a server's
// error, not transient; its text quotes the Location verbatim).
func badLocation(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue) && ue.Err != nil && strings.HasPrefix(ue.Err.Error(), "failed to parse Location header")
}
