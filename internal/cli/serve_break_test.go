package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drydock-go/statemgmt/statestore"
)

// TestServeBreakAuthPathTricks: path, method and header tricks never reach
// /metrics or the console without credentials: each is refused (401), or
// answered with a redirect or an error carrying no content; every response
// a handler writes carries the strict headers. Credentials with a colon in
// the password, a non-ASCII user and a differently cased or padded Bearer
// scheme are accepted as HTTP says.
func TestServeBreakAuthPathTricks(t *testing.T) {
	url, _ := setup(t)
	const token, user, pass = "tok-0123456789abcdef", "öps", "pa:ss:wörd-long"
	srv := startServe(t, url, "--auth-token-file", writeFile(t, "token", token+"\r\n"),
		"--basic-auth-file", writeFile(t, "basic", user+":"+pass+"\r\n"))
	c := &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	raw := func(h string) func(*http.Request) { return func(r *http.Request) { r.Header.Set("Authorization", h) } }
	tests := []struct {
		name, method, path string
		auth               func(*http.Request)
		want               int
	}{
		{"double slash", "GET", "//metrics", nil, 307},
		{"trailing slash", "GET", "/metrics/", nil, 401},
		{"dot dot from the console", "GET", "/console/../metrics", nil, 307},
		{"escaped dot dot", "GET", "/console/%2e%2e/metrics", nil, 401},
		{"escaped slash", "GET", "/console/..%2fmetrics", nil, 401},
		{"upper case", "GET", "/METRICS", nil, 401},
		{"trailing dot", "GET", "/metrics.", nil, 401},
		{"probe prefix", "GET", "/healthz/../metrics", nil, 307},
		{"under a probe", "GET", "/healthz/x", nil, 401},
		{"HEAD", "HEAD", "/metrics", nil, 401},
		{"OPTIONS", "OPTIONS", "/metrics", nil, 401},
		{"PUT", "PUT", "/metrics", nil, 401},
		{"console stream", "GET", "/console/tasks/00000000-0000-0000-0000-000000000000/events", nil, 401},
		{"console static", "GET", "/console/static/", nil, 401},
		{"console without slash", "GET", "/console", nil, 307},
		{"empty basic user", "GET", "/metrics", basic("", pass), 401},
		{"bearer without token", "GET", "/metrics", raw("Bearer "), 401},
		{"bearer with a tab", "GET", "/metrics", raw("Bearer\t" + token), 401},
		{"token as basic password", "GET", "/metrics", basic(user, token), 401},
		{"basic scheme holding the token", "GET", "/metrics", raw("Basic " + token), 401},
		{"lower-case bearer", "GET", "/metrics", raw("bearer " + token), 200},
		{"bearer with two spaces", "GET", "/metrics", raw("Bearer  " + token), 200},
		{"basic, colons in the password, non-ASCII user", "GET", "/metrics", basic(user, pass), 200},
		{"HEAD with the token", "HEAD", "/metrics", bearer(token), 200},
		{"console asset with the token", "GET", "/console/static/console.js", bearer(token), 200},
		{"console 404 with the token", "GET", "/console/nope", bearer(token), 404},
		{"root 404 with the token", "GET", "/nope", bearer(token), 404},
		{"probe POST", "POST", "/readyz", nil, 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body, h := get(t, c, tc.method, srv.base+tc.path, tc.auth)
			if code != tc.want {
				t.Fatalf("status %d, want %d; body %q", code, tc.want, body)
			}
			if code != 200 && tc.auth == nil {
				for _, leak := range []string{"go_goroutines", "statemgmt_", "<html", "<!doctype"} {
					if strings.Contains(strings.ToLower(body), strings.ToLower(leak)) {
						t.Fatalf("a refused request got content (%q): %q", leak, body)
					}
				}
			}
			if code == 307 && strings.Contains(h.Get("Location"), "metrics") {
				// Following the redirect lands on the wall.
				if code2, _, _ := get(t, c, "GET", srv.base+h.Get("Location"), nil); code2 != 401 {
					t.Fatalf("redirect to %s answered %d, want 401", h.Get("Location"), code2)
				}
			}
			for _, k := range []string{"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Cache-Control"} {
				if h.Get(k) == "" {
					t.Errorf("%s missing on a %d", k, code)
				}
			}
			if cc := h.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q on a %d, want no-store", cc, code)
			}
		})
	}
	// An oversized header is refused by net/http itself (431), before any
	// handler: no content, and (as the docs say) none of the headers.
	big := strings.Repeat("a", 80<<10)
	if code, body, _ := get(t, c, "GET", srv.base+"/metrics", raw("Bearer "+big)); code != http.StatusRequestHeaderFieldsTooLarge || strings.Contains(body, "go_") {
		t.Fatalf("oversized Authorization: %d %q", code, body)
	}
	if code := srv.stop(); code != ExitOK {
		t.Fatalf("serve exited %d; stderr: %s", code, srv.stderr.String())
	}
	for _, secret := range []string{token, pass} {
		if strings.Contains(srv.stderr.String(), secret) {
			t.Errorf("a secret reached the logs: %q", srv.stderr.String())
		}
	}
}

