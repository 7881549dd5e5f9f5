package statestore_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/drydock-go/statemgmt/statestore"
)

// Port of the original's boot action scenarios: post, update, get, with the
// key round trip.
func TestBootActionContextAndStatus(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	task := uuid.New()
	bctx, key, err := s.CreateBootActionContext(ctx, "node01", task)
	if err != nil {
		t.Fatal(err)
	}
	if bctx.NodeName != "node01" || bctx.TaskID != task || len(key.Reveal()) != 32 {
		t.Fatalf("context = %+v", bctx)
	}
	got, err := s.VerifyBootActionKey(ctx, "node01", key.Reveal())
	if err != nil {
		t.Fatalf("the node's own key was refused: %v", err)
	}
	if diff := cmp.Diff(bctx, got); diff != "" {
		t.Fatalf("verified context (-want +got):\n%s", diff)
	}
	read, err := s.GetBootActionContext(ctx, "node01")
	if err != nil || read.TaskID != task {
		t.Fatalf("GetBootActionContext = %+v, %v", read, err)
	}
	// Replacing issues a new key; the old one stops working.
	_, key2, err := s.CreateBootActionContext(ctx, "node01", uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyBootActionKey(ctx, "node01", key.Reveal()); !errors.Is(err, statestore.ErrKeyMismatch) {
		t.Fatalf("old key after replacement: %v", err)
	}
	if _, err := s.VerifyBootActionKey(ctx, "node01", key2.Reveal()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyBootActionKey(ctx, "node99", key2.Reveal()); !errors.Is(err, statestore.ErrNotFound) {
		t.Fatalf("unknown node: %v", err)
	}

	st, err := s.CreateBootActionStatus(ctx, statestore.NewBootActionStatus{NodeName: "node01", ActionName: "hw_config", TaskID: task})
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != statestore.ResultIncomplete || len(st.ActionID.String()) != 26 {
		t.Fatalf("new status = %+v", st)
	}
	up, err := s.UpdateBootActionStatus(ctx, st.ActionID, statestore.ResultSuccess)
	if err != nil || up.Status != statestore.ResultSuccess {
		t.Fatalf("update = %+v, %v", up, err)
	}
	one, err := s.GetBootActionStatus(ctx, st.ActionID)
	if err != nil || one.Status != statestore.ResultSuccess || one.ActionID != st.ActionID {
		t.Fatalf("get = %+v, %v", one, err)
	}
	if _, err := s.CreateBootActionStatus(ctx, statestore.NewBootActionStatus{NodeName: "node01", ActionName: "os_config", TaskID: task, Status: statestore.ResultFailure}); err != nil {
		t.Fatal(err)
	}
	all, err := s.BootActionStatuses(ctx, "node01")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all["hw_config"].Status != statestore.ResultSuccess || all["os_config"].Status != statestore.ResultFailure {
		t.Fatalf("statuses by name = %+v", all)
	}
	missing, _ := statestore.NewULID()
	if _, err := s.UpdateBootActionStatus(ctx, missing, statestore.ResultSuccess); !errors.Is(err, statestore.ErrNotFound) {
		t.Fatalf("update unknown action id: %v", err)
	}
	if _, err := s.CreateBootActionStatus(ctx, statestore.NewBootActionStatus{NodeName: "nocontext", ActionName: "x", TaskID: task}); !errors.Is(err, statestore.ErrNotFound) {
		t.Fatalf("status for a node without context: %v", err)
	}
	if _, err := s.CreateBootActionStatus(ctx, statestore.NewBootActionStatus{ActionID: st.ActionID, NodeName: "node01", ActionName: "x", TaskID: task}); !errors.Is(err, statestore.ErrConflict) {
		t.Fatalf("duplicate action id: %v", err)
	}
}

// A wrong key: neither the right key nor the presented one may appear in
// any log line or error text, in raw or hex form.
func TestWrongKeyLeaksNothing(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, _ := newStore(t, statestore.Options{Logger: logger})
	_, key, err := s.CreateBootActionContext(ctx, "node01", uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	wrong := bytes.Repeat([]byte{0xAB}, 32)
	_, err = s.VerifyBootActionKey(ctx, "node01", wrong)
	if !errors.Is(err, statestore.ErrKeyMismatch) {
		t.Fatalf("wrong key: %v", err)
	}
	// Everything that could carry the key: error text, logs, every print verb.
	logger.Info("context", "key", key)
	var texts []string
	texts = append(texts, err.Error(), fmt.Sprintf("%v %+v %#v", err, err, err), logs.String())
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		texts = append(texts, fmt.Sprintf(verb, key), fmt.Sprintf(verb, &key))
	}
	j, _ := json.Marshal(struct{ K statestore.IdentityKey }{key})
	texts = append(texts, key.String(), string(j))
	secrets := map[string]string{
		"key hex": key.RevealHex(), "key HEX": strings.ToUpper(key.RevealHex()), "key raw": string(key.Reveal()),
		"wrong hex": hex.EncodeToString(wrong), "wrong raw": string(wrong),
	}
	for _, text := range texts {
		for name, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Fatalf("%s leaked into %q", name, text)
			}
		}
	}
	if !strings.Contains(logs.String(), "boot action key mismatch") || !strings.Contains(logs.String(), "node01") {
		t.Fatalf("mismatch not logged with the node name: %s", logs.String())
	}
}

