package statestore_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/statestore"
)

// TestBreakIdentityKeyPrintedInsideUnexportedField: README/doc promise that
// "every way of printing or logging it (String, %v, %x, %#v, slog, JSON)
// yields [REDACTED]". fmt cannot call Format/String on a value held in an
// unexported struct field (reflect's CanInterface is false there), so it
// prints IdentityKey's [32]byte directly: a caller's
// `struct{ node string; key statestore.IdentityKey }` printed with %x shows
// exactly RevealHex(), with %v the 32 bytes in decimal; slog's TextHandler
// (which formats structs with fmt) leaks the same way. Suggested fix: hold
// the bytes behind a pointer (`type IdentityKey struct{ b *[32]byte }`): fmt
// prints a nested pointer as its address, never the array.
func TestBreakIdentityKeyPrintedInsideUnexportedField(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	_, key, err := s.CreateBootActionContext(ctx, "node01", uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	type deployment struct {
		node string
		key  statestore.IdentityKey
	}
	d := deployment{node: "node01", key: key}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("deployment", "d", d)
	decimal := strings.Trim(fmt.Sprint(key.Reveal()), "[]")
	texts := map[string]string{"slog text": logs.String(), "%v pointer": fmt.Sprint(&d)}
	for _, verb := range []string{"%x", "%v", "%+v", "%#v"} {
		texts[verb] = fmt.Sprintf(verb, d)
	}
	for name, text := range texts {
		if strings.Contains(text, key.RevealHex()) || strings.Contains(text, decimal) {
			t.Errorf("%s of a struct holding the key in an unexported field leaks it: %.120s…", name, text)
		}
	}
}
