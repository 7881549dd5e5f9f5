package statestore_test

import (
	"os"
	"testing"

	"github.com/drydock-go/statemgmt/statestore/statetest"
)

func TestMain(m *testing.M) { os.Exit(statetest.Main(m)) }
