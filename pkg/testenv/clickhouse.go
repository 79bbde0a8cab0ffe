package testenv

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The server configuration, also used by tools/testenv/up.sh: one template
// for both ways of starting a test server.
//
//go:embed clickhouse/config.xml clickhouse/users.xml
var clickhouseConfig embed.FS

const installHint = "clickhouse-server is not on PATH: install it " +
	"(apt-get install -y clickhouse-server clickhouse-client), run the tests with `make test`, " +
	"or point " + EnvClickHouseAddr + " at a running server"

// shared is the clickhouse-server started for this test binary, if any.
var shared struct {
	once sync.Once
	srv  *chServer
	err  error
}

// ClickHouse returns the native-protocol address of a ClickHouse server:
// SLUICE_TEST_CLICKHOUSE_ADDR when set, else a clickhouse-server started once
// for the whole test binary (stopped by Main). It fails the test when neither
// is possible; it never skips.
func ClickHouse(t testing.TB) string {
	t.Helper()
	if v := os.Getenv(EnvClickHouseAddr); v != "" {
		return v
	}
	shared.once.Do(func() {
		shared.srv, shared.err = startClickHouse()
	})
	if shared.err != nil {
		t.Fatalf("testenv: %v", shared.err)
	}
	return shared.srv.addr
}

// ClickHouseDatabase creates a database of its own for this test and drops
// it when the test ends.
func ClickHouseDatabase(t testing.TB) (addr, db string) {
	t.Helper()
	addr = ClickHouse(t)
	db = "t_" + sanitize(t.Name(), '_', false) + "_" + randomHex()
	conn, err := OpenClickHouse(addr, "default")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		// t.Context() is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Errorf("testenv: drop database %s: %v", db, err)
		}
		if err := conn.Close(); err != nil {
			t.Errorf("testenv: close clickhouse connection: %v", err)
		}
	})
	if err := conn.Exec(t.Context(), "CREATE DATABASE "+db); err != nil {
		t.Fatalf("testenv: create database %s: %v", db, err)
	}
	return addr, db
}

// OpenClickHouse opens a native-protocol connection as the default user.
func OpenClickHouse(addr, db string) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{addr},
		Protocol:    clickhouse.Native,
		Auth:        clickhouse.Auth{Database: db, Username: "default"},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", addr, err)
	}
	return conn, nil
}

// WaitClickHouse returns once the server at addr answers a query; it
// retries until ctx ends.
func WaitClickHouse(ctx context.Context, addr string) error {
	conn, err := OpenClickHouse(addr, "default")
	if err != nil {
		return err
	}
	defer conn.Close()
	return retry(ctx, func(ctx context.Context) error {
		var v string
		if err := conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
			return fmt.Errorf("clickhouse %s: %w", addr, err)
		}
		return nil
	})
}

// WriteClickHouseConfig writes config.xml and users.xml for a server that
// keeps everything under dir and listens on 127.0.0.1 only.
func WriteClickHouseConfig(dir string, tcpPort, httpPort int) error {
	r := strings.NewReplacer("@DIR@", dir, "@TCP_PORT@", strconv.Itoa(tcpPort), "@HTTP_PORT@", strconv.Itoa(httpPort))
	for _, name := range []string{"config.xml", "users.xml"} {
		b, err := clickhouseConfig.ReadFile("clickhouse/" + name)
		if err != nil {
			return fmt.Errorf("read embedded %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(r.Replace(string(b))), 0o644); err != nil {
			return fmt.Errorf("write clickhouse %s: %w", name, err)
		}
	}
	return nil
}

// chServer is a clickhouse-server child process.
type chServer struct {
	addr    string
	dir     string
	cmd     *exec.Cmd
	exited  chan struct{} // closed after waitErr is set
	waitErr error
}

func startClickHouse() (*chServer, error) {
	bin, err := exec.LookPath("clickhouse-server")
	if err != nil {
		return nil, errors.New(installHint)
	}
	// A free port found by listening can be taken before the server binds
	// it; a few attempts make that race harmless.
	const attempts = 3
	for i := 1; ; i++ {
		srv, err := startClickHouseOnce(bin)
		if err == nil || i == attempts {
			return srv, err
		}
	}
}

func startClickHouseOnce(bin string) (*chServer, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sluice-clickhouse-")
	if err != nil {
		return nil, fmt.Errorf("clickhouse dir: %w", err)
	}
	srv, err := launch(bin, dir, ports[0], ports[1])
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return srv, nil
}

func launch(bin, dir string, tcpPort, httpPort int) (*chServer, error) {
	if err := WriteClickHouseConfig(dir, tcpPort, httpPort); err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		return nil, fmt.Errorf("clickhouse log: %w", err)
	}
	defer out.Close() // the child keeps its own descriptor

	cmd := exec.Command(bin, "--config-file="+filepath.Join(dir, "config.xml"))
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = dieWithParent()

	alive, exit := context.WithCancel(context.Background())
	srv := &chServer{
		addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(tcpPort)),
		dir:    dir,
		cmd:    cmd,
		exited: make(chan struct{}),
	}
	started := make(chan error, 1)
	go func() {
		defer close(srv.exited)
		defer exit()
		// The parent-death signal (Linux) fires when the starting thread
		// exits, not the process: hold this thread until the server is gone.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			srv.waitErr = err
			started <- fmt.Errorf("start clickhouse-server: %w", err)
			return
		}
		started <- nil
		srv.waitErr = cmd.Wait()
	}()
	if err := <-started; err != nil {
		<-srv.exited
		return nil, err
	}

	ctx, cancel := context.WithTimeout(alive, time.Minute)
	defer cancel()
	if err := WaitClickHouse(ctx, srv.addr); err != nil {
		srv.stop()
		return nil, fmt.Errorf("clickhouse-server in %s did not answer (exit: %v): %w\n%s",
			dir, srv.waitErr, err, srv.logTail())
	}
	return srv, nil
}

// stop ends the server, gracefully first, and waits until it has exited.
func (s *chServer) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

func (s *chServer) logTail() string {
	var b strings.Builder
	for _, name := range []string{"stdout.log", "log/error.log"} {
		data, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		fmt.Fprintf(&b, "--- %s\n%s\n", name, strings.Join(lines[max(0, len(lines)-20):], "\n"))
	}
	return b.String()
}

// close stops the server and removes its files.
func (s *chServer) close() error {
	s.stop()
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("remove clickhouse dir: %w", err)
	}
	return nil
}

// stopClickHouse stops the shared server, if one was started.
func stopClickHouse() {
	if shared.srv == nil {
		return
	}
	if err := shared.srv.close(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
	}
}

// freePorts returns n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close() // held until all are chosen, so they are distinct
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
