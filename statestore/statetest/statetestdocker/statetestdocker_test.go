package statetestdocker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/drydock-go/statemgmt/statestore/statetest"
	_ "github.com/drydock-go/statemgmt/statestore/statetest/statetestdocker"
)

// TestImportRegistersProvider forces the Docker source: with this module
// imported, statetest must not say that no provider is registered. Where no
// Docker engine answers (as on this project's machines) it fails to find a
// server for that reason instead; where one does, it starts a container.
func TestImportRegistersProvider(t *testing.T) {
	t.Setenv(statetest.EnvServer, "docker")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := statetest.DefaultServer(ctx)
	if err == nil {
		defer func() {
			if err := statetest.Shutdown(context.WithoutCancel(ctx)); err != nil {
				t.Error(err)
			}
		}()
		if srv.Source != statetest.SourceDocker {
			t.Fatalf("forced docker, got a %s server", srv.Source)
		}
		return
	}
	if strings.Contains(err.Error(), "no Docker provider registered") {
		t.Fatalf("the blank import did not register the provider: %v", err)
	}
	t.Logf("no Docker engine here, as expected on machines without one: %v", err)
}
