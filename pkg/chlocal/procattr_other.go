//go:build !linux

package chlocal

import "syscall"

// dieWithParent has no portable equivalent outside Linux: there only Stop
// stops the server.
func dieWithParent() *syscall.SysProcAttr { return nil }
