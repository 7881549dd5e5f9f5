package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/drydock-go/statemgmt/internal/console"
	"github.com/drydock-go/statemgmt/internal/telemetry"
	"github.com/drydock-go/statemgmt/statestore"
)

// consolePrefix is where statectl serve mounts the read-only web console
// (internal/console), behind the same authentication as /metrics; "/"
// redirects there.
const consolePrefix = "/console"

// Limits of the HTTP server. No write timeout: the console streams live
// messages (Server-Sent Events) for as long as a page is open.
const (
	serveReadHeaderTimeout = 10 * time.Second
	serveIdleTimeout       = 2 * time.Minute
	serveMaxHeaderBytes    = 64 << 10
	serveShutdownTimeout   = 10 * time.Second
	readyTimeout           = 3 * time.Second
	minTokenLength         = 16
	minPasswordLength      = 8
	// maxSecretFileBytes bounds what serve reads of a credential file: far
	// more than any secret, so a wrong path or a device that never ends
	// (/dev/zero) is refused instead of filling memory.
	maxSecretFileBytes = 64 << 10
)

// serveOptions are the flags of statectl serve.
type serveOptions struct {
	listen                       string
	authTokenFile, basicAuthFile string
	tlsCert, tlsKey              string
}

func (e *env) serveCommand() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve /metrics, /healthz, /readyz and the console over HTTP(S)",
		Long: `serve runs one HTTP server until interrupted:

  /metrics  the store's metrics in the Prometheus format (authenticated)
  /healthz  200 while the process runs (open)
  /readyz   200 when the database answers and its schema is at this build's
            version, else 503 with the reason (open)
  /         the read-only console (authenticated)

On any address other than loopback, --auth-token-file or --basic-auth-file is
required. Secrets are read from files, never from the command line.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return e.serve(c.Context(), o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:9464", "address to listen on (host:port); any non-loopback address needs --auth-token-file or --basic-auth-file")
	f.StringVar(&o.authTokenFile, "auth-token-file", "", "file holding the bearer token clients must send (Authorization: Bearer <token>), at least 16 characters")
	f.StringVar(&o.basicAuthFile, "basic-auth-file", "", "file holding user:password for HTTP basic authentication (password at least 8 characters)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate (chain) to serve HTTPS with; needs --tls-key")
	f.StringVar(&o.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	return cmd
}

// serve checks the options, then serves until ctx ends.
func (e *env) serve(ctx context.Context, o serveOptions) error {
	auth, err := loadAuth(o, e.logger)
	if err != nil {
		return err
	}
	loopback, err := isLoopback(o.listen)
	if err != nil {
		return err
	}
	if !loopback && auth == nil {
		return usagef("--listen %s is not a loopback address: set --auth-token-file (a bearer token) or --basic-auth-file (user:password), or listen on 127.0.0.1", o.listen)
	}
	var tlsConfig *tls.Config
	switch {
	case (o.tlsCert == "") != (o.tlsKey == ""):
		return usagef("--tls-cert and --tls-key must be given together")
	case o.tlsCert != "":
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			// The error names the files' problem, never their contents.
			return usagef("--tls-cert / --tls-key: %v", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	metrics, err := telemetry.NewMetrics("statectl")
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), serveShutdownTimeout)
		defer cancel()
		if err := metrics.Shutdown(sctx); err != nil {
			e.logger.Warn("statectl serve: metrics shutdown", "error", err)
		}
	}()
	s, closeStore, err := e.openStore(ctx, 5*time.Second, statestore.Options{Logger: e.logger, MeterProvider: metrics.Provider})
	if err != nil {
		return err
	}
	defer closeStore()

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", o.listen, err)
	}
	srv := &http.Server{
		Handler:           newServeHandler(s, metrics.Handler, auth, tlsConfig != nil, e.logger),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: serveReadHeaderTimeout,
		IdleTimeout:       serveIdleTimeout,
		MaxHeaderBytes:    serveMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(e.logger.Handler(), slog.LevelWarn),
		// Streams (the console's live messages) end when serve does.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	fmt.Fprintf(e.stdout, "statectl serve: listening on %s://%s\n", scheme, ln.Addr())
	done := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			done <- srv.ServeTLS(ln, "", "")
		} else {
			done <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-done:
		return fmt.Errorf("statectl serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), serveShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		e.logger.Warn("statectl serve: connections still open at shutdown; closing them", "error", err)
		if cerr := srv.Close(); cerr != nil {
			return fmt.Errorf("statectl serve: close: %w", cerr)
		}
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("statectl serve: %w", err)
	}
	return nil
}

// isLoopback reports whether listen (host:port) binds only loopback: an IP
// literal in 127.0.0.0/8 or ::1, or "localhost". An empty host binds every
// interface; any other name may resolve anywhere.
func isLoopback(listen string) (bool, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false, usagef("--listen %q: want host:port, e.g. 127.0.0.1:9464 (%v)", listen, err)
	}
	if strings.EqualFold(host, "localhost") {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// authenticator checks credentials in constant time. Only digests of the
// secrets are kept, so they are compared at one fixed length and the
// secrets themselves are never in memory for a log line to reach.
type authenticator struct {
	token      *[32]byte // bearer token; nil when not configured
	user, pass *[32]byte // basic credentials; nil when not configured
	challenge  string
}

// loadAuth reads the credential files; nil when none is configured.
func loadAuth(o serveOptions, logger *slog.Logger) (*authenticator, error) {
	if o.authTokenFile == "" && o.basicAuthFile == "" {
		return nil, nil
	}
	a := &authenticator{}
	var challenges []string
	if o.authTokenFile != "" {
		b, err := readSecretFile("--auth-token-file", o.authTokenFile, logger)
		if err != nil {
			return nil, err
		}
		tok := bytes.TrimSpace(b)
		if utf8.RuneCount(tok) < minTokenLength { // characters, as documented, not bytes
			return nil, usagef("--auth-token-file %s: the token must be at least %d characters", o.authTokenFile, minTokenLength)
		}
		if bytes.ContainsAny(tok, " \t\r\n") {
			return nil, usagef("--auth-token-file %s: the token must be one word (no spaces or line breaks)", o.authTokenFile)
		}
		d := sha256.Sum256(tok)
		a.token = &d
		challenges = append(challenges, `Bearer realm="statectl"`)
	}
	if o.basicAuthFile != "" {
		b, err := readSecretFile("--basic-auth-file", o.basicAuthFile, logger)
		if err != nil {
			return nil, err
		}
		line := strings.TrimRight(string(b), "\r\n")
		user, pass, ok := strings.Cut(line, ":")
		switch {
		case strings.ContainsAny(line, "\r\n"):
			return nil, usagef("--basic-auth-file %s: want one line user:password", o.basicAuthFile)
		case !ok || user == "":
			return nil, usagef("--basic-auth-file %s: want user:password (a non-empty user, a colon, the password)", o.basicAuthFile)
		case utf8.RuneCountInString(pass) < minPasswordLength: // characters, not bytes
			return nil, usagef("--basic-auth-file %s: the password must be at least %d characters", o.basicAuthFile, minPasswordLength)
		}
		u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
		a.user, a.pass = &u, &p
		challenges = append(challenges, `Basic realm="statectl", charset="UTF-8"`)
	}
	a.challenge = strings.Join(challenges, ", ")
	return a, nil
}

// readSecretFile reads a credential file of at most maxSecretFileBytes,
// warning (without its contents) when others may read it.
func readSecretFile(flag, path string, logger *slog.Logger) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, usagef("%s: %v", flag, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		logger.Warn("credential file is readable by others; chmod 600 it", "flag", flag, "path", path, "mode", fi.Mode().Perm().String())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("%s: %v", flag, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileBytes+1))
	if err != nil {
		return nil, usagef("%s: %v", flag, err)
	}
	if len(b) > maxSecretFileBytes {
		return nil, usagef("%s %s: larger than %d KiB: not a credential file", flag, path, maxSecretFileBytes>>10)
	}
	return b, nil
}

// allowed reports whether r carries valid credentials. Every configured
// comparison runs whatever the outcome of the others.
func (a *authenticator) allowed(r *http.Request) bool {
	ok := 0
	h := r.Header.Get("Authorization")
	if a.token != nil {
		if scheme, tok, found := strings.Cut(h, " "); found && strings.EqualFold(scheme, "Bearer") {
			d := sha256.Sum256([]byte(strings.TrimSpace(tok)))
			ok |= subtle.ConstantTimeCompare(d[:], a.token[:])
		}
	}
	if a.user != nil {
		if user, pass, found := r.BasicAuth(); found {
			u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
			ok |= subtle.ConstantTimeCompare(u[:], a.user[:]) & subtle.ConstantTimeCompare(p[:], a.pass[:])
		}
	}
	return ok == 1
}

// wrap puts the authentication wall in front of next.
func (a *authenticator) wrap(next http.Handler, logger *slog.Logger) http.Handler {
	if a == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.allowed(r) {
			logger.Warn("statectl serve: unauthenticated request refused", "remote", r.RemoteAddr, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", a.challenge)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// securityHeaders sets the strict headers on every response: nothing
// loaded from elsewhere, no framing, no MIME sniffing, no referrer.
func securityHeaders(next http.Handler, tls bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		if tls {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// getOnly answers 405 to anything but GET and HEAD.
func getOnly(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h(w, r)
	})
}

// newServeHandler routes the endpoints: /healthz and /readyz open,
// /metrics and the console behind auth (when configured), strict headers
// on everything.
func newServeHandler(s *statestore.Store, metrics http.Handler, auth *authenticator, tls bool, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/healthz", getOnly(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	}))
	mux.Handle("/readyz", getOnly(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.CheckSchema(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			if errors.Is(err, statestore.ErrSchemaVersion) {
				fmt.Fprintln(w, "not ready: "+err.Error())
				return
			}
			// The driver's error may name the database host and user:
			// logged for the operator, not shown to an unauthenticated probe.
			logger.Warn("statectl serve: not ready: database unreachable", "error", err)
			fmt.Fprintln(w, "not ready: the database does not answer")
			return
		}
		fmt.Fprintln(w, "ready")
	}))
	mux.Handle("/metrics", auth.wrap(getOnly(metrics.ServeHTTP), logger))
	cons, err := console.New(s, console.Options{Prefix: consolePrefix, Logger: logger})
	if err != nil { // constant options: a defect of this build, said on every console page
		logger.Error("statectl serve: the console cannot start", "error", err)
		cons = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "the console cannot start in this build (see the log)", http.StatusInternalServerError)
		})
	}
	mux.Handle(consolePrefix+"/", auth.wrap(cons, logger))
	mux.Handle("/", auth.wrap(getOnly(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		http.Redirect(w, r, consolePrefix+"/", http.StatusFound)
	}), logger))
	return securityHeaders(mux, tls)
}
