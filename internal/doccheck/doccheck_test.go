package doccheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// root is the repository root, seen from this package's directory.
const root = "../.."

// TestDocSnippetsMatchExamples fails when a ```go block of README.md or
// docs/*.md has no <!-- snippet: name --> marker, or is not byte-equal to
// the marked region of the compiled Example it copies. Fix: go generate
// ./internal/doccheck (or make generate).
func TestDocSnippetsMatchExamples(t *testing.T) {
	if err := Check(root); err != nil {
		t.Fatal(err)
	}
}

// TestRelativeLinksResolve fails when a relative link of README.md or
// docs/*.md names a missing file or a missing #anchor.
func TestRelativeLinksResolve(t *testing.T) {
	if err := CheckLinks(root); err != nil {
		t.Fatal(err)
	}
}

// TestExportedNamesDocumented fails when an exported name or exported struct
// field of the library packages lacks a doc comment.
func TestExportedNamesDocumented(t *testing.T) {
	for _, pkg := range []string{"statestore", "statestore/statetest", "fetch"} {
		missing, err := Undocumented(filepath.Join(root, pkg))
		if err != nil {
			t.Fatal(err)
		}
		if len(missing) > 0 {
			t.Errorf("%s: exported names without a doc comment:\n  %s", pkg, strings.Join(missing, "\n  "))
		}
	}
}

// TestAPIDocsNameNoTestOnlyCalls fails when the documentation of the library
// packages' exported names sends a reader to a call only their tests can
// make (statestore's export_test.go: Elector.Claim, Maintain, Abdicate,
// Store.WaitForQueued), which go doc readers look for in vain.
func TestAPIDocsNameNoTestOnlyCalls(t *testing.T) {
	for _, pkg := range []string{"statestore", "statestore/statetest", "fetch"} {
		found, err := TestOnlyNamesInAPIDocs(filepath.Join(root, pkg))
		if err != nil {
			t.Fatal(err)
		}
		if len(found) > 0 {
			t.Errorf("%s: doc comments naming test-only calls:\n  %s", pkg, strings.Join(found, "\n  "))
		}
	}
}

// TestTestOnlyNamesInAPIDocs checks the checker on a package of its own.
func TestTestOnlyNamesInAPIDocs(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"x.go": `package x

// Claim is a type of its own.
type Claim struct{}

// E campaigns; after Claim, call Keep.
type E struct {
	// Timeout bounds Keep.
	Timeout int
}

// Run runs; see Claim for the type.
func (e *E) Run() {}

// Other mentions Claim the type, and TestMain, and nothing test-only.
func Other() {}
`,
		"export_test.go": `package x

func TestMain() {}

func (e *E) Claim() {}

func (e *E) Keep() {}
`,
		"ext_test.go": `package x_test

func Extern() {}
`,
	})
	got, err := TestOnlyNamesInAPIDocs(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		filepath.ToSlash(filepath.Join(dir, "x.go")) + ":12: E.Run: Claim", // sorted as text
		filepath.ToSlash(filepath.Join(dir, "x.go")) + ":6: E: Claim",
		filepath.ToSlash(filepath.Join(dir, "x.go")) + ":6: E: Keep",
		filepath.ToSlash(filepath.Join(dir, "x.go")) + ":8: E.Timeout: Keep",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("found:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// writeTree writes files (slash paths relative to dir) for the checker tests.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const exampleGo = `package x

func Example() {
	run := func() error {
		// snippet:start outer
		a := 1
		// snippet:start inner
		if a > 0 {
			return nil
		}
		// snippet:end inner

		return nil
		// snippet:end outer
	}
	_ = run()
}
`

func TestSnippetCheckAndRewrite(t *testing.T) {
	stale := "# T\n\n<!-- snippet: inner -->\n```go\nif a > 1 {\n\treturn nil\n}\n```\n\nprose\n\n<!-- snippet: outer -->\n```go\na := 1\nif a > 0 {\n\treturn nil\n}\n\nreturn nil\n```\n"
	dir := writeTree(t, map[string]string{
		"x/example_test.go": exampleGo,
		"README.md":         stale,
		"docs/a.md":         "no code\n",
	})
	err := Check(dir)
	if err == nil || !strings.Contains(err.Error(), `README.md:4: snippet "inner" differs`) {
		t.Fatalf("Check() = %v, want the stale inner block reported", err)
	}
	if strings.Contains(err.Error(), `"outer"`) {
		t.Fatalf("Check() reports the matching outer block: %v", err)
	}
	changed, err := Rewrite(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"README.md"}, changed); diff != "" {
		t.Fatalf("Rewrite() changed (-want +got):\n%s", diff)
	}
	got, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(stale, "if a > 1", "if a > 0", 1)
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Fatalf("rewritten README (-want +got):\n%s", diff)
	}
	if err := Check(dir); err != nil {
		t.Fatalf("Check() after Rewrite = %v", err)
	}
}

func TestSnippetWithoutMarkerOrRegion(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"x/example_test.go": exampleGo,
		"README.md":         "```go\nx := 1\n```\n\n<!-- snippet: nosuch -->\n```go\ny := 2\n```\n\n```sh\nmake test\n```\n",
	})
	err := Check(dir)
	if err == nil || !strings.Contains(err.Error(), "README.md:1: ```go block without a <!-- snippet: name -->") ||
		!strings.Contains(err.Error(), `README.md:6: snippet "nosuch" names no region`) {
		t.Fatalf("Check() = %v, want both blocks reported", err)
	}
	if _, err := Rewrite(dir); err == nil {
		t.Fatal("Rewrite() = nil error with unmarked blocks")
	}
}

func TestIndentedGoBlockRefused(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"x/example_test.go": exampleGo,
		"README.md":         "- a list item:\n\n  ```go\n  x := 1\n  ```\n",
	})
	if err := Check(dir); err == nil || !strings.Contains(err.Error(), "README.md:3: an indented ```go block") {
		t.Fatalf("Check() = %v, want the indented block refused", err)
	}
}

