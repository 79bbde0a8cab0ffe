package sendertest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/testenv/kannel"
	"github.com/sluice-sms/sluice/tools/smscsim"
)

// BenchmarkKannelBearerbox is the reference figure for BenchmarkSenderSubmits:
// Kannel's bearerbox (Debian package kannel) on the same simulator and
// machine, max-pending-submits equal to the window, store-file on, fed by
// mtbatch with b.N messages asking for a receipt. Reports submits/s from the
// moment mtbatch starts until the simulator has accepted them all.
func BenchmarkKannelBearerbox(b *testing.B) {
	needKannel(b)
	for _, s := range benchShapes {
		b.Run(fmt.Sprintf("binds=%d/window=%d", s.binds, s.window), func(b *testing.B) {
			b.ReportMetric(benchKannel(b, s.binds, s.window), "submits/s")
		})
	}
}

func needKannel(b *testing.B) {
	for _, tool := range []string{"bearerbox", "mtbatch"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Fatalf("%s not found (apt-get install kannel): %v", tool, err)
		}
	}
}

// benchKannel returns bearerbox's submits per second for b.N messages.
func benchKannel(b *testing.B, binds, window int) float64 {
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	simCfg := simCarrier("sim-a", binds, 0)
	simCfg.DLRDelay = time.Millisecond
	sim, err := smscsim.StartWithLogger(ctx, []smscsim.CarrierConfig{simCfg}, "", slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	k := kannel.Start(ctx, b, kannel.Config{
		SMSCAddr: sim.Addr("sim-a"), SystemID: simCfg.SystemID, Password: simCfg.Password,
		Binds: binds, Window: window, StoreFile: true, LogLevel: 4,
	})
	waitStats(ctx, b, sim, "bearerbox bound", func(st smscsim.CarrierStats) bool { return st.BindsOpen == int64(binds) })

	dir := b.TempDir()
	content, receivers := filepath.Join(dir, "content"), filepath.Join(dir, "receivers")
	var rcpts strings.Builder
	for i := range b.N {
		fmt.Fprintf(&rcpts, "4477%08d\n", i)
	}
	if err := os.WriteFile(content, []byte("hello from kannel"), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(receivers, []byte(rcpts.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	start := time.Now()
	mt := exec.CommandContext(ctx, "mtbatch", "-v", "4", "-b", "127.0.0.1", "-p", fmt.Sprint(k.BoxPort), "-f", "12345", "-D", "1", "-u", "http://127.0.0.1/dlr", content, receivers)
	if out, err := mt.CombinedOutput(); err != nil {
		b.Fatalf("mtbatch: %v\n%s", err, tail(out, 2000))
	}
	waitStats(ctx, b, sim, "all submitted", func(st smscsim.CarrierStats) bool { return st.Submits >= int64(b.N) })
	elapsed := time.Since(start)
	b.StopTimer()
	return float64(b.N) / elapsed.Seconds()
}

func waitStats(ctx context.Context, b *testing.B, sim *smscsim.Sim, what string, cond func(smscsim.CarrierStats) bool) {
	for {
		st := sim.Stats()["sim-a"]
		if cond(st) {
			return
		}
		select {
		case <-ctx.Done():
			b.Fatalf("%s: never happened: %+v", what, st)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
