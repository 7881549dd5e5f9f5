package statetest

import "syscall"

// setParentDeathSignal makes the kernel send the server SIGQUIT (immediate
// shutdown) when this process dies, so a killed test run leaves no server.
func setParentDeathSignal(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGQUIT }
