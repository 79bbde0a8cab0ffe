package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/chlocal"
	"github.com/sluice-sms/sluice/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// full is set by `make chaos` (SLUICE_CHAOS=full): bigger campaigns and a
// baseline run without faults. `make test` runs the short form.
var full = os.Getenv("SLUICE_CHAOS") == "full"

var built struct {
	once sync.Once
	dir  string
	err  error
}

// binaries builds the four services once per test binary.
func binaries(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		// A cache, not t.TempDir(): the binaries serve every test of the
		// run, and the next run's go build only relinks what changed.
		cache, err := os.UserCacheDir()
		if err != nil {
			built.err = err
			return
		}
		built.dir = filepath.Join(cache, "sluice", "chaos-bin")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		built.err = Build(ctx, built.dir)
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.dir
}

// startStack runs the four services as processes against the test's Kafka
// topics and ClickHouse database; their logs are shown if the test fails.
func startStack(t testing.TB) *Stack {
	t.Helper()
	return startStackWith(t, Options{})
}

// stackDir is where a test's stack keeps its config, logs and state: under
// SLUICE_CHAOS_DIR when set, so that they outlive the test for a post-mortem.
func stackDir(t testing.TB) string {
	root := os.Getenv("SLUICE_CHAOS_DIR")
	if root == "" {
		return t.TempDir()
	}
	dir := filepath.Join(root, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Logf("stack config, logs and state in %s", dir)
	return dir
}

// startStackWith starts the stack with opt's brokers and ClickHouse (the
// shared test servers when not set) and its carrier settings.
func startStackWith(t testing.TB, opt Options) *Stack {
	t.Helper()
	if len(opt.Brokers) == 0 {
		opt.Brokers, opt.ReplicationFactor = testenv.Kafka(t), testenv.ReplicationFactor()
	}
	if opt.ClickHouseAddr == "" {
		opt.ClickHouseAddr, opt.ClickHouseDB = testenv.ClickHouseDatabase(t)
	}
	opt.BinDir, opt.Dir, opt.TopicPrefix = binaries(t), stackDir(t), testenv.TopicPrefix(t)
	opt.Log = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("stack: %v", err)
		}
		if t.Failed() {
			for _, name := range Services {
				logTail(t, s.LogPath(name))
			}
		}
	})
	return s
}

func logTail(t testing.TB, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("%s: %v", path, err)
		return
	}
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	t.Logf("%s (tail):\n%s", path, b)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestKill9EachService kills each service in turn with SIGKILL while a
// campaign is flowing, restarts it a second later, and checks that every
// message still ends in exactly one final status and one ClickHouse row and
// that the carriers saw at most the in-flight window twice.
func TestKill9EachService(t *testing.T) {
	n, rate, timeout := 1200, 400.0, time.Minute
	faults := KillFaults(time.Second)
	if full {
		n, rate, timeout = envInt("SLUICE_CHAOS_N", 10000), float64(envInt("SLUICE_CHAOS_RATE", 2000)), 5*time.Minute
		faults = append([]Fault{{}}, faults...)
	}
	s := startStack(t)
	var results []Result
	for i, f := range faults {
		name := strings.ReplaceAll(f.Name, " ", "_")
		if name == "" {
			name = "none"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			c := Campaign(fmt.Sprintf("chaos-%d", i), n, uint64(i+1))
			res, err := s.Run(ctx, f, c, rate, nil)
			results = append(results, res)
			checkResult(t, res)
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	logResults(t, fmt.Sprintf("fault suite (%d messages per fault at %.0f msg/s; window %d)", n, rate, s.Window()), results)
}

// logResults logs the table of results under title.
func logResults(t *testing.T, title string, results []Result) {
	t.Helper()
	var b strings.Builder
	if err := PrintResults(&b, results); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s:\n%s", title, b.String())
}

func checkResult(t *testing.T, r Result) {
	t.Helper()
	if len(r.Crashes) > 0 {
		t.Errorf("services exited on their own (and were restarted): %q", r.Crashes)
	}
	if r.Report.Missing != 0 {
		t.Errorf("%d of %d messages without a final status on sms.status, e.g. %q", r.Report.Missing, r.Messages, r.Missing)
	}
	if r.Report.Conflicts != 0 {
		t.Errorf("%d messages with two different final statuses, e.g. %q", r.Report.Conflicts, r.Conflicting)
	}
	if r.Rows != r.Messages || r.DistinctRows != r.Messages {
		t.Errorf("messages table: %d rows, %d distinct ids; want %d of each", r.Rows, r.DistinctRows, r.Messages)
	}
	if r.Mismatched != 0 {
		t.Errorf("%d ClickHouse rows disagree with the final status on sms.status", r.Mismatched)
	}
	if r.Duplicated > r.Window {
		t.Errorf("carriers received %d submits twice, more than the in-flight window %d", r.Duplicated, r.Window)
	}
}

// TestClickHouseAway stops a ClickHouse server of the test's own mid-stream
// and starts it again on the same port and data: sms.status must not wait
// for it, and every message must still get its one row once it is back.
func TestClickHouseAway(t *testing.T) {
	n, rate, down, timeout := 1200, 400.0, 5*time.Second, 2*time.Minute
	if full {
		n, rate, down, timeout = envInt("SLUICE_CHAOS_N", 10000), float64(envInt("SLUICE_CHAOS_RATE", 2000)), time.Minute, 5*time.Minute
	}
	ports, err := freePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	opt := chlocal.Options{Dir: t.TempDir(), TCPPort: ports[0], HTTPPort: ports[1]}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var mu sync.Mutex
	srv, err := chlocal.Start(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		srv.Stop()
	})
	conn, err := chlocal.Open(srv.Addr(), "default")
	if err != nil {
		t.Fatal(err)
	}
	err = conn.Exec(ctx, "CREATE DATABASE sluice")
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	s := startStackWith(t, Options{ClickHouseAddr: srv.Addr(), ClickHouseDB: "sluice"})
	f := Fault{
		Name: fmt.Sprintf("clickhouse away %s", down), Down: down,
		Stop: func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			srv.Stop()
			return nil
		},
		Start: func(ctx context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			next, err := chlocal.Start(ctx, opt)
			if err == nil {
				srv = next
			}
			return err
		},
	}
	c := Campaign("chaos-clickhouse", n, 7)
	res, err := s.Run(ctx, f, c, rate, nil)
	checkResult(t, res)
	if err != nil {
		t.Fatal(err)
	}
	logResults(t, "ClickHouse away", []Result{res})
}
