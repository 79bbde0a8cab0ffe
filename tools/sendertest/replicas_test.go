package sendertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
	"github.com/sluice-sms/sluice/tools/smscsim"
)

// replica is a sluice-sender process.
type replica struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
}

// buildSender compiles sluice-sender for the test.
func buildSender(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sluice-sender")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/sluice-sms/sluice/services/sender/cmd/sluice-sender").CombinedOutput()
	if err != nil {
		t.Fatalf("go build sluice-sender: %v\n%s", err, out)
	}
	return bin
}

// writeConfig writes the harness's config as sluice.yaml for a process.
func (h *harness) writeConfig() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kafka:\n  brokers: [%s]\n  topic_prefix: %q\n  create_topics: false\n", strings.Join(h.brokers, ", "), h.cfg.Kafka.TopicPrefix)
	b.WriteString("sender:\n  admin_addr: \"127.0.0.1:0\"\ncarriers:\n")
	for _, c := range h.cfg.Carriers {
		fmt.Fprintf(&b, "  - {id: %s, host: %s, port: %d, system_id: %s, password: %s, binds: %d, tps: %d, window: %d}\n",
			c.ID, c.Host, c.Port, c.SystemID, c.Password, c.Binds, c.TPS, c.Window)
	}
	path := filepath.Join(h.t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		h.t.Fatal(err)
	}
	return path
}

func startReplica(t *testing.T, bin, cfg, name string) *replica {
	t.Helper()
	r := &replica{name: name, log: filepath.Join(t.TempDir(), name+".log"), done: make(chan struct{})}
	f, err := os.Create(r.log)
	if err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(bin, "-config", cfg)
	r.cmd.Stderr = f
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = r.cmd.Wait() // killed or stopped: the exit status says nothing the test checks
		f.Close()
		close(r.done)
	}()
	t.Cleanup(func() {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(20 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(r.log)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("%s log (tail):\n%s", name, b)
		}
	})
	return r
}

// Three sender processes share a carrier that allows 4 binds and 1,000 parts
// per second; one is killed with SIGKILL mid-run and another started. The
// carrier never sees more than 4 binds or more than 1,000 parts (+5% for
// clock edges) in any second, and every message is submitted.
func TestBindSlotsAcrossReplicas(t *testing.T) {
	const (
		n     = 10000
		binds = 4
		tps   = 1000
	)
	bin := buildSender(t)
	// The simulator throttles above tps like the carrier, but does not refuse
	// extra binds: it counts them, so that an overlap would show.
	sim := simCarrier("sim-a", 0, tps)
	h := newHarness(t, []smscsim.CarrierConfig{sim}, []config.Carrier{carrier(binds, tps, 50)})
	subs := submits(h)
	cfg := h.writeConfig()
	h.send(messages(n, "sim-a", sluicepb.Priority_PRIORITY_TRANSACTIONAL)...)

	replicas := []*replica{
		startReplica(t, bin, cfg, "r1"), startReplica(t, bin, cfg, "r2"), startReplica(t, bin, cfg, "r3"),
	}
	h.waitSim("sim-a", "a quarter sent", func(st smscsim.CarrierStats) bool { return st.Submits >= n/4 })
	// Kill the replica holding the most binds' worth of work: any will do,
	// since every one of them holds at least one slot of 4 among 3.
	if err := replicas[0].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-replicas[0].done
	replicas = append(replicas, startReplica(t, bin, cfg, "r4"))

	subs.wait(h, "every message submitted", func(r []*sluicepb.SubmitResult) bool { return len(byMessage(r)) == n })
	st := h.sim.Stats()["sim-a"]
	t.Logf("carrier: peak binds %d, peak parts/s %d, binds %d (refused %d), submits %d, duplicates %d, throttled %d",
		st.PeakBinds, st.PeakTPS, st.Binds, st.BindFailures, st.Submits, st.DuplicateSubmits, st.Throttled)
	if st.PeakBinds > binds || st.BindFailures != 0 {
		t.Errorf("carrier saw %d binds at once (%d refused), limit %d", st.PeakBinds, st.BindFailures, binds)
	}
	if limit := tps * 105 / 100; st.PeakTPS > int64(limit) {
		t.Errorf("carrier saw %d parts in one second, limit %d (+5%%)", st.PeakTPS, tps)
	}
	if st.UniqueSubmits != n {
		t.Errorf("carrier accepted %d distinct messages, want %d", st.UniqueSubmits, n)
	}
	// What a killed replica had in flight, answered but not yet recorded, or
	// recorded but not yet committed (commits go every 200 ms) is replayed,
	// and so is what a rebalance interrupts: per slot at most its window
	// (50), the sender's publish stage (128) and what a commit interval covers.
	if most := int64(binds*(50+128) + tps/5); st.DuplicateSubmits > most {
		t.Errorf("%d duplicates after a kill, want at most %d", st.DuplicateSubmits, most)
	}
}
