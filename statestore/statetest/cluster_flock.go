//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package statetest

import (
	"os"
	"syscall"
)

// lockOwner takes an exclusive lock on f without waiting; it fails when
// another open file holds one, in this process or another. The kernel
// releases it when the process dies.
func lockOwner(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// ownerGone reports whether nobody holds the owner lock on f (it takes it).
func ownerGone(f *os.File) bool { return lockOwner(f) == nil }
