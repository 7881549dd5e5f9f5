//go:build !linux

package pgbouncertest

import "syscall"

func setParentDeathSignal(*syscall.SysProcAttr) {}
