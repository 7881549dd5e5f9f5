package cli

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/drydock-go/statemgmt/internal/faultproxy"
	"github.com/drydock-go/statemgmt/statestore"
)

// served is a running `statectl serve`.
type served struct {
	base   string // e.g. http://127.0.0.1:41234
	stderr *syncBuffer
	stop   func() int // stops it and returns its exit code
}

var listeningRE = regexp.MustCompile(`listening on (https?://\S+)`)

// startServe runs `statectl serve --listen 127.0.0.1:0 args…` in-process
// and waits for its "listening on" line.
func startServe(t *testing.T, url string, args ...string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		code := Main(ctx, append([]string{"--database-url", url, "serve", "--listen", "127.0.0.1:0"}, args...),
			strings.NewReader(""), pw, stderr)
		pw.Close()
		done <- code
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("serve did not start: %v; stderr: %s", err, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	m := listeningRE.FindStringSubmatch(line)
	if m == nil {
		cancel()
		t.Fatalf("no address in %q", line)
	}
	var once sync.Once
	code := 0
	stop := func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(time.Minute):
				t.Fatal("serve did not stop within a minute of its context ending")
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return &served{base: m[1], stderr: stderr, stop: stop}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// get sends a request and returns the status, body and headers.
func get(t *testing.T, c *http.Client, method, url string, setAuth func(*http.Request)) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if setAuth != nil {
		setAuth(req)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func bearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func basic(user, pass string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

// TestServeAuthWall: with credentials configured, /metrics and the console
// answer 401 without or with wrong credentials and 200 with either right
// one; /healthz and /readyz stay open; every response carries the strict
// security headers; no secret reaches the logs.
func TestServeAuthWall(t *testing.T) {
	url, _ := setup(t)
	const token, user, pass = "tok-0123456789abcdef", "ops", "correct horse battery"
	srv := startServe(t, url, "--auth-token-file", writeFile(t, "token", token+"\n"),
		"--basic-auth-file", writeFile(t, "basic", user+":"+pass+"\n"))
	c := &http.Client{Timeout: 30 * time.Second}
	tests := []struct {
		name, method, path string
		auth               func(*http.Request)
		want               int
	}{
		{"metrics without credentials", "GET", "/metrics", nil, 401},
		{"metrics with a wrong token", "GET", "/metrics", bearer("tok-0123456789abcdeX"), 401},
		{"metrics with the token as a prefix", "GET", "/metrics", bearer(token + "x"), 401},
		{"metrics with a wrong password", "GET", "/metrics", basic(user, pass+"x"), 401},
		{"metrics with a wrong user", "GET", "/metrics", basic("root", pass), 401},
		{"metrics with the password as a token", "GET", "/metrics", bearer(pass), 401},
		{"metrics with the token", "GET", "/metrics", bearer(token), 200},
		{"metrics with basic credentials", "GET", "/metrics", basic(user, pass), 200},
		{"console without credentials", "GET", "/", nil, 401},
		{"console page without credentials", "GET", "/tasks", nil, 401},
		{"console with the token", "GET", "/", bearer(token), 200},
		{"healthz open", "GET", "/healthz", nil, 200},
		{"readyz open", "GET", "/readyz", nil, 200},
		{"metrics refuses POST", "POST", "/metrics", bearer(token), 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body, h := get(t, c, tc.method, srv.base+tc.path, tc.auth)
			if code != tc.want {
				t.Fatalf("status %d, want %d; body %q", code, tc.want, body)
			}
			if code == 401 {
				if ch := h.Get("WWW-Authenticate"); !strings.Contains(ch, "Bearer") || !strings.Contains(ch, "Basic") {
					t.Errorf("WWW-Authenticate %q does not offer Bearer and Basic", ch)
				}
			}
			for k, want := range map[string]string{
				"Content-Security-Policy": "default-src 'self'", "X-Content-Type-Options": "nosniff",
				"Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
			} {
				if !strings.Contains(h.Get(k), want) {
					t.Errorf("%s: %q, want it to contain %q", k, h.Get(k), want)
				}
			}
			if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Errorf("CSP %q lacks frame-ancestors 'none'", h.Get("Content-Security-Policy"))
			}
			for _, secret := range []string{token, pass} {
				if strings.Contains(body, secret) {
					t.Errorf("body carries a secret: %q", body)
				}
			}
		})
	}
	if code := srv.stop(); code != ExitOK {
		t.Fatalf("serve exited %d; stderr: %s", code, srv.stderr.String())
	}
	logs := srv.stderr.String()
	if !strings.Contains(logs, "unauthenticated request refused") {
		t.Errorf("refusals not logged: %q", logs)
	}
	for _, secret := range []string{token, pass, "tok-0123456789abcdeX"} {
		if strings.Contains(logs, secret) {
			t.Errorf("a secret reached the logs: %q", logs)
		}
	}
}

// TestServeRefusesOpenNetworkAndBadSecrets: off loopback, serve refuses to
// start without credentials and says which flags to set; bad credential
// files and half a TLS pair are refused naming the flag, never echoing a
// secret; nothing listens.
func TestServeRefusesOpenNetworkAndBadSecrets(t *testing.T) {
	url, _ := setup(t)
	short := writeFile(t, "short", "tiny-secret")
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"all interfaces", []string{"--listen", "0.0.0.0:0"}, []string{"not a loopback address", "--auth-token-file", "--basic-auth-file"}},
		{"empty host", []string{"--listen", ":0"}, []string{"not a loopback address", "--auth-token-file"}},
		{"a host name", []string{"--listen", "example.invalid:0"}, []string{"not a loopback address"}},
		{"short token", []string{"--auth-token-file", short}, []string{"--auth-token-file", "at least 16 characters"}},
		{"missing token file", []string{"--auth-token-file", "/nonexistent/token"}, []string{"--auth-token-file", "no such file"}},
		{"basic without colon", []string{"--basic-auth-file", writeFile(t, "b1", "opscorrecthorse")}, []string{"--basic-auth-file", "user:password"}},
		{"basic short password", []string{"--basic-auth-file", writeFile(t, "b2", "ops:tiny")}, []string{"--basic-auth-file", "at least 8"}},
		{"tls cert alone", []string{"--tls-cert", short}, []string{"--tls-cert and --tls-key"}},
		{"bad listen", []string{"--listen", "9464"}, []string{"--listen", "host:port"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Bounded: a serve that starts anyway ends (exit 0) instead of
			// hanging the test.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var out, errOut syncBuffer
			code := Main(ctx, append([]string{"--database-url", url, "serve"}, tc.args...), strings.NewReader(""), &out, &errOut)
			r := result{code, out.String(), errOut.String()}
			r.want(t, ExitUsage, tc.want...)
			if strings.Contains(r.stdout+r.stderr, "tiny") {
				t.Errorf("a secret is echoed: %q", r.stderr)
			}
			if strings.Contains(r.stdout, "listening") {
				t.Errorf("it listened: %q", r.stdout)
			}
		})
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key; returns their
// paths and a pool trusting the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "statectl test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestServeTLS: with --tls-cert/--tls-key the server speaks HTTPS (a client
// trusting the certificate gets through, with the auth wall in place and
// HSTS set); plain HTTP to it gets no page.
func TestServeTLS(t *testing.T) {
	url, _ := setup(t)
	certFile, keyFile, pool := selfSigned(t)
	const token = "tls-token-0123456789"
	srv := startServe(t, url, "--tls-cert", certFile, "--tls-key", keyFile, "--auth-token-file", writeFile(t, "tok", token))
	if !strings.HasPrefix(srv.base, "https://") {
		t.Fatalf("serving %s, want https", srv.base)
	}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if code, body, h := get(t, c, "GET", srv.base+"/healthz", nil); code != 200 || h.Get("Strict-Transport-Security") == "" {
		t.Fatalf("https /healthz: %d %q, HSTS %q", code, body, h.Get("Strict-Transport-Security"))
	}
	if code, _, _ := get(t, c, "GET", srv.base+"/metrics", nil); code != 401 {
		t.Fatalf("https /metrics without token: %d, want 401", code)
	}
	if code, _, _ := get(t, c, "GET", srv.base+"/metrics", bearer(token)); code != 200 {
		t.Fatalf("https /metrics with token: %d, want 200", code)
	}
	plain := &http.Client{Timeout: 30 * time.Second}
	code, body, _ := get(t, plain, "GET", "http://"+strings.TrimPrefix(srv.base, "https://")+"/healthz", nil)
	if code == 200 {
		t.Fatalf("plain HTTP to the TLS port answered 200: %q", body)
	}
}

// scrape returns the value of every sample of metric name whose labels
// include action="<action>", keyed by action.
func scrape(t *testing.T, c *http.Client, base, name string) map[string]float64 {
	t.Helper()
	code, body, _ := get(t, c, "GET", base+"/metrics", nil)
	if code != 200 {
		t.Fatalf("/metrics: %d %q", code, body)
	}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\{([^}]*)\} (\S+)$`)
	action := regexp.MustCompile(`action="([^"]*)"`)
	out := map[string]float64{}
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		a := action.FindStringSubmatch(m[1])
		if a == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Fatalf("%s: value %q", name, m[2])
		}
		out[a[1]] = v
	}
	return out
}

