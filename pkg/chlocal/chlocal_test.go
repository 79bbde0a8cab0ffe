package chlocal

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sluice-sms/sluice/pkg/testenv/freeport"
)

func start(t *testing.T, opt Options) *Server {
	t.Helper()
	s, err := Start(t.Context(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func count(t *testing.T, addr, query string) uint64 {
	t.Helper()
	conn, err := Open(addr, "default")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n uint64
	if err := conn.QueryRow(t.Context(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestStartStop: the server answers on the native port (and HTTP), Stop
// leaves no process and no open port, and removes the directory only when
// Start made it.
func TestStartStop(t *testing.T) {
	if _, err := exec.LookPath("clickhouse-server"); err != nil {
		t.Fatal(ErrNotInstalled)
	}
	tcpPort, httpPort := freeport.Port(t), freeport.Port(t)
	ownDir := filepath.Join(t.TempDir(), "not", "yet")
	tests := []struct {
		name     string
		opt      Options
		wantAddr string // "" for any
		keepDir  bool
	}{
		{"temporary dir and free ports", Options{}, "", false},
		{"own dir and ports", Options{Dir: ownDir, TCPPort: tcpPort, HTTPPort: httpPort},
			"127.0.0.1:" + strconv.Itoa(tcpPort), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, tt.opt)
			if tt.wantAddr != "" && s.Addr() != tt.wantAddr {
				t.Errorf("Addr() = %s, want %s", s.Addr(), tt.wantAddr)
			}
			if n := count(t, s.Addr(), "SELECT count() FROM system.one"); n != 1 {
				t.Errorf("count() from system.one = %d", n)
			}
			if tt.opt.HTTPPort != 0 {
				resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(tt.opt.HTTPPort) + "/ping")
				if err != nil {
					t.Fatalf("http ping: %v", err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(body) != "Ok.\n" {
					t.Errorf("http ping = %q, want %q", body, "Ok.\n")
				}
			}

			s.Stop()
			s.Stop() // a second call is harmless
			if err := syscall.Kill(s.cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("clickhouse-server (pid %d) still there after Stop: %v", s.cmd.Process.Pid, err)
			}
			if c, err := net.Dial("tcp", s.Addr()); err == nil {
				c.Close()
				t.Errorf("%s still accepts connections after Stop", s.Addr())
			}
			_, err := os.Stat(filepath.Join(s.dir, "config.xml"))
			if tt.keepDir && err != nil {
				t.Errorf("own directory not kept: %v", err)
			}
			if !tt.keepDir && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("temporary directory %s left behind: %v", s.dir, err)
			}
		})
	}
}

func TestDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := start(t, Options{Dir: dir})
	conn, err := Open(s.Addr(), "default")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Exec(t.Context(), "CREATE TABLE default.kept (id UInt32) ENGINE = MergeTree ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	// Through a batch: 18.16 waits for data blocks after an INSERT sent by Exec.
	batch, err := conn.PrepareBatch(t.Context(), "INSERT INTO default.kept (id) VALUES")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []uint32{1, 2} {
		if err := batch.Append(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("insert: %v", err)
	}
	s.Stop()

	s = start(t, Options{Dir: dir})
	if n := count(t, s.Addr(), "SELECT count() FROM default.kept"); n != 2 {
		t.Fatalf("after a restart the table has %d rows, want 2", n)
	}
}

func TestStartFails(t *testing.T) {
	// A port held by someone else: a ClickHouse server there would even
	// answer the readiness check, so Start must refuse before launching.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name    string
		path    string // PATH; "" keeps it
		opt     Options
		wantErr func(error) bool
	}{
		{"not installed", t.TempDir(), Options{},
			func(err error) bool { return errors.Is(err, ErrNotInstalled) }},
		{"native port taken", "", Options{TCPPort: takenPort},
			func(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }},
		{"http port taken", "", Options{HTTPPort: takenPort},
			func(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.path != "" {
				t.Setenv("PATH", tt.path)
			}
			dir := filepath.Join(t.TempDir(), "data")
			tt.opt.Dir = dir
			s, err := Start(t.Context(), tt.opt)
			if err == nil {
				s.Stop()
				t.Fatal("Start succeeded")
			}
			if !tt.wantErr(err) {
				t.Fatalf("Start: unexpected error %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "config.xml")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed start launched a server (config written: %v)", err)
			}
		})
	}
}

// fakeAptGet puts an apt-get on PATH that appends its arguments and
// DEBIAN_FRONTEND to a log and fails the calls listed in failing (1-based).
func fakeAptGet(t *testing.T, failing ...int) (callLog string) {
	t.Helper()
	dir := t.TempDir()
	callLog = filepath.Join(dir, "calls")
	var fail strings.Builder
	for _, n := range failing {
		fail.WriteString(" " + strconv.Itoa(n))
	}
	script := `#!/bin/sh
echo "$DEBIAN_FRONTEND $*" >>` + callLog + `
n=$(wc -l <` + callLog + `)
echo "apt output $n"
for f in` + fail.String() + `; do [ "$n" -eq "$f" ] && exit 100; done
exit 0
`
	if err := os.WriteFile(filepath.Join(dir, "apt-get"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return callLog
}

func TestInstall(t *testing.T) {
	const (
		install = "noninteractive install -y -q clickhouse-server clickhouse-client"
		update  = "noninteractive update -q"
	)
	tests := []struct {
		name      string
		failing   []int
		wantCalls []string
		wantErr   bool
	}{
		{"installs at once", nil, []string{install}, false},
		{"updates the lists when the install fails", []int{1}, []string{install, update, install}, false},
		{"update fails", []int{1, 2}, []string{install, update}, true},
		{"install fails after update", []int{1, 3}, []string{install, update, install}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := fakeAptGet(t, tt.failing...)
			var out bytes.Buffer
			err := Install(context.Background(), &out)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Install: err = %v, want error: %v", err, tt.wantErr)
			}
			data, err := os.ReadFile(calls)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Split(strings.TrimSpace(string(data)), "\n"); strings.Join(got, "|") != strings.Join(tt.wantCalls, "|") {
				t.Errorf("apt-get calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.wantCalls, "\n"))
			}
			if want := len(tt.wantCalls); strings.Count(out.String(), "apt output") != want {
				t.Errorf("log has %q, want the output of %d calls", out.String(), want)
			}
		})
	}
}
