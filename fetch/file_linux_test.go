package fetch

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A named pipe or a device is refused before it is opened at all: opening a
// device may have effects of its own (a tape rewinds, a terminal becomes
// the controlling one). inotify reports every open of the watched file;
// none may happen. Without roots (os.Stat) and with them (os.Root.Stat).
func TestNonRegularRefusedWithoutOpening(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// A private /dev/null (1, 3): inotify on the shared one would see every
	// other process's opens.
	dev := filepath.Join(dir, "null")
	devErr := syscall.Mknod(dev, syscall.S_IFCHR|0o600, 1<<8|3)
	for _, tc := range []struct {
		name  string
		path  string
		roots []string
	}{
		{"fifo, no roots", fifo, nil},
		{"fifo beneath a root", fifo, []string{dir}},
		{"device, no roots", dev, nil},
		{"device beneath a root", dev, []string{dir}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.path == dev && devErr != nil {
				t.Skipf("mknod (needs CAP_MKNOD): %v", devErr)
			}
			in, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
			if err != nil {
				t.Skipf("inotify: %v", err)
			}
			defer syscall.Close(in)
			if _, err := syscall.InotifyAddWatch(in, tc.path, syscall.IN_OPEN); err != nil {
				t.Skipf("inotify watch %s: %v", tc.path, err)
			}
			r := newResolver(t, Options{Roots: tc.roots, CacheTTL: -1})
			_, err = r.Fetch(context.Background(), "file://"+tc.path)
			if !errors.Is(err, ErrInvalidURI) || !strings.Contains(err.Error(), "not a regular file") {
				t.Fatalf("%s: %v, want ErrInvalidURI (not a regular file)", tc.path, err)
			}
			buf := make([]byte, 4096)
			n, err := syscall.Read(in, buf)
			if err == nil && n > 0 {
				t.Fatalf("%s was opened before it was refused", tc.path)
			}
			if err != nil && !errors.Is(err, syscall.EAGAIN) {
				t.Fatalf("read inotify: %v", err)
			}
		})
	}
}