func TestCheckLinks(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"README.md": "[ok](docs/a.md) [anchor](docs/a.md#the-heading-x) [dir](docs) [web](https://example.com/x.md)\n" +
			"`[code](nope.md)` [self](#top)\n\n# Top\n\n```\n[in code](gone.md)\n```\n" +
			"[missing](docs/gone.md) [bad anchor](docs/a.md#nope)\n",
		"docs/a.md": "## The heading: x\n\n[back](../README.md#top) [up](../../outside.md)\n",
	})
	err := CheckLinks(dir)
	if err == nil {
		t.Fatal("CheckLinks() = nil, want the broken links")
	}
	msg := err.Error()
	for _, want := range []string{`"docs/gone.md"`, `"docs/a.md#nope"`, `"../../outside.md" leaves the repository`} {
		if !strings.Contains(msg, want) {
			t.Errorf("CheckLinks() error lacks %s:\n%s", want, msg)
		}
	}
	for _, notWant := range []string{"nope.md", "gone.md\"", "the-heading-x", "#top", "example.com", `"docs"`} {
		if strings.Contains(msg, notWant) && notWant != "gone.md\"" {
			t.Errorf("CheckLinks() reports a good link (%s):\n%s", notWant, msg)
		}
	}
	if strings.Contains(msg, `"gone.md"`) {
		t.Errorf("CheckLinks() reports a link inside a code block:\n%s", msg)
	}
}

func TestUndocumented(t *testing.T) {
	dir := writeTree(t, map[string]string{"p/p.go": `package p

// T is documented.
type T struct {
	// A is documented.
	A int
	B int // B has a line comment.
	C int
	d int
}

type U int

// F is documented.
func F() {}

func G() {}

func (T) M() {}

func (u) N() {}

type u int

// Group doc.
const (
	X = 1
	Y = 2
)

var Z = 3

// I is documented.
type I interface {
	Do()
}
`, "p/p_test.go": "package p\n\nfunc Undoc() {}\n"})
	got, err := Undocumented(filepath.Join(dir, "p"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i] = got[i][strings.Index(got[i], "p.go:"):]
	}
	want := []string{"p.go:12: U", "p.go:17: G", "p.go:19: T.M", "p.go:31: Z", "p.go:35: I.Do", "p.go:8: T.C"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Undocumented (-want +got):\n%s", diff)
	}
}
