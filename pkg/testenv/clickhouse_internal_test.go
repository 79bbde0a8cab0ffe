package testenv

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// TestStartClickHouse covers the server that ClickHouse starts when no
// SLUICE_TEST_CLICKHOUSE_ADDR is given, even when the variable is set for
// this run: it answers queries, and stopping it leaves no process or file.
func TestStartClickHouse(t *testing.T) {
	if _, err := exec.LookPath("clickhouse-server"); err != nil {
		t.Fatal(installHint)
	}
	srv, err := startClickHouse()
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitClickHouse(t.Context(), srv.addr); err != nil {
		t.Fatal(err)
	}
	if err := srv.close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(srv.cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("clickhouse-server (pid %d) still there after close: %v", srv.cmd.Process.Pid, err)
	}
	if _, err := os.Stat(srv.dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("server directory %s left behind: %v", srv.dir, err)
	}
}
