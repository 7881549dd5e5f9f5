package statestore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/drydock-go/statemgmt/statestore"
)

// sameJSON compares two documents by meaning: jsonb reorders keys, drops
// duplicates (last wins, as Go's decoder does) and normalises numbers, so
// numbers compare as exact rationals.
func sameJSON(a, b []byte) bool {
	x, errX := decodeExact(a)
	y, errY := decodeExact(b)
	return errX == nil && errY == nil && reflect.DeepEqual(x, y)
}

func decodeExact(doc []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return exactNumbers(v), nil
}

func exactNumbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		r, ok := new(big.Rat).SetString(string(t))
		if !ok {
			return "unparseable number " + string(t)
		}
		return r.RatString()
	case []any:
		for i := range t {
			t[i] = exactNumbers(t[i])
		}
	case map[string]any:
		for k := range t {
			t[k] = exactNumbers(t[k])
		}
	}
	return v
}

// FuzzCreateTask: the store's validation and the database agree. Any input
// is either rejected with an invalid-input error (and nothing is written) or
// stored and read back unchanged (JSON by meaning).
func FuzzCreateTask(f *testing.F) {
	s, pool := newStore(f, statestore.Options{})
	for _, seed := range [][3]string{
		{"deploy_nodes", "http://x/y", `{"a":[1,2]}`}, {"", "", ""}, {"Noop", "\x00", `{"a":"\u0000"}`},
		{"noop", "é", `"\ud800"`}, {"x'; drop", "%s", `[1e999]`}, {"noop", "", `"\\u0000"`}, {"noop", "", `[1e200000]`}, {"noop", "", `0.0e-16383`}, {"noop", "", `{"a":"\ud83d\ude80"}`}, {"noop", "", `[1e999, 1.50, -0, 1E2]`}, {"noop", "", `{"a":1,"a":2}`},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, action, designRef, filter string) {
		ctx := context.Background()
		before := count(t, pool, "SELECT count(*) FROM tasks")
		nt := statestore.NewTask{Action: action, DesignRef: designRef}
		if filter != "" {
			nt.NodeFilter = json.RawMessage(filter)
		}
		task, err := s.CreateTask(ctx, nt)
		if err != nil {
			var inv *statestore.InvalidInputError
			if !errors.As(err, &inv) {
				t.Fatalf("CreateTask(%q, %q, %q): %v is not an invalid-input error", action, designRef, filter, err)
			}
			if !strings.HasPrefix(inv.Field, "task.") { // Go's rule, not the server's verdict
				t.Fatalf("CreateTask(%q, %q, %q): %v was left for the database to reject", action, designRef, filter, err)
			}
			if after := count(t, pool, "SELECT count(*) FROM tasks"); after != before {
				t.Fatalf("rejected input wrote %d tasks", after-before)
			}
			return
		}
		got, err := s.GetTask(ctx, task.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Action != action || got.DesignRef != designRef {
			t.Fatalf("read back %q/%q, stored %q/%q", got.Action, got.DesignRef, action, designRef)
		}
		if filter != "" && !sameJSON(got.NodeFilter, []byte(filter)) {
			t.Fatalf("node filter read back %q, stored %q", got.NodeFilter, filter)
		}
	})
}

// FuzzAppendMessage: message text, context and extra JSON either stored and
// read back unchanged, or rejected with an invalid-input error and nothing
// written.
func FuzzAppendMessage(f *testing.F) {
	s, pool := newStore(f, statestore.Options{})
	task, err := s.CreateTask(context.Background(), statestore.NewTask{Action: "noop"})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][3]string{{"hello", "node1", `{"k":"v"}`}, {"\xff", "", ""}, {"a\x00", "n", "{"}, {"", "", `{"a":"\u0000"}`}, {"ok", "ok", `"\udc00"`},
		{"", "", `{"a":"\\u0000"}`}, {"", "", `{"n":-1e-200000}`}} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, msg, msgContext, extra string) {
		ctx := context.Background()
		before := count(t, pool, "SELECT count(*) FROM result_message")
		m := statestore.NewMessage{Message: msg, Context: msgContext}
		if extra != "" {
			m.Extra = json.RawMessage(extra)
		}
		out, err := s.AppendMessage(ctx, task.ID, m)
		if err != nil {
			var inv *statestore.InvalidInputError
			if !errors.As(err, &inv) {
				t.Fatalf("AppendMessage(%q, %q, %q): %v is not an invalid-input error", msg, msgContext, extra, err)
			}
			if !strings.HasPrefix(inv.Field, "message.") { // Go's rule, not the server's verdict
				t.Fatalf("AppendMessage(%q, %q, %q): %v was left for the database to reject", msg, msgContext, extra, err)
			}
			if after := count(t, pool, "SELECT count(*) FROM result_message"); after != before {
				t.Fatal("rejected message was written")
			}
			return
		}
		got, err := s.Messages(ctx, task.ID, out.Sequence-1, 1)
		if err != nil || len(got) != 1 {
			t.Fatalf("read back: %v", err)
		}
		if got[0].Message != msg || got[0].Context != msgContext || (extra != "" && !sameJSON(got[0].Extra, []byte(extra))) {
			t.Fatalf("read back %+v, stored %q %q %q", got[0], msg, msgContext, extra)
		}
	})
}
