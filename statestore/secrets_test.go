package statestore_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/statestore"
)

// Every operation that touches a boot action key or a connection password,
// with slog capturing at debug level: no secret may appear in the logs, in
// an error, or in the %+v of anything returned.
func TestSecretsNeverLeak(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, _ := newStore(t, statestore.Options{Logger: logger})
	var seen []string
	record := func(vals ...any) {
		for _, v := range vals {
			seen = append(seen, fmt.Sprintf("%v|%+v|%#v|%s", v, v, v, v))
		}
	}
	task := uuid.New()
	bctx, k1, err := s.CreateBootActionContext(ctx, "node01", task)
	record(bctx, k1, &k1, err)
	got, err := s.VerifyBootActionKey(ctx, "node01", k1.Reveal())
	record(got, err)
	got, err = s.VerifyBootActionKey(ctx, "node01", []byte(k1.RevealHex())) // the hex form nodes present: a match
	record(got, err)
	_, k2, err := s.CreateBootActionContext(ctx, "node01", task)
	record(k2, err)
	got, err = s.VerifyBootActionKey(ctx, "node01", k1.Reveal()) // the replaced key
	record(got, err)
	got, err = s.VerifyBootActionKey(ctx, "nosuchnode", k2.Reveal())
	record(got, err)
	bc, err := s.GetBootActionContext(ctx, "node01")
	record(bc, err)
	st, err := s.CreateBootActionStatus(ctx, statestore.NewBootActionStatus{NodeName: "node01", ActionName: "hw", TaskID: task})
	record(st, err)
	up, err := s.UpdateBootActionStatus(ctx, st.ActionID, statestore.ResultSuccess)
	record(up, err)
	all, err := s.BootActionStatuses(ctx, "node01")
	record(all, err)
	logger.Debug("keys", "k1", k1, "k2", k2)

	// A connection password in the elector's connection string.
	const password = "Pg-S3cret-Pw"
	for _, cs := range []string{
		"postgres://orch:" + password + "@127.0.0.1:1/state?connect_timeout=1",
		"host=127.0.0.1 port=1 user=orch password=" + password + " connect_timeout=1",
		"postgres://orch:" + password + "@127.0.0.1:notaport/state",
	} {
		el, err := statestore.NewElector(statestore.ElectorConfig{ConnString: cs, Logger: logger})
		record(err)
		if err != nil {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		err = el.Run(rctx, func(context.Context, int64) error { return nil })
		cancel()
		record(err, el, statestore.ElectorConfig{ConnString: cs})
		_, _, err = el.Claim(ctx)
		record(err)
	}

	text := strings.Join(seen, "\n") + "\n" + logs.String()
	secrets := map[string]string{
		"k1 hex": k1.RevealHex(), "k1 HEX": strings.ToUpper(k1.RevealHex()), "k1 raw": string(k1.Reveal()),
		"k2 hex": k2.RevealHex(), "k2 raw": string(k2.Reveal()), "password": password,
	}
	for name, secret := range secrets {
		if strings.Contains(text, secret) {
			t.Errorf("%s leaked", name)
		}
	}
	if !strings.Contains(logs.String(), "boot action key mismatch") || !strings.Contains(logs.String(), "leadership campaign failed") {
		t.Fatalf("the test did not exercise the logging paths:\n%s", logs.String())
	}
}
