package statestore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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

// What nodes present: the key as handed out by RevealHex (either case) or
// Reveal verifies, here end to end through an HTTP header as a node sends
// it; every other shape is a mismatch.
func TestVerifyBootActionKeyAcceptsWhatNodesPresent(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	_, key, err := s.CreateBootActionContext(ctx, "node01", uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := s.CreateBootActionContext(ctx, "node02", uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	// The orchestrator's API: the node sends its key in a header.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := s.VerifyBootActionKey(r.Context(), "node01", []byte(r.Header.Get("X-Bootaction-Key")))
		switch {
		case err == nil:
			w.WriteHeader(http.StatusOK)
		case errors.Is(err, statestore.ErrKeyMismatch):
			w.WriteHeader(http.StatusForbidden)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	// The cloud-init file the node reads its key from, as the README renders it.
	cloudInit := "bootaction_key: " + key.RevealHex() + "\n"
	presented := strings.TrimSpace(strings.TrimPrefix(cloudInit, "bootaction_key: "))
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, nil)
	req.Header.Set("X-Bootaction-Key", presented)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the node's key from RevealHex, sent in a header: HTTP %d", resp.StatusCode)
	}

	h := key.RevealHex()
	mixed := []byte(h)
	for i := 0; i < len(mixed); i += 2 {
		mixed[i] = strings.ToUpper(string(mixed[i]))[0]
	}
	for name, p := range map[string][]byte{
		"raw bytes (Reveal)":    key.Reveal(),
		"hex (RevealHex)":       []byte(h),
		"upper-case hex":        []byte(strings.ToUpper(h)),
		"mixed-case hex":        mixed,
		"hex as a fresh string": []byte(hex.EncodeToString(key.Reveal())),
	} {
		if _, err := s.VerifyBootActionKey(ctx, "node01", p); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	flipped := []byte(h)
	flipped[63] = "01"[map[bool]int{true: 1}[flipped[63] == '0']]
	nonHex := []byte(h)
	nonHex[10] = 'g'
	for name, p := range map[string][]byte{
		"nil":                         nil,
		"empty":                       {},
		"hex with a newline":          []byte(h + "\n"),
		"hex with spaces":             []byte(" " + h),
		"hex with 0x":                 []byte("0x" + h),
		"63 hex digits":               []byte(h[:63]),
		"65 hex digits":               []byte(h + "0"),
		"one digit changed":           flipped,
		"a non-hex digit":             nonHex,
		"31 raw bytes":                key.Reveal()[:31],
		"33 raw bytes":                append(key.Reveal(), 0),
		"another node's key, raw":     other.Reveal(),
		"another node's key, hex":     []byte(other.RevealHex()),
		"base64 of the key":           []byte(base64.StdEncoding.EncodeToString(key.Reveal())),
		"the key's SHA-256 digest":    func() []byte { d := sha256.Sum256(key.Reveal()); return d[:] }(),
		"hex of the key's hex digits": []byte(hex.EncodeToString([]byte(h)))[:64],
	} {
		if _, err := s.VerifyBootActionKey(ctx, "node01", p); !errors.Is(err, statestore.ErrKeyMismatch) {
			t.Errorf("%s: %v, want ErrKeyMismatch", name, err)
		}
	}
}

// The constant-time hex decoder agrees with encoding/hex on every byte
// value in every position.
func TestPresentedKeyDecoder(t *testing.T) {
	for c := 0; c < 256; c++ {
		for _, pos := range []int{0, 1, 63} {
			p := []byte(strings.Repeat("a5", 32))
			p[pos] = byte(c)
			want, err := hex.DecodeString(string(p))
			got, ok := statestore.DecodePresentedKey(p)
			if ok != (err == nil) {
				t.Fatalf("byte %#x at %d: ok = %v, encoding/hex says %v", c, pos, ok, err)
			}
			if ok && !bytes.Equal(got[:], want) {
				t.Fatalf("byte %#x at %d: decoded %x, want %x", c, pos, got, want)
			}
		}
	}
	raw := bytes.Repeat([]byte{0xFF}, 32)
	if got, ok := statestore.DecodePresentedKey(raw); !ok || !bytes.Equal(got[:], raw) {
		t.Fatalf("raw key: %x %v", got, ok)
	}
}

// A final status (all but incomplete) is final: updating it is ErrConflict
// and writes nothing; an incomplete run may change to anything.
func TestFinalBootActionStatusCannotBeOverwritten(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, statestore.Options{})
	task := uuid.New()
	if _, _, err := s.CreateBootActionContext(ctx, "node01", task); err != nil {
		t.Fatal(err)
	}
	all := []statestore.ResultStatus{statestore.ResultIncomplete, statestore.ResultSuccess, statestore.ResultPartialSuccess,
		statestore.ResultFailure, statestore.ResultUnreported}
	var final []statestore.ResultStatus
	for _, st := range all {
		if statestore.FinalBootActionStatus(st) {
			final = append(final, st)
		}
	}
	if diff := cmp.Diff([]statestore.ResultStatus{statestore.ResultSuccess, statestore.ResultPartialSuccess, statestore.ResultFailure, statestore.ResultUnreported}, final); diff != "" {
		t.Fatalf("final statuses (-want +got):\n%s", diff)
	}
	for _, from := range all {
		for _, to := range all {
			t.Run(string(from)+"->"+string(to), func(t *testing.T) {
				st, err := s.CreateBootActionStatus(ctx, statestore.NewBootActionStatus{NodeName: "node01", ActionName: "hw", TaskID: task, Status: from})
				if err != nil {
					t.Fatal(err)
				}
				up, err := s.UpdateBootActionStatus(ctx, st.ActionID, to)
				after, gerr := s.GetBootActionStatus(ctx, st.ActionID)
				if gerr != nil {
					t.Fatal(gerr)
				}
				if statestore.FinalBootActionStatus(from) {
					if !errors.Is(err, statestore.ErrConflict) || up != nil {
						t.Fatalf("update of final %s = %+v, %v, want ErrConflict", from, up, err)
					}
					if diff := cmp.Diff(st, after); diff != "" {
						t.Fatalf("a refused update wrote (-before +after):\n%s", diff)
					}
					return
				}
				if err != nil || up.Status != to || after.Status != to {
					t.Fatalf("update %s -> %s = %+v, %v; stored %s", from, to, up, err, after.Status)
				}
			})
		}
	}

	// A second connection reports success and holds the row lock; the store's
	// update to failure waits for it, then finds the status final.
	st, err := s.CreateBootActionStatus(ctx, statestore.NewBootActionStatus{NodeName: "node01", ActionName: "race", TaskID: task})
	if err != nil {
		t.Fatal(err)
	}
	other, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(ctx)
	if _, err := other.Exec(ctx, "UPDATE boot_action_status SET action_status = 'success' WHERE action_id = $1", uuid.UUID(st.ActionID)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.UpdateBootActionStatus(ctx, st.ActionID, statestore.ResultFailure)
		done <- err
	}()
	waitForLockWait(t, pool)
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, statestore.ErrConflict) {
		t.Fatalf("update racing a committed success: %v, want ErrConflict", err)
	}
	if got, err := s.GetBootActionStatus(ctx, st.ActionID); err != nil || got.Status != statestore.ResultSuccess {
		t.Fatalf("after the race: %+v, %v, want success kept", got, err)
	}

	// Many reports of one run at once: exactly one wins, and its status stays.
	st, err = s.CreateBootActionStatus(ctx, statestore.NewBootActionStatus{NodeName: "node01", ActionName: "many", TaskID: task})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make([]error, 12)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, results[i] = s.UpdateBootActionStatus(ctx, st.ActionID, final[i%len(final)])
		}()
	}
	wg.Wait()
	var winners []statestore.ResultStatus
	for i, err := range results {
		switch {
		case err == nil:
			winners = append(winners, final[i%len(final)])
		case !errors.Is(err, statestore.ErrConflict):
			t.Fatalf("update %d: %v", i, err)
		}
	}
	got, err := s.GetBootActionStatus(ctx, st.ActionID)
	if err != nil || len(winners) != 1 || got.Status != winners[0] {
		t.Fatalf("%d winners %v; stored %+v, %v", len(winners), winners, got, err)
	}
}

