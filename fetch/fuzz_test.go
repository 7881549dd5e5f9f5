package fetch

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// FuzzParseTarget: URI parsing and scheme dispatch never panic, and never
// put a URI's password into an error or the cache key.
func FuzzParseTarget(f *testing.F) {
	for _, seed := range []string{
		"file:///etc/drydock/site.yaml", "file:relative", "file://host/x", "http://u:p@h/x",
		"https://h:8443/a?b=c#sha256=00", "deckhand+https://u:pw@deckhand:9000/api/v1.0/revisions/1/rendered-documents",
		"promenade+http://h/", "ftp://x", "", "http://[::1", "http://h:99999", "HTTP://H/X", "file://localhost/tmp/x",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		tgt, err := parseTarget(uri)
		password := ""
		if u, perr := url.Parse(uri); perr == nil && u.User != nil {
			password, _ = u.User.Password()
			// A password that also appears elsewhere in the URI (host, path,
			// scheme) may legitimately show up there: nothing to check.
			if strings.Contains(strings.Replace(uri, u.User.String(), "", 1), password) {
				password = ""
			}
		}
		if err != nil {
			if len(password) >= 4 && strings.Contains(err.Error(), password) {
				// The same URI with another password of the same length: if
				// its error holds the password too, the password is only a
				// piece of the error's fixed text (e.g. "ckha" in the
				// scheme list's "deckhand"), not a leak.
				u, _ := url.Parse(uri)
				other := strings.Replace(uri, u.User.String(), url.UserPassword(u.User.Username(), strings.Repeat("~", len(password))).String(), 1)
				if _, err2 := parseTarget(other); other == uri || err2 == nil || !strings.Contains(err2.Error(), password) {
					t.Fatalf("error %q leaks the password", err)
				}
			}
			return
		}
		if _, ok := handlers[tgt.scheme]; !ok {
			t.Fatalf("dispatched to unknown scheme %q", tgt.scheme)
		}
		if tgt.u.User != nil || (len(password) >= 4 && strings.Contains(tgt.key, password)) {
			t.Fatalf("cache key %q keeps credentials", tgt.key)
		}
	})
}

