package chlocal

import "syscall"

// dieWithParent makes the kernel kill the server when the process that
// started it dies without calling Stop, so no server outlives its owner.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
