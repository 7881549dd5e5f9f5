// Command snippets rewrites the Go snippets of README.md and docs/*.md from
// the marked regions of the Example functions they copy (see package
// doccheck). go generate runs it:
//
//	go run ./internal/doccheck/snippets -root .
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/drydock-go/statemgmt/internal/doccheck"
)

func main() {
	root := flag.String("root", ".", "the repository root (holding README.md and docs/)")
	flag.Parse()
	changed, err := doccheck.Rewrite(*root)
	for _, f := range changed {
		fmt.Println("rewrote", f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
