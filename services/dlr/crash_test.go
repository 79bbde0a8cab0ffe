package dlr_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/chlocal"
	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
	"github.com/sluice-sms/sluice/pkg/telemetry"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
	"github.com/sluice-sms/sluice/services/dlr"
)

// childConfigEnv makes the test binary run the dlr service instead of the
// tests, with the config file it names: the crash test's subprocess.
const childConfigEnv = "SLUICE_TEST_DLR_CHILD_CONFIG"

// runChild is the subprocess's main.
func runChild(path string) int {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := dlr.Run(ctx, cfg, telemetry.NewLogger(os.Stderr, -4, "sluice-dlr")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// workload is n messages (one in four of two segments) with their submit
// results and receipts in a shuffled order, so receipts often come first,
// with one in ten records sent twice; want is each message's final status.
func workload(f *feed, n int, seed uint64) (recs []kafka.Message, want map[string]string) {
	rng := rand.New(rand.NewPCG(seed, 1))
	stats := []struct{ stat, status string }{{"DELIVRD", message.StatusDelivered}, {"DELIVRD", message.StatusDelivered}, {"DELIVRD", message.StatusDelivered}, {"UNDELIV", message.StatusUndelivered}, {"EXPIRED", message.StatusExpired}}
	want = map[string]string{}
	now := time.Now().UnixMilli()
	for i := range n {
		segs := uint32(1)
		if i%4 == 0 {
			segs = 2
		}
		m := msg(fmt.Sprintf("w%d-%06d", seed, i), "sim-a", segs)
		outcome := stats[rng.IntN(len(stats))]
		for seg := range segs {
			id := fmt.Sprintf("%x-%d-%d", seed, i, seg)
			stat := "DELIVRD" // the other segments: the first decides
			if seg == 0 {
				stat = outcome.stat
			}
			recs = append(recs,
				f.submit(&sluicepb.SubmitResult{Message: m, Segment: seg, SmscMessageId: id, SubmittedAtMs: now - 5000}),
				f.dlr(&sluicepb.RawDLR{Carrier: "sim-a", SmscMessageId: id, Stat: stat, Err: "000", ReceivedAtMs: now - 1000}))
		}
		want[m.Id] = outcome.status
	}
	rng.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
	for i := 0; i < len(recs); i += 10 {
		recs = append(recs, recs[i])
	}
	return recs, want
}

// checkFinals checks sms.status holds exactly one final status event per
// message (replayed copies share its event id) and that it is the right one.
func checkFinals(t *testing.T, cfg config.Config, want map[string]string) {
	t.Helper()
	got := statuses(t.Context(), t, cfg)
	wrong := 0
	for id, status := range want {
		events := map[string]string{}
		for _, st := range got[id] {
			events[st.EventID] = st.Status
		}
		if len(events) != 1 || events[message.EventID(id, status)] != status {
			if wrong++; wrong < 5 {
				t.Errorf("%s: events %v, want one %s", id, events, status)
			}
		}
	}
	if wrong > 0 || len(got) != len(want) {
		t.Fatalf("%d of %d messages wrong; statuses for %d messages", wrong, len(want), len(got))
	}
}

// checkClickHouse checks the analyst's view: each message once, with its
// final status, and the counts per status.
func checkClickHouse(t *testing.T, addr, db string, want map[string]string) {
	t.Helper()
	conn, err := chlocal.Open(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	wantCounts := map[string]uint64{}
	for _, s := range want {
		wantCounts[s]++
	}
	eventually(t, "ClickHouse has every message", func() (bool, error) {
		var n uint64
		err := conn.QueryRow(t.Context(), "SELECT count() FROM messages FINAL").Scan(&n)
		return n == uint64(len(want)), err
	})
	rows, err := conn.Query(t.Context(), "SELECT status, count() FROM messages FINAL GROUP BY status")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]uint64{}
	for rows.Next() {
		var s string
		var n uint64
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		got[s] = n
	}
	if fmt.Sprint(got) != fmt.Sprint(wantCounts) {
		t.Errorf("ClickHouse messages per status %v, want %v", got, wantCounts)
	}
	var events uint64
	if err := conn.QueryRow(t.Context(), "SELECT count() FROM message_events FINAL").Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events != uint64(len(want)) {
		t.Errorf("message_events FINAL has %d rows, want %d (one final event per message)", events, len(want))
	}
}

// TestKillCorrelator kills the dlr service (a subprocess) with SIGKILL twice
// mid-stream: once keeping its state directory (restart from the store's
// checkpoint), once losing it (restore from the changelogs). Every message
// still ends in exactly one final status, in Kafka and in ClickHouse.
func TestKillCorrelator(t *testing.T) {
	cfg := testConfig(t)
	f := newFeed(t, cfg)
	recs, want := workload(f, 3000, 1)

	stateDir := t.TempDir()
	cfgPath := filepath.Join(t.TempDir(), "sluice.yaml")
	yaml := fmt.Sprintf(`kafka:
  brokers: [%q]
  topic_prefix: %q
  batch_timeout: 2ms
clickhouse:
  addr: %q
  database: %q
  batch_size: 500
  flush_interval: 100ms
dlr:
  admin_addr: "127.0.0.1:0"
  state_dir: %q
  sweep_interval: 100ms
`, cfg.Kafka.Brokers[0], cfg.Kafka.TopicPrefix, cfg.ClickHouse.Addr, cfg.ClickHouse.Database, stateDir)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), childConfigEnv+"="+cfgPath)
		if testing.Verbose() {
			cmd.Stderr = os.Stderr
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil { // still running: the test stopped early or this is the last one
				_ = cmd.Process.Signal(syscall.SIGTERM)
				_ = cmd.Wait()
			}
		})
		return cmd
	}
	kill := func(cmd *exec.Cmd) {
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait() // "signal: killed"
	}
	progress := func(n int) {
		eventually(t, fmt.Sprintf("%d status events", n), func() (bool, error) {
			return len(readAll(t.Context(), t, cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix+"sms.status")) >= n, nil
		})
	}

	third := len(recs) / 3
	cmd := start()
	f.send(recs[:third]...)
	progress(200)
	kill(cmd)

	cmd = start()
	f.send(recs[third : 2*third]...)
	progress(len(want) / 3)
	kill(cmd)
	if err := os.RemoveAll(stateDir); err != nil {
		t.Fatal(err)
	}

	start()
	f.send(recs[2*third:]...)
	waitDrained(t, cfg)
	checkFinals(t, cfg, want)
	checkClickHouse(t, cfg.ClickHouse.Addr, cfg.ClickHouse.Database, want)
}

