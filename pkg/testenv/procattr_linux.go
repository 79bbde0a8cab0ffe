package testenv

import "syscall"

// dieWithParent makes the kernel kill the child when the test binary dies
// without calling Main, so no server outlives its tests.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
