package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// fileRoot is one allowed root: its path as configured (cleaned) and as it
// resolved, for matching URIs, and the directory itself, opened once by
// New: every fetch opens beneath this descriptor, never the path again.
type fileRoot struct {
	given, real string
	root        *os.Root
}

// openRoots resolves and opens the allowed roots once (absolute, symlinks
// resolved). On an error nothing stays open.
func openRoots(roots []string) (out []fileRoot, err error) {
	defer func() {
		if err != nil {
			for _, r := range out {
				r.root.Close()
			}
			out = nil
		}
	}()
	for i, r := range roots {
		if !filepath.IsAbs(r) {
			return out, fmt.Errorf("fetch: Roots[%d] must be an absolute path", i)
		}
		real, err := filepath.EvalSymlinks(r)
		if err != nil {
			return out, fmt.Errorf("fetch: Roots[%d]: %w", i, err)
		}
		fi, err := os.Stat(real)
		if err != nil {
			return out, fmt.Errorf("fetch: Roots[%d]: %w", i, err)
		}
		if !fi.IsDir() {
			return out, fmt.Errorf("fetch: Roots[%d] is not a directory", i)
		}
		root, err := os.OpenRoot(real)
		if err != nil {
			return out, fmt.Errorf("fetch: Roots[%d]: %w", i, err)
		}
		out = append(out, fileRoot{given: filepath.Clean(r), real: filepath.Clean(real), root: root})
	}
	return out, nil
}

// openFlags open without blocking (a FIFO with no writer would block a
// plain open forever) and without leaking the descriptor to children.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK | syscall.O_CLOEXEC

// fetchFile reads a local file. With roots, the path must lie beneath one
// and is opened beneath it through os.Root: every component is resolved
// relative to the root's descriptor and no symbolic link may leave it, so
// there is no gap between a check and the open for a swapped link to use.
// Anything but a regular file is refused before it is opened (a stat
// beneath the root: opening a device may have effects of its own) and again
// after the (non-blocking) open, on the opened descriptor, for one swapped
// in between; the context bounds the read.
func fetchFile(ctx context.Context, r *Resolver, t *target, _ *Result, _ string) (*Result, string, error) {
	path := filepath.Clean(t.u.Path)
	if err := ctx.Err(); err != nil {
		return nil, "", fmt.Errorf("fetch %s: %w", path, err)
	}
	f, err := r.openFile(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, "", fmt.Errorf("fetch: stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, "", notRegular(path, fi.Mode())
	}
	data, err := readLimited(&ctxReader{ctx: ctx, r: f}, r.opts.MaxBytes)
	if err != nil {
		return nil, "", fmt.Errorf("fetch: read %s: %w", path, err)
	}
	ct := mime.TypeByExtension(filepath.Ext(path))
	if ct == "" {
		ct = http.DetectContentType(data)
	}
	return finish(data, (&url.URL{Scheme: "file", Path: path}).String(), ct), "", nil
}

// openFile opens path, beneath a root when there are roots.
func (r *Resolver) openFile(path string) (*os.File, error) {
	if len(r.roots) == 0 {
		if fi, err := os.Stat(path); err != nil {
			return nil, fileError(path, err)
		} else if !fi.Mode().IsRegular() {
			return nil, notRegular(path, fi.Mode())
		}
		f, err := os.OpenFile(path, openFlags, 0)
		if err != nil {
			return nil, fileError(path, err)
		}
		return f, nil
	}
	var first error
	for _, root := range r.roots {
		rel, ok := beneath(path, root.given)
		if !ok && root.real != root.given {
			rel, ok = beneath(path, root.real)
		}
		if !ok {
			continue
		}
		fi, err := root.root.Stat(rel)
		if err == nil && !fi.Mode().IsRegular() {
			return nil, notRegular(path, fi.Mode())
		}
		var f *os.File
		if err == nil {
			f, err = root.root.OpenFile(rel, openFlags, 0)
		}
		if err == nil {
			return f, nil
		}
		if first == nil {
			first = fileError(path, err)
		}
	}
	if first == nil {
		return nil, fmt.Errorf("%w: %s", ErrOutsideRoots, path)
	}
	return nil, first
}

// beneath returns path relative to root when path is root or lies under it
// (both clean and absolute).
func beneath(path, root string) (string, bool) {
	if path == root {
		return ".", true
	}
	prefix := root
	if !strings.HasSuffix(prefix, string(filepath.Separator)) {
		prefix += string(filepath.Separator)
	}
	if rest, ok := strings.CutPrefix(path, prefix); ok {
		return rest, true
	}
	return "", false
}

// errPathEscapes is the text of os.Root's (unexported) error for a path or
// link that leaves the root; TestFileSymlinkEscapes pins it.
const errPathEscapes = "path escapes from parent"

// fileError classifies an open error: not found, outside the roots, other.
func fileError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %s", ErrNotFound, path)
	case escapes(err):
		return fmt.Errorf("%w: %s (a symbolic link leads out)", ErrOutsideRoots, path)
	case errors.Is(err, os.ErrClosed): // Close ran during the fetch
		return fmt.Errorf("fetch %s: %w", path, ErrClosed)
	}
	return fmt.Errorf("fetch: open %s: %w", path, err)
}

func escapes(err error) bool {
	for err != nil {
		if err.Error() == errPathEscapes {
			return true
		}
		err = errors.Unwrap(err)
	}
	return false
}

// notRegular refuses anything but a regular file.
func notRegular(path string, m fs.FileMode) error {
	return fmt.Errorf("%w: %s is not a regular file (%s)", ErrInvalidURI, path, fileKind(m))
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return m.Type().String()
}

// ctxReader fails with the context's error once it is done, checked before
// every read.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

// Read implements io.Reader.
func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// readLimited reads at most max bytes, failing as soon as there are more:
// the limit is enforced while reading, never after buffering everything.
func readLimited(rd io.Reader, max int64) ([]byte, error) {
	limit := max
	if limit < math.MaxInt64 {
		limit++ // one byte more than allowed tells "too large"
	}
	data, err := io.ReadAll(io.LimitReader(rd, limit))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	return data, nil
}
