// Package freeport finds loopback ports for the servers that tests start
// where the port must be in a config before anything listens on it. Another
// process may take the port in between; on a test machine that is rare.
package freeport

import (
	"net"
	"testing"
)

// Addr returns a loopback address nobody listens on right now.
func Addr(t testing.TB) string {
	t.Helper()
	return free(t).String()
}

// Port returns a loopback port nobody listens on right now.
func Port(t testing.TB) int {
	t.Helper()
	return free(t).Port
}

func free(t testing.TB) *net.TCPAddr {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr)
}
