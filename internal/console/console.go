// Package console is statemgmt's read-only web console: server-rendered
// pages over a statestore.Store showing tasks (filtered by status and
// action, keyset-paged), a task's tree with states, a task's messages
// streaming live (Server-Sent Events fed by Store.TailMessages), leadership
// now and its history, and per node its build data and boot action
// statuses — never a boot-action key or key digest.
//
// New returns an http.Handler that serves only GET and HEAD (anything else
// is 405) under a path prefix. It has no authentication of its own: mount
// it behind the server's (statectl serve) auth middleware. Every asset is
// embedded; pages load nothing from elsewhere and run under the
// Content-Security-Policy "default-src 'self'" (no inline script or style),
// which the handler sets on every response.
//
//	h, err := console.New(store, console.Options{Prefix: "/console"})
//	if err != nil {
//		return err
//	}
//	mux.Handle("/console/", auth(h)) // no http.StripPrefix: the handler knows its prefix
package console

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/drydock-go/statemgmt/statestore"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// ContentSecurityPolicy is the policy the console sets on every response:
// everything from the console's own origin, no inline script or style, no
// plugins, no framing, forms only to itself.
const ContentSecurityPolicy = "default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'; form-action 'self'"

// Options configure the console. The zero value serves at the root.
type Options struct {
	// Prefix is the path the console is mounted under, e.g. "/console":
	// empty, or "/" followed by path segments of letters, digits, '-', '_'
	// and '.', without a trailing slash. The handler expects the full
	// request path (mount it at Prefix+"/" without http.StripPrefix).
	Prefix string
	// PageSize is the number of tasks per page: default 50, at most 1000.
	PageSize int
	// TreeLimit is the most tasks a tree view shows: default 5000, at most 100000.
	TreeLimit int
	// RecentMessages is how many of a task's newest messages its page shows
	// before following new ones live: default 500, at most 10000.
	RecentMessages int
	// MaxStreams bounds the live message streams open at once (each holds
	// a wake-up subscription, not a connection); more get 503. Default 256.
	MaxStreams int
	// Heartbeat is how often an idle stream sends a comment, so proxies do
	// not close it: default 15s.
	Heartbeat time.Duration
	// StreamWriteTimeout bounds each write to a live stream (a message or a
	// heartbeat): a client that stops reading, so that a write blocks this
	// long, has its stream ended and its MaxStreams slot freed. Default 1
	// minute; it replaces the server's WriteTimeout for streams.
	StreamWriteTimeout time.Duration
	// Logger receives request failures; slog.Default() when nil.
	Logger *slog.Logger
}

var prefixPattern = regexp.MustCompile(`^(/[A-Za-z0-9._-]+)*$`)

// console is the handler New returns.
type console struct {
	store   *statestore.Store
	opts    Options
	pages   map[string]*template.Template
	mux     *http.ServeMux
	streams chan struct{} // a slot per open stream
	logger  *slog.Logger
}

// New returns the console over store, configured by opts. It fails, naming
// the field, on an invalid option.
func New(store *statestore.Store, opts Options) (http.Handler, error) {
	if store == nil {
		return nil, errors.New("console: store is nil")
	}
	if !prefixPattern.MatchString(opts.Prefix) {
		return nil, fmt.Errorf("console: Options.Prefix %q: must be empty or /segment[/segment...] of letters, digits, '-', '_', '.', without a trailing slash", opts.Prefix)
	}
	var err error
	if opts.PageSize, err = bounded("PageSize", opts.PageSize, 50, 1000); err != nil {
		return nil, err
	}
	if opts.TreeLimit, err = bounded("TreeLimit", opts.TreeLimit, 5000, 100000); err != nil {
		return nil, err
	}
	if opts.RecentMessages, err = bounded("RecentMessages", opts.RecentMessages, 500, 10000); err != nil {
		return nil, err
	}
	if opts.MaxStreams, err = bounded("MaxStreams", opts.MaxStreams, 256, 1<<20); err != nil {
		return nil, err
	}
	switch {
	case opts.Heartbeat == 0:
		opts.Heartbeat = 15 * time.Second
	case opts.Heartbeat < 0:
		return nil, fmt.Errorf("console: Options.Heartbeat: must not be negative, got %s", opts.Heartbeat)
	}
	switch {
	case opts.StreamWriteTimeout == 0:
		opts.StreamWriteTimeout = time.Minute
	case opts.StreamWriteTimeout < 0:
		return nil, fmt.Errorf("console: Options.StreamWriteTimeout: must not be negative, got %s", opts.StreamWriteTimeout)
	}
	c := &console{store: store, opts: opts, streams: make(chan struct{}, opts.MaxStreams), logger: opts.Logger}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.pages, err = parsePages(opts.Prefix); err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("console: embedded assets: %w", err)
	}
	p := opts.Prefix
	c.mux = http.NewServeMux()
	c.mux.HandleFunc("GET "+p+"/{$}", c.tasksPage)
	c.mux.HandleFunc("GET "+p+"/tasks", c.tasksPage)
	c.mux.HandleFunc("GET "+p+"/tasks/{id}", c.taskPage)
	c.mux.HandleFunc("GET "+p+"/tasks/{id}/events", c.taskEvents)
	c.mux.HandleFunc("GET "+p+"/leadership", c.leadershipPage)
	c.mux.HandleFunc("GET "+p+"/nodes", c.nodesPage)
	c.mux.HandleFunc("GET "+p+"/nodes/{name}", c.nodePage)
	c.mux.Handle("GET "+p+"/static/", http.StripPrefix(p+"/static/", http.FileServerFS(static)))
	if p != "" {
		c.mux.Handle("GET "+p, http.RedirectHandler(p+"/", http.StatusMovedPermanently))
	}
	c.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, http.StatusNotFound, "no such page")
	})
	return c, nil
}

func bounded(field string, v, def, max int) (int, error) {
	switch {
	case v == 0:
		return def, nil
	case v < 0 || v > max:
		return 0, fmt.Errorf("console: Options.%s: must be between 1 and %d, got %d", field, max, v)
	}
	return v, nil
}

// ServeHTTP sets the security headers, refuses every method but GET and
// HEAD, and dispatches.
func (c *console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		c.fail(w, r, http.StatusMethodNotAllowed, "the console is read-only: only GET and HEAD")
		return
	}
	c.mux.ServeHTTP(w, r)
}
