package statestore_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/drydock-go/statemgmt/statestore"
)

// DEFECT: ElectorConfig hides its connection string (and password) only
// from fmt's %v/%s/%#v, through String and GoString. Logged as a value with
// slog's JSON handler (which json.Marshals it), marshalled to JSON (e.g. a
// config dump), or printed with any verb for which fmt does not call String
// (%d, %t, …: fmt then prints every field, ConnString included), the password
// comes out in clear. The boot action key in this package is redacted for
// every verb, slog and JSON; the elector's password deserves the same.
//
// Suggested fix: give ElectorConfig LogValue (slog.StringValue(c.String())),
// MarshalJSON (or a `json:"-"` tag on ConnString) and a Format method that
// prints String() for every verb.
// Fixed: ElectorConfig and *Elector have Format (String for every verb),
// LogValue and MarshalJSON (String, as a JSON string).
func TestElectorConfigPasswordNeverPrinted(t *testing.T) {
	const password = "Pg-S3cret-Pw"
	cfg := statestore.ElectorConfig{ConnString: "postgres://orch:" + password + "@127.0.0.1:5432/state"}

	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("starting elector", "config", cfg)
	js, _ := json.Marshal(cfg)
	verbs := []string{"%d", "%+d"} // not constants: vet would (rightly) flag them; a logger's format string would not be

	for name, out := range map[string]string{
		"slog JSON handler": logs.String(),
		"json.Marshal":      string(js),
		"fmt %d":            fmt.Sprintf(verbs[0], cfg),
		"fmt %+d":           fmt.Sprintf(verbs[1], cfg),
	} {
		if strings.Contains(out, password) {
			t.Errorf("%s reveals the password: %s", name, strings.TrimSpace(out))
		}
	}
}
