// Command statectl is the operator's tool for the orchestrator's state
// store: migrations, tasks, messages, build data, boot actions, leadership,
// design documents, and a demo of the whole system. Run statectl --help.
package main

import (
	"context"
	"os"

	"github.com/drydock-go/statemgmt/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
