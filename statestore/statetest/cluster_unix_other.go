//go:build unix && !linux

package statetest

import "syscall"

// setParentDeathSignal is a no-op where the kernel has no parent-death signal;
// Main (or Shutdown) stops the server.
func setParentDeathSignal(*syscall.SysProcAttr) {}