// FuzzFileRoot: a random tree of files, directories, symbolic links
// (relative and absolute, inside and out) and named pipes under a root,
// rearranged by the same script over and over while file:// fetches run
// against it. No fetch may ever return a byte from outside the root (every
// file outside holds a marker that no file inside does), block, or panic.
//
// The script: bytes in threes (op, a, b): mkdir, write a file (atomically),
// symlink, remove, rename, mkfifo, park and restore, pause. The script's own
// changes go through an os.Root, so they never create or alter anything
// outside.
func FuzzFileRoot(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 3, 0, 2, 1, 2})
	f.Add([]byte{2, 0, 2, 5, 0, 0, 2, 0, 6})                            // a -> ../outside swapped with nothing
	f.Add([]byte{0, 0, 0, 1, 3, 0, 4, 0, 0, 2, 0, 6, 4, 0, 0, 0, 0, 0}) // dir a swapped for a link out
	f.Add([]byte{2, 1, 9, 2, 2, 11, 6, 0, 0, 3, 3, 1})
	f.Add([]byte{})
	// a is a directory, parked as c while a link to ../outside/a stands in.
	f.Add([]byte{0, 0, 0, 1, 3, 0, 4, 0, 2, 2, 0, 18, 7, 0, 20, 3, 0, 0, 4, 2, 0, 7, 0, 20})
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) > 3*32 {
			script = script[:3*32]
		}
		base := t.TempDir()
		rootDir := filepath.Join(base, "root")
		outside := filepath.Join(base, "outside")
		const marker = "OUTSIDE-THE-ROOT"
		for _, d := range []string{rootDir, filepath.Join(outside, "d"), filepath.Join(outside, "b"), filepath.Join(outside, "a")} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range []string{filepath.Join(base, "secret"), filepath.Join(outside, "secret"), filepath.Join(outside, "d", "secret"),
			filepath.Join(outside, "a", "a"), filepath.Join(outside, "a", "b"), filepath.Join(outside, "b", "c"), filepath.Join(outside, "c")} {
			if err := os.WriteFile(p, []byte(marker+" "+p), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		names := []string{"a", "b", "c", "a/a", "a/b", "b/c", "a/b/c", "d", "secret", "d/secret"}
		targets := []string{"a", "b", "c", "a/b", ".", "..", "../outside", "../outside/secret", "../secret", "../../", "a/../../outside",
			outside, filepath.Join(outside, "secret"), filepath.Join(rootDir, "a"), "/", "../root/a", "b/c/../../..", "d/secret", "../outside/a"}

		root, err := os.OpenRoot(rootDir)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		apply := func(op, a, b byte) {
			name := names[int(a)%len(names)]
			switch op % 8 {
			case 0:
				root.Mkdir(name, 0o700)
			case 1: // whole or not at all: a reader never sees a partial file
				if root.WriteFile(name+".new", []byte("inside:"+name), 0o600) == nil {
					root.Rename(name+".new", name)
				}
			case 2:
				root.Symlink(targets[int(b)%len(targets)], name)
			case 3:
				root.Remove(name)
			case 4:
				root.Rename(name, names[int(b)%len(names)])
			case 5:
				// A named pipe, at the top only: its parent is the root itself.
				if !strings.Contains(name, "/") {
					syscall.Mkfifo(filepath.Join(rootDir, name), 0o600)
				}
			case 6:
				root.Rename(name, name+".parked")
				root.Rename(name+".parked", name)
			case 7: // let the fetches run against the tree as it stands
				runtime.Gosched()
				time.Sleep(time.Duration(b%64) * time.Microsecond)
			}
		}
		for i := 0; i+2 < len(script); i += 3 {
			apply(script[i], script[i+1], script[i+2])
		}

		r, err := New(Options{Roots: []string{rootDir}, CacheTTL: -1, MaxBytes: 1 << 10})
		if err != nil {
			t.Fatal(err)
		}
		// The harness itself works: a file inside reads back.
		if err := os.WriteFile(filepath.Join(base, "root", "probe"), []byte("inside:probe"), 0o600); err != nil {
			t.Fatal(err)
		}
		if res, err := r.Fetch(context.Background(), (&url.URL{Scheme: "file", Path: filepath.Join(rootDir, "probe")}).String()); err != nil || string(res.Data) != "inside:probe" {
			t.Fatalf("a plain file inside the root: %v", err)
		}
		stop := make(chan struct{})
		swapped := make(chan struct{})
		go func() { // rearrange the tree until the fetches are over
			defer close(swapped)
			for {
				for i := 0; i+2 < len(script); i += 3 {
					select {
					case <-stop:
						return
					default:
					}
					apply(script[i], script[i+1], script[i+2])
				}
				select {
				case <-stop:
					return
				default:
					runtime.Gosched()
				}
			}
		}()
		defer func() { close(stop); <-swapped }()
		// Fetch what the script touches, and beneath it (where a swapped
		// directory or link leads), many times over.
		seen := map[string]bool{}
		var paths []string
		for i := 0; i+2 < len(script); i += 3 {
			for _, p := range []string{names[int(script[i+1])%len(names)], names[int(script[i+2])%len(names)]} {
				for _, q := range []string{p, p + "/a", p + "/secret"} {
					if !seen[q] {
						seen[q] = true
						paths = append(paths, q)
					}
				}
			}
		}
		if len(paths) == 0 {
			paths = names
		}
		for round := 0; round < max(2, 200/len(paths)); round++ {
			for _, name := range paths {
				var res *Result
				var err error
				done := make(chan struct{})
				go func() {
					defer close(done)
					res, err = r.Fetch(context.Background(), (&url.URL{Scheme: "file", Path: filepath.Join(rootDir, name)}).String())
				}()
				select {
				case <-done:
				case <-time.After(time.Minute): // only ever reached when a fetch blocks
					t.Fatalf("fetching %s blocked", name)
				}
				if err == nil && (bytes.Contains(res.Data, []byte(marker)) || !bytes.HasPrefix(res.Data, []byte("inside:"))) {
					t.Fatalf("fetching %s read %q: not a file inside the root", name, res.Data)
				}
			}
		}
	})
}
