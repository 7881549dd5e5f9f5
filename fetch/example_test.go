package fetch_test

// The Go snippet of docs/design-documents.md is the region marked
// "snippet:start fetch" below, copied by go generate (internal/doccheck
// keeps them equal).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/drydock-go/statemgmt/fetch"
	"github.com/drydock-go/statemgmt/statestore"
)

// ExampleNew is docs/design-documents.md's snippet: a Resolver confined to a
// root for file://, with a Deckhand token and a custom CA, fetching a
// deckhand+https design reference from a local TLS server, then a file
// beneath the root.
func ExampleNew() {
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	deckhand := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer example-token" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/x-yaml")
		fmt.Fprint(w, "schema: drydock/Region/v1\n")
	}))
	defer deckhand.Close()
	pool := x509.NewCertPool() // the CA that signed Deckhand's certificate
	pool.AddCert(deckhand.Certificate())
	if old, ok := os.LookupEnv("DECKHAND_TOKEN"); ok {
		defer os.Setenv("DECKHAND_TOKEN", old)
	} else {
		defer os.Unsetenv("DECKHAND_TOKEN")
	}
	if err := os.Setenv("DECKHAND_TOKEN", "example-token"); err != nil {
		panic(err)
	}
	designs, err := os.MkdirTemp("", "designs")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(designs)
	if err := os.WriteFile(filepath.Join(designs, "site.yaml"), []byte("site: example\n"), 0o644); err != nil {
		panic(err)
	}
	task := &statestore.Task{DesignRef: "deckhand+" + deckhand.URL + "/api/v1.0/revisions/1/rendered-documents"}

	run := func() error {
		// snippet:start fetch
		resolver, err := fetch.New(fetch.Options{
			Roots:  []string{designs},                              // confine file:// (opened beneath the root)
			Tokens: fetch.StaticToken(os.Getenv("DECKHAND_TOKEN")), // or your Keystone TokenSource; "" is refused
			TLS:    &tls.Config{RootCAs: pool},                     // custom CA, client certificates
			Logger: logger,
		})
		if err != nil {
			return err
		}
		defer resolver.Close() // releases the roots and idle connections
		res, err := resolver.Fetch(ctx, task.DesignRef)
		if err != nil {
			return err
		}
		// res.Data, res.URL (no credentials), res.ContentType, res.Size, res.SHA256, res.FromCache
		fmt.Printf("%s, %d bytes: %s", res.ContentType, res.Size, res.Data)

		res, err = resolver.Fetch(ctx, "file://"+filepath.Join(designs, "site.yaml"))
		if err != nil {
			return err
		}
		fmt.Printf("%s", res.Data)
		// snippet:end fetch
		return nil
	}
	if err := run(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// application/x-yaml, 26 bytes: schema: drydock/Region/v1
	// site: example
}
