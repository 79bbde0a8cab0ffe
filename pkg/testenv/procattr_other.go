//go:build !linux

package testenv

import "syscall"

// dieWithParent has no portable equivalent outside Linux: there only Main
// stops the server.
func dieWithParent() *syscall.SysProcAttr { return nil }
