package router

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// The router process is killed (SIGKILL) in the middle of a scheduled
// backlog and started again, with the schedule's store it had (restored
// from its checkpoint) and with an empty one (restored from the schedule
// topic): every message is routed, none before its send_at. A kill can
// repeat the batch in hand; the test reports copies.
func TestScheduleSurvivesKill(t *testing.T) {
	for _, disk := range []string{"same disk", "empty disk"} {
		t.Run(disk, func(t *testing.T) { scheduleSurvivesKill(t, disk == "same disk") })
	}
}

func scheduleSurvivesKill(t *testing.T, sameDisk bool) {
	const n = 2000
	h := newHarness(t, nil)
	bin := buildRouter(t)
	cfgPath, stateDir := filepath.Join(t.TempDir(), "sluice.yaml"), ""
	if sameDisk {
		stateDir = t.TempDir()
	}
	writeConfig(t, h, cfgPath, stateDir)
	bulkLane := h.outbound("a", schemas.LaneBulk)
	w := h.watch(bulkLane)

	start := time.Now().Add(3 * time.Second)
	sendAt := map[string]time.Time{}
	var msgs []*sluicepb.Message
	for i := range n {
		m := msg(fmt.Sprintf("k-%d", i), []string{"acme", "beta"}[i%2], sluicepb.Priority_PRIORITY_TRANSACTIONAL)
		m.SendAtMs = start.Add(time.Duration(i) * 6 * time.Second / n).UnixMilli()
		sendAt[m.Id] = time.UnixMilli(m.SendAtMs)
		msgs = append(msgs, m)
	}
	h.accept(msgs...)

	run := func() *exec.Cmd {
		cmd := exec.Command(bin, "-config", cfgPath)
		cmd.Stderr = testWriter{t}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	first := run()
	// Mid-release, so that the store has checkpoints with entries both
	// held and released.
	until(t, "a quarter of the backlog released", func() bool { return len(w.of(bulkLane)) > n/4 })
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	killedAt := len(w.of(bulkLane))
	second := run()
	t.Cleanup(func() { _ = second.Process.Kill(); _ = second.Wait() })
	until(t, "the whole backlog", func() bool { return len(ids(t, w.of(bulkLane))) == n })

	copies := 0
	for _, c := range ids(t, w.of(bulkLane)) {
		copies += c - 1
	}
	for _, r := range w.of(bulkLane) {
		if at := sendAt[string(r.Key)]; r.Time.Before(at) {
			t.Errorf("%s routed at %v, before its send_at %v", r.Key, r.Time, at)
		}
	}
	t.Logf("killed after %d of %d released; %d copies after the kill", killedAt, n, copies)
}

func writeConfig(t testing.TB, h *harness, path, stateDir string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "kafka:\n  brokers: [%s]\n  topic_prefix: %q\n  batch_timeout: 2ms\n  create_topics: false\n", strings.Join(h.cfg.Kafka.Brokers, ", "), h.cfg.Kafka.TopicPrefix)
	fmt.Fprintf(&b, "router:\n  admin_addr: \"\"\n  state_dir: %q\n", stateDir)
	b.WriteString("tenants:\n")
	for _, t := range h.cfg.Tenants {
		fmt.Fprintf(&b, "  - {id: %s}\n", t.ID)
	}
	b.WriteString("carriers:\n")
	for _, c := range h.cfg.Carriers {
		fmt.Fprintf(&b, "  - {id: %s, host: 127.0.0.1, port: 2775, system_id: x, binds: %d, tps: 100, window: 10}\n", c.ID, c.Binds)
	}
	b.WriteString("routes:\n  - {prefix: '+44', carriers: [{id: a, weight: 1}]}\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// buildRouter builds the router's binary for tests that run it as a process.
func buildRouter(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "sluice-router")
	build := exec.Command("go", "build", "-o", bin, "./cmd/sluice-router")
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}
