package hapg

import "syscall"

// setParentDeathSignal makes the kernel send SIGQUIT (immediate shutdown)
// to a server or tool when this process dies, so a killed test run leaves
// no server behind.
func setParentDeathSignal(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGQUIT }
