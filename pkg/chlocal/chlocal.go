// Package chlocal runs a local clickhouse-server, listening on 127.0.0.1
// only, for the tests and the demo. It owns the one server configuration
// (also written for tools/testenv/up.sh), the readiness check, and a stop
// that leaves no process behind; on Linux the kernel also kills the server
// when its owner dies without stopping it.
package chlocal

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

//go:embed config/config.xml config/users.xml
var configFS embed.FS

// ErrNotInstalled is returned by Start when clickhouse-server is not on PATH.
var ErrNotInstalled = errors.New("clickhouse-server is not on PATH: install it " +
	"(apt-get install -y clickhouse-server clickhouse-client)")

const (
	startTimeout = time.Minute      // first start of 18.16 takes a few seconds
	stopGrace    = 30 * time.Second // then SIGKILL
)

// Options configure Start.
type Options struct {
	// Dir holds the configuration, data and logs. It is created if missing
	// and kept by Stop, so data survives restarts. "" means a temporary
	// directory that Stop removes.
	Dir string
	// TCPPort (native protocol) and HTTPPort; 0 picks a free port.
	TCPPort, HTTPPort int
}

// Server is a clickhouse-server child process.
type Server struct {
	addr     string
	dir      string
	tempDir  bool
	cmd      *exec.Cmd
	exited   chan struct{} // closed after waitErr is set
	waitErr  error
	stopOnce sync.Once
}

// Start starts clickhouse-server and returns once it answers queries.
// Cancelling ctx aborts the start; once Start has returned, only Stop ends
// the server.
func Start(ctx context.Context, opt Options) (*Server, error) {
	bin, err := exec.LookPath("clickhouse-server")
	if err != nil {
		return nil, ErrNotInstalled
	}
	// A free port found by listening can be taken before the server binds
	// it; a few attempts make that race harmless. Ports the caller chose are
	// tried once.
	attempts := 1
	if opt.TCPPort == 0 || opt.HTTPPort == 0 {
		attempts = 3
	}
	for i := 1; ; i++ {
		s, err := startOnce(ctx, bin, opt)
		if err == nil || i == attempts || ctx.Err() != nil {
			return s, err
		}
	}
}

func startOnce(ctx context.Context, bin string, opt Options) (*Server, error) {
	tcpPort, httpPort := opt.TCPPort, opt.HTTPPort
	if err := reservePorts(&tcpPort, &httpPort); err != nil {
		return nil, err
	}
	dir, temp := opt.Dir, opt.Dir == ""
	var err error
	if temp {
		dir, err = os.MkdirTemp("", "sluice-clickhouse-")
	} else {
		// The configuration holds absolute paths.
		if dir, err = filepath.Abs(dir); err == nil {
			err = os.MkdirAll(dir, 0o755)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("clickhouse dir: %w", err)
	}
	s, err := launch(ctx, bin, dir, tcpPort, httpPort)
	if err != nil {
		if temp {
			_ = os.RemoveAll(dir)
		}
		return nil, err
	}
	s.tempDir = temp
	return s, nil
}

func launch(ctx context.Context, bin, dir string, tcpPort, httpPort int) (*Server, error) {
	if err := WriteConfig(dir, tcpPort, httpPort); err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		return nil, fmt.Errorf("clickhouse log: %w", err)
	}
	defer out.Close() // the child keeps its own descriptor

	// Not CommandContext: ctx bounds the start only, not the server's life.
	cmd := exec.Command(bin, "--config-file="+filepath.Join(dir, "config.xml"))
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = dieWithParent()

	s := &Server{
		addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(tcpPort)),
		dir:    dir,
		cmd:    cmd,
		exited: make(chan struct{}),
	}
	wctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	started := make(chan error, 1)
	go func() {
		defer close(s.exited)
		defer cancel() // a server that exits stops the wait at once
		// The parent-death signal (Linux) fires when the starting thread
		// exits, not the process: hold this thread until the server is gone.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			s.waitErr = err
			started <- fmt.Errorf("start clickhouse-server: %w", err)
			return
		}
		started <- nil
		s.waitErr = cmd.Wait()
	}()
	if err := <-started; err != nil {
		<-s.exited
		return nil, err
	}

	if err := Wait(wctx, s.addr); err != nil {
		s.terminate()
		return nil, fmt.Errorf("clickhouse-server in %s did not answer on %s (exit: %v): %w\n%s",
			dir, s.addr, s.waitErr, err, s.logTail())
	}
	return s, nil
}