// TestClickHouseAway stops ClickHouse (a server of the test's own) while
// statuses keep coming, restarts the service meanwhile, then starts
// ClickHouse again: the writer catches up and every message is there once.
func TestClickHouseAway(t *testing.T) {
	cfg := testConfig(t)
	chDir := t.TempDir()
	srv, err := chlocal.Start(t.Context(), chlocal.Options{Dir: chDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	cfg.ClickHouse.Addr, cfg.ClickHouse.Database = srv.Addr(), "sluice"
	conn, err := chlocal.Open(srv.Addr(), "default")
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(t.Context(), "CREATE DATABASE sluice"); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()

	f := newFeed(t, cfg)
	recs, want := workload(f, 2000, 2)
	stop := runDLR(t, cfg)
	half := len(recs) / 2
	f.send(recs[:half]...)
	eventually(t, "first rows in ClickHouse", func() (bool, error) {
		c, err := chlocal.Open(srv.Addr(), "sluice")
		if err != nil {
			return false, err
		}
		defer c.Close()
		var n uint64
		// Not there yet until the service has migrated the database.
		return c.QueryRow(t.Context(), "SELECT count() FROM messages").Scan(&n) == nil && n > 0, nil
	})

	srv.Stop()
	// The service restarts while ClickHouse is down: correlation goes on.
	stop()
	runDLR(t, cfg)
	f.send(recs[half:]...)
	waitDrained(t, cfg) // every status is out while ClickHouse is down

	_, port, err := net.SplitHostPort(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	tcpPort, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	srv2, err := chlocal.Start(t.Context(), chlocal.Options{Dir: chDir, TCPPort: tcpPort})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv2.Stop)
	checkFinals(t, cfg, want)
	checkClickHouse(t, srv2.Addr(), "sluice", want)
}

// TestRebalance runs two instances of the service: the second joins
// mid-stream (partitions move to it, with their state from the changelogs),
// then the first leaves. Every message still ends once.
func TestRebalance(t *testing.T) {
	cfg := testConfig(t)
	f := newFeed(t, cfg)
	recs, want := workload(f, 3000, 3)
	third := len(recs) / 3
	progress := func(n int) {
		eventually(t, fmt.Sprintf("%d status events", n), func() (bool, error) {
			return len(readAll(t.Context(), t, cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix+"sms.status")) >= n, nil
		})
	}

	stopA := runDLR(t, cfg)
	f.send(recs[:third]...)
	progress(200)

	cfgB := cfg
	cfgB.DLR.StateDir = t.TempDir()
	runDLR(t, cfgB)
	f.send(recs[third : 2*third]...)
	progress(len(want) / 3)

	stopA()
	f.send(recs[2*third:]...)
	waitDrained(t, cfg)
	checkFinals(t, cfg, want)
	checkClickHouse(t, cfg.ClickHouse.Addr, cfg.ClickHouse.Database, want)
}
