package doccheck

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
)

// mdLink matches an inline link or image target: [text](target) or
// [text](target "title").
var mdLink = regexp.MustCompile(`\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)

// CheckLinks checks every relative link of README.md and docs/*.md under
// root: the file (or directory) it names exists, and its #anchor, if any, is
// a heading of the target markdown file (GitHub's anchors). Links in code
// blocks and code spans are not links and are skipped. It returns one error
// per broken link, nil when all resolve.
func CheckLinks(root string) error {
	files, err := MarkdownFiles(root)
	if err != nil {
		return err
	}
	anchors := map[string]map[string]bool{} // file (slash, relative to root) -> anchors
	anchorsOf := func(rel string) (map[string]bool, error) {
		if a, ok := anchors[rel]; ok {
			return a, nil
		}
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			return nil, err
		}
		a := Anchors(string(b))
		anchors[rel] = a
		return a, nil
	}
	var errs []error
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return fmt.Errorf("doccheck: %w", err)
		}
		for _, l := range Links(string(b)) {
			target := l.Target
			if isExternal(target) {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			rel := f
			if path != "" {
				rel = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(f), filepath.FromSlash(path))))
				if rel == ".." || strings.HasPrefix(rel, "../") {
					errs = append(errs, fmt.Errorf("%s:%d: link %q leaves the repository", f, l.Line, target))
					continue
				}
				info, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel)))
				if err != nil {
					errs = append(errs, fmt.Errorf("%s:%d: link %q: %s does not exist", f, l.Line, target, rel))
					continue
				}
				if info.IsDir() {
					if anchor != "" {
						errs = append(errs, fmt.Errorf("%s:%d: link %q: an anchor on a directory", f, l.Line, target))
					}
					continue
				}
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(rel, ".md") {
				errs = append(errs, fmt.Errorf("%s:%d: link %q: anchors are checked only in markdown files", f, l.Line, target))
				continue
			}
			a, err := anchorsOf(rel)
			if err != nil {
				return fmt.Errorf("doccheck: %w", err)
			}
			if !a[strings.ToLower(anchor)] {
				errs = append(errs, fmt.Errorf("%s:%d: link %q: %s has no heading with anchor #%s", f, l.Line, target, rel, anchor))
			}
		}
	}
	return errors.Join(errs...)
}

func isExternal(target string) bool {
	if i := strings.Index(target, ":"); i > 0 {
		scheme := target[:i]
		if !strings.ContainsAny(scheme, "/#.") {
			return true // http:, https:, mailto:, ...
		}
	}
	return strings.HasPrefix(target, "//")
}

// Link is a link target found in markdown prose.
type Link struct {
	// Target is what the link points at, as written.
	Target string
	// Line is the 1-based line it is on.
	Line int
}

// Links returns the inline link targets of a markdown text outside fenced
// code blocks and code spans.
func Links(text string) []Link {
	var out []Link
	fence := ""
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if trimmed == fence {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			for _, c := range trimmed[3:] {
				if c != rune(fence[0]) {
					break
				}
				fence += string(c)
			}
			continue
		}
		for _, m := range mdLink.FindAllStringSubmatch(stripCodeSpans(line), -1) {
			out = append(out, Link{Target: m[1], Line: i + 1})
		}
	}
	return out
}

// stripCodeSpans blanks `code spans` of a line.
func stripCodeSpans(line string) string {
	var sb strings.Builder
	for {
		i := strings.IndexByte(line, '`')
		if i < 0 {
			sb.WriteString(line)
			return sb.String()
		}
		n := len(line[i:]) - len(strings.TrimLeft(line[i:], "`"))
		closing := strings.Index(line[i+n:], strings.Repeat("`", n))
		if closing < 0 {
			sb.WriteString(line)
			return sb.String()
		}
		sb.WriteString(line[:i])
		line = line[i+n+closing+n:]
	}
}

// Anchors returns the anchors GitHub gives the headings of a markdown text:
// lower case, punctuation dropped, spaces as hyphens, and -1, -2, ... on
// repeats.
func Anchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	fence := ""
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "" {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			continue
		}
		if !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimLeft(line, "#")
		if len(title) == len(line) || (title != "" && title[0] != ' ' && title[0] != '\t') {
			continue
		}
		slug := Slug(strings.TrimSpace(strings.TrimRight(strings.TrimSpace(title), "#")))
		if n := seen[slug]; n > 0 {
			out[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

// Slug is GitHub's anchor for a heading title.
func Slug(title string) string {
	var sb strings.Builder
	for _, r := range strings.ToLower(title) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-':
			sb.WriteRune(r)
		case r == ' ':
			sb.WriteByte('-')
		}
	}
	return sb.String()
}
