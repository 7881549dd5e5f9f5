package demo

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/drydock-go/statemgmt/statestore/statetest"
)

func TestMain(m *testing.M) { os.Exit(statetest.Main(m)) }

func TestDemoOnAGivenDatabase(t *testing.T) {
	var out bytes.Buffer
	db := statetest.New(t)
	if err := Run(context.Background(), Config{DatabaseURL: db.URL, Nodes: 6, Out: &out}); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{"elected leader, term 1", "created deploy_nodes", "KILLED the leader",
		"failover:", "not the current leader", "invariants hold"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
