//go:build !linux

package hapg

import "syscall"

func setParentDeathSignal(*syscall.SysProcAttr) {}