// TestServeBreakLoopbackForms: loopback spelled as an IPv4-mapped IPv6
// address or a 127/8 address other than .1 is accepted without
// credentials; the all-interfaces IPv6 forms, a 127/8 abbreviation and an
// IPv4-mapped wildcard are refused.
func TestServeBreakLoopbackForms(t *testing.T) {
	for _, tc := range []struct {
		listen string
		want   bool
	}{
		{"[::ffff:127.0.0.1]:0", true},
		{"127.0.0.2:0", true},
		{"[::1]:0", true},
		{"LocalHost:0", true},
		{"[::]:0", false},
		{"[::ffff:0.0.0.0]:0", false},
		{"127.1:0", false},
		{"localhost.:0", false},
		{"[::1%lo]:0", false},
		{"0:0", false},
	} {
		got, err := isLoopback(tc.listen)
		if err != nil || got != tc.want {
			t.Errorf("isLoopback(%q) = %v, %v; want %v", tc.listen, got, err, tc.want)
		}
	}
}

// TestServeBreakSecretLengthsCountCharacters: the minimum lengths are in
// characters, as documented, not bytes: a password of four two-byte
// characters and a token of eight are refused.
func TestServeBreakSecretLengthsCountCharacters(t *testing.T) {
	url, _ := setup(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"password of 4 characters, 8 bytes", []string{"--basic-auth-file", writeFile(t, "b", "ops:éééé\n")}, "at least 8"},
		{"token of 8 characters, 16 bytes", []string{"--auth-token-file", writeFile(t, "t", "éééééééé\n")}, "at least 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var out, errOut syncBuffer
			code := Main(ctx, append([]string{"--database-url", url, "serve", "--listen", "127.0.0.1:0"}, tc.args...), strings.NewReader(""), &out, &errOut)
			result{code, out.String(), errOut.String()}.want(t, ExitUsage, tc.want)
		})
	}
}

// TestServeBreakDatabasePasswordNotEchoed: a database that cannot be
// reached makes serve fail without repeating the password of
// --database-url.
func TestServeBreakDatabasePasswordNotEchoed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut syncBuffer
	code := Main(ctx, []string{"--database-url", "postgres://ops:S3cretDbPw@" + addr + "/x?sslmode=disable", "serve", "--listen", "127.0.0.1:0"},
		strings.NewReader(""), &out, &errOut)
	if code == ExitOK {
		t.Fatalf("serve started without a database: %q", out.String())
	}
	if all := out.String() + errOut.String(); strings.Contains(all, "S3cretDbPw") {
		t.Fatalf("the database password is echoed: %q", all)
	}
}