// TestServeMetricsMoveWithTasks: /metrics reports the queue as tasks move
// through it (another process's store moves them: the gauges come from the
// database, at each scrape).
func TestServeMetricsMoveWithTasks(t *testing.T) {
	url, s := setup(t)
	srv := startServe(t, url)
	c := &http.Client{Timeout: 30 * time.Second}
	ctx := context.Background()
	check := func(step string, queued, running map[string]float64) {
		t.Helper()
		if diff := cmp.Diff(queued, scrape(t, c, srv.base, "statemgmt_tasks_queued")); diff != "" {
			t.Fatalf("%s: statemgmt_tasks_queued (-want +got):\n%s", step, diff)
		}
		if diff := cmp.Diff(running, scrape(t, c, srv.base, "statemgmt_tasks_running")); diff != "" {
			t.Fatalf("%s: statemgmt_tasks_running (-want +got):\n%s", step, diff)
		}
	}
	check("empty", map[string]float64{}, map[string]float64{})
	if _, err := s.CreateTasks(ctx, statestore.NewTask{Action: "deploy_node"}, statestore.NewTask{Action: "deploy_node"}); err != nil {
		t.Fatal(err)
	}
	check("created", map[string]float64{"deploy_node": 2}, map[string]float64{})
	got, err := s.ClaimTasks(ctx, "w1", 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %v, %d", err, len(got))
	}
	check("claimed", map[string]float64{"deploy_node": 1}, map[string]float64{"deploy_node": 1})
	if _, err := s.CompleteTasks(ctx, statestore.ResultSuccess, got[0].Claim()); err != nil {
		t.Fatal(err)
	}
	check("completed", map[string]float64{"deploy_node": 1}, map[string]float64{"deploy_node": 0})
	code, body, _ := get(t, c, "GET", srv.base+"/metrics", nil)
	for _, want := range []string{"statemgmt_tasks_queued_oldest_age_seconds{", "go_goroutines", "target_info{"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestServeReadyz: /readyz is 200 on a migrated database and 503, naming
// the versions and what to do, when the schema is behind this build.
func TestServeReadyz(t *testing.T) {
	url, _ := setup(t)
	srv := startServe(t, url)
	c := &http.Client{Timeout: 30 * time.Second}
	if code, body, _ := get(t, c, "GET", srv.base+"/readyz", nil); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz on a migrated database: %d %q", code, body)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	latest := statestore.LatestSchemaVersion()
	if _, err := statestore.MigrateTo(ctx, conn, latest-1, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	code, body, _ := get(t, c, "GET", srv.base+"/readyz", nil)
	if code != 503 || !strings.Contains(body, "run statectl migrate up") ||
		!strings.Contains(body, strconv.Itoa(int(latest))) {
		t.Fatalf("/readyz behind by one version: %d %q", code, body)
	}
	if code, _, _ := get(t, c, "GET", srv.base+"/healthz", nil); code != 200 {
		t.Fatalf("/healthz while not ready: %d, want 200", code)
	}
}

// TestServeReadyzDatabaseGone: /readyz is 503 once the database stops
// answering, saying so without the driver's error (which names the host,
// port and user: logged instead); /healthz stays 200.
func TestServeReadyzDatabaseGone(t *testing.T) {
	dbURL, _ := setup(t)
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	network, target := "tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	if strings.HasPrefix(cfg.Host, "/") {
		network, target = "unix", cfg.Host+"/.s.PGSQL."+strconv.Itoa(int(cfg.Port))
	}
	proxy, err := faultproxy.Start(network, target)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	via := "host=127.0.0.1 port=" + strconv.Itoa(proxy.Addr().Port) + " user=" + cfg.User + " dbname=" + cfg.Database + " sslmode=disable"
	if cfg.Password != "" {
		via += " password='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(cfg.Password) + "'"
	}
	srv := startServe(t, via)
	c := &http.Client{Timeout: 30 * time.Second}
	if code, body, _ := get(t, c, "GET", srv.base+"/readyz", nil); code != 200 {
		t.Fatalf("/readyz through the proxy: %d %q", code, body)
	}
	proxy.Close() // every connection cut, no new one accepted
	code, body, _ := get(t, c, "GET", srv.base+"/readyz", nil)
	if code != 503 || body != "not ready: the database does not answer\n" {
		t.Fatalf("/readyz with the database gone: %d %q", code, body)
	}
	if code, _, _ := get(t, c, "GET", srv.base+"/healthz", nil); code != 200 {
		t.Fatalf("/healthz with the database gone: %d, want 200", code)
	}
	srv.stop()
	if logs := srv.stderr.String(); !strings.Contains(logs, "database unreachable") {
		t.Errorf("the cause is not logged: %q", logs)
	}
}
