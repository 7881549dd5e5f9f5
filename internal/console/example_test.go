package console_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/drydock-go/statemgmt/internal/console"
	"github.com/drydock-go/statemgmt/statestore"
	"github.com/drydock-go/statemgmt/statestore/statetest"
)

// ExampleNew mounts the console behind an authentication middleware, as
// docs/console.md shows, on a fresh database, and asks for the tasks page
// without and with credentials.
func ExampleNew() {
	run := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		srv, err := statetest.DefaultServer(ctx)
		if err != nil {
			return err
		}
		db, err := srv.CreateDatabase(ctx)
		if err != nil {
			return err
		}
		defer func() {
			if err := srv.DropDatabase(context.WithoutCancel(ctx), db.Name); err != nil {
				slog.Error("drop example database", "err", err)
			}
		}()
		pool, err := pgxpool.New(ctx, db.URL)
		if err != nil {
			return err
		}
		defer pool.Close()
		store := statestore.New(pool, statestore.Options{})
		defer store.Close()

		mux := http.NewServeMux()
		requireAuth := func(next http.Handler) http.Handler { // a stand-in for statectl serve's
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if u, p, ok := r.BasicAuth(); !ok || u != "ops" || p != "example" {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				next.ServeHTTP(w, r)
			})
		}
		mount := func() error {
			// snippet:start console-mount
			h, err := console.New(store, console.Options{Prefix: "/console"})
			if err != nil {
				return err // an invalid option, named: "console: Options.Prefix ..."
			}
			mux.Handle("/console/", requireAuth(h))
			// snippet:end console-mount
			return nil
		}
		if err := mount(); err != nil {
			return err
		}
		ts := httptest.NewServer(mux)
		defer ts.Close()
		for _, creds := range []bool{false, true} {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/console/", nil)
			if err != nil {
				return err
			}
			if creds {
				req.SetBasicAuth("ops", "example")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			fmt.Println("credentials:", creds, "status:", resp.StatusCode)
		}
		return nil
	}
	if err := run(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// credentials: false status: 401
	// credentials: true status: 200
}
