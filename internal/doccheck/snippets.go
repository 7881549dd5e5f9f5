// Package doccheck keeps the project's documentation honest: the Go
// snippets in README.md and docs/*.md are copies of marked regions of
// compiled, run Example functions (and are rewritten from them by go
// generate); relative links resolve; exported names carry doc comments.
//
// A region is marked in any _test.go file of the module:
//
//	// snippet:start name
//	...code...
//	// snippet:end name
//
// Regions may nest; marker lines of other regions inside a region are
// left out of it. A ```go block in the markdown names its region on the
// line before its opening fence:
//
//	<!-- snippet: name -->
//
// and must equal the region with its common indentation removed.
package doccheck

//go:generate go run ./snippets -root ../..

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Region is a marked region of a Go file.
type Region struct {
	// Name is the region's name from its markers.
	Name string
	// File and Line locate the start marker (File relative to the root).
	File string
	Line int
	// Text is the region's lines, dedented, each ending in a newline.
	Text string
}

// Block is a ```go block of a markdown file.
type Block struct {
	// Name is the region named by the marker line before the fence; empty
	// when there is none.
	Name string
	// File and Line locate the opening fence (File relative to the root).
	File string
	Line int
	// Text is the block's content, each line ending in a newline.
	Text string
	// start and end are the byte offsets of Text in the file.
	start, end int
}

var (
	startMarker = regexp.MustCompile(`^\s*// snippet:start ([A-Za-z0-9_.-]+)\s*$`)
	endMarker   = regexp.MustCompile(`^\s*// snippet:end ([A-Za-z0-9_.-]+)\s*$`)
	blockMarker = regexp.MustCompile(`^<!-- snippet: ([A-Za-z0-9_.-]+) -->\s*$`)
)

// MarkdownFiles returns README.md and docs/*.md under root, relative to it.
func MarkdownFiles(root string) ([]string, error) {
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, fmt.Errorf("doccheck: list docs: %w", err)
	}
	files := []string{"README.md"}
	for _, d := range docs {
		rel, err := filepath.Rel(root, d)
		if err != nil {
			return nil, fmt.Errorf("doccheck: %w", err)
		}
		files = append(files, filepath.ToSlash(rel))
	}
	sort.Strings(files[1:])
	return files, nil
}