// Addr returns the native protocol address, host:port.
func (s *Server) Addr() string { return s.addr }

// Stop ends the server, gracefully first, waits until it has exited and
// removes its directory if Start created a temporary one. It is safe to call
// more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.terminate()
		if !s.tempDir {
			return
		}
		if err := os.RemoveAll(s.dir); err != nil {
			// Stop has no caller to hand this to; a leftover temp dir is harmless.
			slog.Warn("chlocal: remove clickhouse dir", "dir", s.dir, "err", err)
		}
	})
}

// terminate sends SIGTERM, then SIGKILL after stopGrace, and waits until
// the server has exited.
func (s *Server) terminate() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(stopGrace):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// logTail returns the end of the server's logs, to explain a failed start.
func (s *Server) logTail() string {
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

// WriteConfig writes config.xml and users.xml for a server that keeps
// everything under dir (an absolute path, created if missing) and listens on
// 127.0.0.1 only, with user "default" and no password.
func WriteConfig(dir string, tcpPort, httpPort int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("clickhouse config dir: %w", err)
	}
	r := strings.NewReplacer("@DIR@", dir, "@TCP_PORT@", strconv.Itoa(tcpPort), "@HTTP_PORT@", strconv.Itoa(httpPort))
	for _, name := range []string{"config.xml", "users.xml"} {
		b, err := configFS.ReadFile("config/" + name)
		if err != nil {
			return fmt.Errorf("read embedded %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(r.Replace(string(b))), 0o644); err != nil {
			return fmt.Errorf("write clickhouse %s: %w", name, err)
		}
	}
	return nil
}

// Open opens a native-protocol connection to database db as user "default".
func Open(addr, db string) (driver.Conn, error) {
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

// Wait returns once the server at addr answers a query; it retries every
// 250 ms until ctx ends.
func Wait(ctx context.Context, addr string) error {
	conn, err := Open(addr, "default")
	if err != nil {
		return err
	}
	defer conn.Close()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		var v string
		err := conn.QueryRow(ctx, "SELECT version()").Scan(&v)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("clickhouse %s: %w (last error: %w)", addr, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// reservePorts replaces each zero port by a distinct free loopback port and
// checks that the others are free: another server answering on a port would
// pass the readiness check in place of ours.
func reservePorts(ports ...*int) error {
	for _, p := range ports {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*p)))
		if err != nil {
			return fmt.Errorf("clickhouse port: %w", err)
		}
		defer l.Close() // held until all are chosen, so they are distinct
		*p = l.Addr().(*net.TCPAddr).Port
	}
	return nil
}

// Install installs Debian's clickhouse-server and clickhouse-client with
// apt-get, writing apt's output to log (nil discards it). When the install
// fails it refreshes the package lists and tries once more.
func Install(ctx context.Context, log io.Writer) error {
	if log == nil {
		log = io.Discard
	}
	install := []string{"install", "-y", "-q", "clickhouse-server", "clickhouse-client"}
	if aptGet(ctx, log, install...) == nil {
		return nil
	}
	// Its output is in log already; a stale package list is the usual cause.
	if err := aptGet(ctx, log, "update", "-q"); err != nil {
		return err
	}
	return aptGet(ctx, log, install...)
}

func aptGet(ctx context.Context, log io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("apt-get %s: %w", strings.Join(args, " "), err)
	}
	return nil
}
