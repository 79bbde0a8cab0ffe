package sendertest

import (
	"context"
	"fmt"
	"os/exec"
	"testing"

	"github.com/sluice-sms/sluice/tools/kannelbench"
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
	return kannelbench.SubmitRate(context.Background(), b, binds, window, b.N)
}