// Regions reads every marked region of the _test.go files under root
// (skipping .git and nested modules' vendor directories).
func Regions(root string) (map[string]Region, error) {
	regions := map[string]Region{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == ".git" || name == "vendor" || name == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		found, err := fileRegions(path, filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		for _, r := range found {
			if prev, ok := regions[r.Name]; ok {
				return fmt.Errorf("doccheck: region %q marked twice: %s:%d and %s:%d", r.Name, prev.File, prev.Line, r.File, r.Line)
			}
			regions[r.Name] = r
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("doccheck: read regions: %w", err)
	}
	return regions, nil
}

func fileRegions(path, rel string) ([]Region, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !bytes.Contains(b, []byte("// snippet:")) {
		return nil, nil
	}
	type open struct {
		name  string
		line  int
		lines []string
	}
	var stack []*open
	var out []Region
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if m := startMarker.FindStringSubmatch(line); m != nil {
			stack = append(stack, &open{name: m[1], line: n})
			continue
		}
		if m := endMarker.FindStringSubmatch(line); m != nil {
			if len(stack) == 0 || stack[len(stack)-1].name != m[1] {
				return nil, fmt.Errorf("%s:%d: snippet:end %s without a matching snippet:start", rel, n, m[1])
			}
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			out = append(out, Region{Name: top.name, File: rel, Line: top.line, Text: dedent(top.lines)})
			continue
		}
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "// snippet:start") || strings.HasPrefix(t, "// snippet:end") {
			return nil, fmt.Errorf("%s:%d: malformed snippet marker %q", rel, n, strings.TrimSpace(line))
		}
		for _, o := range stack {
			o.lines = append(o.lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	if len(stack) > 0 {
		return nil, fmt.Errorf("%s:%d: snippet:start %s is never ended", rel, stack[0].line, stack[0].name)
	}
	return out, nil
}

// dedent removes the indentation common to the non-blank lines, blanks
// whitespace-only lines and drops blank lines at either end.
func dedent(lines []string) string {
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	prefix := ""
	first := true
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		ind := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if first {
			prefix, first = ind, false
			continue
		}
		for !strings.HasPrefix(ind, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	var sb strings.Builder
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			sb.WriteString(strings.TrimPrefix(l, prefix))
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

// Blocks returns the ```go blocks of a markdown text.
func Blocks(file, text string) ([]Block, error) {
	var blocks []Block
	lines := strings.SplitAfter(text, "\n")
	offset := 0
	inFence := false
	fence := ""
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimRight(line, "\r\n")
		if inFence {
			if strings.TrimSpace(trimmed) == fence {
				inFence = false
			}
			offset += len(line)
			continue
		}
		if !strings.HasPrefix(trimmed, "```") {
			if t := strings.TrimLeft(trimmed, " \t"); strings.HasPrefix(t, "```") {
				if f := strings.Fields(strings.TrimLeft(t, "`")); len(f) > 0 && f[0] == "go" {
					return nil, fmt.Errorf("%s:%d: an indented ```go block: snippets must start at the margin", file, i+1)
				}
			}
			offset += len(line)
			continue
		}
		fence = strings.TrimRight(trimmed[:len(trimmed)-len(strings.TrimLeft(trimmed, "`"))], " ")
		info := strings.TrimSpace(strings.TrimLeft(trimmed, "`"))
		offset += len(line)
		if f := strings.Fields(info); len(f) == 0 || f[0] != "go" {
			inFence = true
			continue
		}
		b := Block{File: file, Line: i + 1, start: offset}
		if i > 0 {
			if m := blockMarker.FindStringSubmatch(strings.TrimRight(lines[i-1], "\r\n")); m != nil {
				b.Name = m[1]
			}
		}
		j := i + 1
		for ; j < len(lines); j++ {
			if strings.TrimSpace(strings.TrimRight(lines[j], "\r\n")) == fence {
				break
			}
			b.Text += lines[j]
			offset += len(lines[j])
		}
		if j == len(lines) {
			return nil, fmt.Errorf("%s:%d: ```go block never closed", file, i+1)
		}
		b.end = offset
		offset += len(lines[j])
		blocks = append(blocks, b)
		i = j
	}
	return blocks, nil
}

// Check compares every ```go block of README.md and docs/*.md under root
// with its region and returns one error per block that has no marker, names
// an unknown region or differs from it (nil when all match).
func Check(root string) error {
	return walkBlocks(root, func(file string, text []byte, blocks []Block, regions map[string]Region) ([]byte, []error) {
		var errs []error
		for _, b := range blocks {
			if err := blockProblem(b, regions); err != nil {
				errs = append(errs, err)
				continue
			}
			if r := regions[b.Name]; b.Text != r.Text {
				errs = append(errs, fmt.Errorf("%s:%d: snippet %q differs from its region at %s:%d (run go generate ./internal/doccheck):\n%s",
					b.File, b.Line, b.Name, r.File, r.Line, lineDiff(r.Text, b.Text)))
			}
		}
		return nil, errs
	})
}

// Rewrite replaces every marked ```go block of README.md and docs/*.md under
// root with its region and returns the files it changed. A block without a
// marker or naming an unknown region is an error, and nothing is written.
func Rewrite(root string) (changed []string, err error) {
	type edit struct {
		file string
		text []byte
	}
	var edits []edit
	err = walkBlocks(root, func(file string, text []byte, blocks []Block, regions map[string]Region) ([]byte, []error) {
		var errs []error
		var out bytes.Buffer
		last := 0
		for _, b := range blocks {
			if err := blockProblem(b, regions); err != nil {
				errs = append(errs, err)
				continue
			}
			out.Write(text[last:b.start])
			out.WriteString(regions[b.Name].Text)
			last = b.end
		}
		out.Write(text[last:])
		if len(errs) == 0 && !bytes.Equal(out.Bytes(), text) {
			edits = append(edits, edit{file, out.Bytes()})
		}
		return nil, errs
	})
	if err != nil {
		return nil, err
	}
	for _, e := range edits {
		if err := os.WriteFile(filepath.Join(root, e.file), e.text, 0o644); err != nil {
			return changed, fmt.Errorf("doccheck: write %s: %w", e.file, err)
		}
		changed = append(changed, e.file)
	}
	return changed, nil
}

func blockProblem(b Block, regions map[string]Region) error {
	if b.Name == "" {
		return fmt.Errorf("%s:%d: ```go block without a <!-- snippet: name --> line before it: every Go snippet must be a region of a compiled Example", b.File, b.Line)
	}
	if _, ok := regions[b.Name]; !ok {
		return fmt.Errorf("%s:%d: snippet %q names no region (// snippet:start %s in a _test.go file)", b.File, b.Line, b.Name, b.Name)
	}
	return nil
}

func walkBlocks(root string, fn func(file string, text []byte, blocks []Block, regions map[string]Region) ([]byte, []error)) error {
	regions, err := Regions(root)
	if err != nil {
		return err
	}
	files, err := MarkdownFiles(root)
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range files {
		text, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return fmt.Errorf("doccheck: %w", err)
		}
		blocks, err := Blocks(f, string(text))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_, fileErrs := fn(f, text, blocks, regions)
		errs = append(errs, fileErrs...)
	}
	return errors.Join(errs...)
}

// lineDiff shows the first differing line of want (the region) and got
// (the markdown block).
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl || i >= len(w) || i >= len(g) {
			return fmt.Sprintf("  line %d: region   %q\n  line %d: markdown %q", i+1, wl, i+1, gl)
		}
	}
	return "  (no line differs)"
}