// The newest run of an action is the one recorded last, also when many runs
// are recorded in one transaction (one created_at) and whatever their ids:
// 40 nodes × 4 runs, half with generated ULIDs (random within a
// millisecond), half with caller-supplied ids that decrease.
func TestNewestBootActionRunWithinOneTransaction(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, statestore.Options{})
	task := uuid.New()
	const nodes, runs = 40, 4
	for n := range nodes {
		if _, _, err := s.CreateBootActionContext(ctx, fmt.Sprintf("node%02d", n), task); err != nil {
			t.Fatal(err)
		}
	}
	lastRun := map[string]statestore.ULID{}
	check := func(st *statestore.Store, when string) {
		t.Helper()
		wrong := 0
		for n := range nodes {
			node := fmt.Sprintf("node%02d", n)
			got, err := st.BootActionStatuses(ctx, node)
			if err != nil {
				t.Fatal(err)
			}
			if got["hw_config"].ActionID != lastRun[node] {
				wrong++
			}
		}
		if wrong > 0 {
			t.Errorf("%s: %d of %d nodes report an older run as the newest", when, wrong, nodes)
		}
	}
	err := s.InTx(ctx, func(ctx context.Context, tx *statestore.Store) error {
		for r := range runs {
			for n := range nodes {
				node := fmt.Sprintf("node%02d", n)
				nb := statestore.NewBootActionStatus{NodeName: node, ActionName: "hw_config", TaskID: task}
				if n%2 == 1 { // ids from another generator, each run's smaller than the last
					var id statestore.ULID
					id[14], id[15] = byte(n), byte(runs-r)
					nb.ActionID = id
				}
				st, err := tx.CreateBootActionStatus(ctx, nb)
				if err != nil {
					return err
				}
				lastRun[node] = st.ActionID
			}
		}
		check(tx, "inside the transaction")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	check(s, "after commit")
}