func TestULID(t *testing.T) {
	id, err := statestore.NewULID()
	if err != nil {
		t.Fatal(err)
	}
	text := id.String()
	if len(text) != 26 {
		t.Fatalf("ULID text %q", text)
	}
	back, err := statestore.ParseULID(strings.ToLower(text))
	if err != nil || back != id {
		t.Fatalf("round trip %q -> %v, %v", text, back, err)
	}
	// The ULID specification's example; its timestamp decoded independently (Python).
	spec, err := statestore.ParseULID("01ARZ3NDEKTSV4RRFFQ69G5FAV")
	if err != nil || spec.Time().UnixMilli() != 1469922850259 || spec.String() != "01ARZ3NDEKTSV4RRFFQ69G5FAV" {
		t.Fatalf("spec ULID: %v at %d, %v", spec, spec.Time().UnixMilli(), err)
	}
	// Known vectors: all zero bits and all one bits.
	if s := (statestore.ULID{}).String(); s != "00000000000000000000000000" {
		t.Fatalf("zero ULID = %s", s)
	}
	var ones statestore.ULID
	for i := range ones {
		ones[i] = 0xFF
	}
	if s := ones.String(); s != "7ZZZZZZZZZZZZZZZZZZZZZZZZZ" {
		t.Fatalf("max ULID = %s", s)
	}
	for _, bad := range []string{"", "01ARZ3NDEKTSV4RRFFQ69G5FA", "01ARZ3NDEKTSV4RRFFQ69G5FAVX", "8ZZZZZZZZZZZZZZZZZZZZZZZZZ", "01ARZ3NDEKTSV4RRFFQ69G5FA!", "01ARZ3NDEKTSV4RRFFQ69G5FAU"} {
		if _, err := statestore.ParseULID(bad); !errors.Is(err, statestore.ErrInvalidInput) {
			t.Errorf("ParseULID(%q) = %v, want invalid input", bad, err)
		}
	}
}

func TestBootActionBadInput(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	_, _, err := s.CreateBootActionContext(ctx, "", uuid.New())
	wantInvalid(t, err, "node")
	_, _, err = s.CreateBootActionContext(ctx, strings.Repeat("n", 281), uuid.New())
	wantInvalid(t, err, "node")
	_, _, err = s.CreateBootActionContext(ctx, "n1", uuid.Nil)
	wantInvalid(t, err, "task")
	if _, _, err := s.CreateBootActionContext(ctx, "n1", uuid.New()); err != nil {
		t.Fatal(err)
	}
	_, err = s.CreateBootActionStatus(ctx, statestore.NewBootActionStatus{NodeName: "n1", ActionName: "x", TaskID: uuid.New(), Status: "running"})
	wantInvalid(t, err, "status.Status")
	_, err = s.CreateBootActionStatus(ctx, statestore.NewBootActionStatus{NodeName: "n1", ActionName: strings.Repeat("a", 65), TaskID: uuid.New()})
	wantInvalid(t, err, "status.ActionName")
	_, err = s.CreateBootActionStatus(ctx, statestore.NewBootActionStatus{NodeName: "n1", ActionName: "", TaskID: uuid.New()})
	wantInvalid(t, err, "status.ActionName")
	id, _ := statestore.NewULID()
	_, err = s.UpdateBootActionStatus(ctx, id, "done")
	wantInvalid(t, err, "status")
	_, err = statestore.ParseULID("not-a-ulid")
	wantInvalid(t, err, "action id")
	if n := count(t, pool, "SELECT count(*) FROM boot_action_status"); n != 0 {
		t.Fatalf("%d statuses written by bad input", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM boot_action"); n != 1 {
		t.Fatalf("%d contexts, want 1", n)
	}
}
