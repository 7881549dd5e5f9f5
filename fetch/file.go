package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// checkFileURL accepts only file:///absolute/path (or file://localhost/...).
func checkFileURL(u *url.URL, hasUser bool) error {
	switch {
	case hasUser:
		return fmt.Errorf("%w: file URI must not carry user info", ErrInvalidURI)
	case u.Opaque != "":
		return fmt.Errorf("%w: file URI must hold an absolute path (file:///path), not a relative one", ErrInvalidURI)
	case u.Host != "" && u.Host != "localhost":
		return fmt.Errorf("%w: file URI must not name a host; use file:///absolute/path", ErrInvalidURI)
	case u.Path == "" || !filepath.IsAbs(u.Path):
		return fmt.Errorf("%w: file URI must hold an absolute path", ErrInvalidURI)
	case u.RawQuery != "":
		return fmt.Errorf("%w: file URI must not have a query", ErrInvalidURI)
	}
	u.Host = ""
	return nil
}

// cleanRoots resolves the allowed roots once (absolute, symlinks resolved).
func cleanRoots(roots []string) ([]string, error) {
	out := make([]string, 0, len(roots))
	for i, r := range roots {
		if !filepath.IsAbs(r) {
			return nil, fmt.Errorf("fetch: Roots[%d] must be an absolute path", i)
		}
		real, err := filepath.EvalSymlinks(r)
		if err != nil {
			return nil, fmt.Errorf("fetch: Roots[%d]: %w", i, err)
		}
		out = append(out, filepath.Clean(real))
	}
	return out, nil
}

// fetchFile reads a local file, refusing paths outside the allowed roots
// (after resolving symlinks) and files over the size limit while reading.
func fetchFile(_ context.Context, r *Resolver, t *target, _ *Result, _ string) (*Result, string, error) {
	path := filepath.Clean(t.u.Path)
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("%w: %s", ErrNotFound, path)
		}
		return nil, "", fmt.Errorf("fetch: resolve %s: %w", path, err)
	}
	if len(r.opts.Roots) > 0 && !within(real, r.opts.Roots) {
		return nil, "", fmt.Errorf("%w: %s is outside the allowed roots", ErrInvalidURI, path)
	}
	f, err := os.Open(real)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("%w: %s", ErrNotFound, path)
		}
		return nil, "", fmt.Errorf("fetch: open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, "", fmt.Errorf("fetch: stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, "", fmt.Errorf("%w: %s is not a regular file", ErrInvalidURI, path)
	}
	data, err := readLimited(f, r.opts.MaxBytes)
	if err != nil {
		return nil, "", fmt.Errorf("fetch: read %s: %w", path, err)
	}
	ct := mime.TypeByExtension(filepath.Ext(path))
	if ct == "" {
		ct = http.DetectContentType(data)
	}
	return finish(data, (&url.URL{Scheme: "file", Path: path}).String(), ct), "", nil
}

func within(path string, roots []string) bool {
	for _, root := range roots {
		if path == root || strings.HasPrefix(path, root+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// readLimited reads at most max bytes, failing as soon as there are more:
// the limit is enforced while reading, never after buffering everything.
func readLimited(rd io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(rd, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	return data, nil
}