// TestServeBreakTLSMinimum: a client that offers at most TLS 1.1 gets no
// handshake; plain HTTP gets net/http's 400.
func TestServeBreakTLSMinimum(t *testing.T) {
	url, _ := setup(t)
	cert, key, pool := selfSigned(t)
	srv := startServe(t, url, "--tls-cert", cert, "--tls-key", key)
	host := strings.TrimPrefix(srv.base, "https://")
	conn, err := tls.Dial("tcp", host, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err == nil {
		conn.Close()
		t.Fatalf("a TLS %x handshake succeeded", conn.ConnectionState().Version)
	}
	// Plain HTTP to the TLS port: net/http's own 400, before any handler
	// (so, as the docs say, without the strict headers), and no page.
	code, body, _ := get(t, &http.Client{Timeout: 30 * time.Second}, "GET", "http://"+host+"/metrics", nil)
	if code != http.StatusBadRequest || strings.Contains(body, "go_") {
		t.Fatalf("plain HTTP to the TLS port: %d %q", code, body)
	}
}

// TestServeBreakShutdownEndsStreams: stopping serve while a console live
// stream is open ends the stream and serve exits cleanly, without waiting
// out the shutdown timeout and closing connections by force.
func TestServeBreakShutdownEndsStreams(t *testing.T) {
	url, s := setup(t)
	tasks, err := s.CreateTasks(context.Background(), statestore.NewTask{Action: "deploy_node"})
	if err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, url)
	c := &http.Client{} // no timeout: the stream is open-ended
	resp, err := c.Get(srv.base + "/console/tasks/" + tasks[0].ID.String() + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, k := range []string{"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options"} {
		if resp.Header.Get(k) == "" {
			t.Errorf("%s missing on the stream", k)
		}
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil { // the stream has started
		t.Fatal(err)
	}
	if code := srv.stop(); code != ExitOK {
		t.Fatalf("serve exited %d; stderr: %s", code, srv.stderr.String())
	}
	// The stream ends (EOF or a closed connection) rather than hanging.
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for {
			if _, err := br.ReadString('\n'); err != nil {
				return
			}
		}
	}()
	select {
	case <-ended:
	case <-time.After(time.Minute):
		t.Fatal("the stream still open a minute after serve stopped")
	}
	if logs := srv.stderr.String(); strings.Contains(logs, "connections still open") {
		t.Errorf("shutdown had to close connections by force: %q", logs)
	}
}

// TestServeBreakNoSecretInPagesOrMetrics: with a password in --database-url
// (ignored by the trust-auth test server) and a token file readable by
// others, /metrics, /readyz, the console and the log never carry the
// password or the token; the loose file draws a warning naming it.
func TestServeBreakNoSecretInPagesOrMetrics(t *testing.T) {
	url, _ := setup(t)
	const dbPass, token = "DbPw-9f8e7d6c5b4a", "tok-fedcba9876543210"
	withPass := url + " password=" + dbPass // statetest gives keyword/value form
	tokFile := writeFile(t, "token", token+"\n")
	if err := os.Chmod(tokFile, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, withPass, "--auth-token-file", tokFile)
	c := &http.Client{Timeout: 30 * time.Second}
	for _, path := range []string{"/metrics", "/readyz", "/healthz", "/console/", "/console/leadership", "/console/nodes"} {
		code, body, _ := get(t, c, "GET", srv.base+path, bearer(token))
		if code != 200 {
			t.Errorf("%s: %d %q", path, code, body)
		}
		for _, secret := range []string{dbPass, token} {
			if strings.Contains(body, secret) {
				t.Errorf("%s carries a secret", path)
			}
		}
	}
	if code := srv.stop(); code != ExitOK {
		t.Fatalf("serve exited %d; stderr: %s", code, srv.stderr.String())
	}
	logs := srv.stderr.String()
	if !strings.Contains(logs, "readable by others") || !strings.Contains(logs, tokFile) {
		t.Errorf("no warning naming the loose credential file: %q", logs)
	}
	for _, secret := range []string{dbPass, token} {
		if strings.Contains(logs, secret) {
			t.Errorf("a secret reached the logs: %q", logs)
		}
	}
}

// TestServeBreakReadyzDuringMigration: while another session holds tern's
// migration lock and, in an open transaction, the schema_version row (as a
// migration does until it commits), /readyz still answers 200 at once:
// the probe takes no lock and waits for none.
func TestServeBreakReadyzDuringMigration(t *testing.T) {
	url, _ := setup(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(9628173550095224)"); err != nil { // tern's lockNum
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "UPDATE public.schema_version SET version = version"); err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, url)
	c := &http.Client{Timeout: 30 * time.Second}
	if code, body, _ := get(t, c, "GET", srv.base+"/readyz", nil); code != 200 {
		t.Fatalf("/readyz during a migration: %d %q", code, body)
	}
}

// TestServeBreakHugeCredentialFile: a credential file far larger than any
// secret (a wrong path, or a device such as /dev/zero that never ends) is
// refused naming the flag, instead of being read whole into memory.
func TestServeBreakHugeCredentialFile(t *testing.T) {
	url, _ := setup(t)
	huge := writeFile(t, "huge", strings.Repeat("a", 1<<20)+"\n")
	for _, flag := range []string{"--auth-token-file", "--basic-auth-file"} {
		t.Run(flag, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var out, errOut syncBuffer
			code := Main(ctx, []string{"--database-url", url, "serve", "--listen", "127.0.0.1:0", flag, huge},
				strings.NewReader(""), &out, &errOut)
			result{code, out.String(), errOut.String()}.want(t, ExitUsage, flag, "larger than")
		})
	}
}
