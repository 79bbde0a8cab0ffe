package sendertest

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/testenv"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
	"github.com/sluice-sms/sluice/tools/smscsim"
)

var benchShapes = []struct{ binds, window int }{{1, 1}, {1, 10}, {1, 100}, {4, 1}, {4, 10}, {4, 100}}

// BenchmarkSenderSubmits measures one sender process against smsc-sim: from
// the moment its binds are up, how fast it takes b.N single-part messages
// from Kafka, submits them (each receipt requested and delivered back), and
// records each result in Kafka. Reports submits/s and the process's CPU
// time per submit: the sender's, the simulator's (same process) and the
// feeding producer's together; a CPU profile tells them apart by the pprof
// label "part" (sender, smscsim).
func BenchmarkSenderSubmits(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(fmt.Sprintf("binds=%d/window=%d", s.binds, s.window), func(b *testing.B) {
			rate, cpu := benchSender(b, s.binds, s.window)
			b.ReportMetric(rate, "submits/s")
			b.ReportMetric(cpu, "cpu-µs/submit")
		})
	}
}

// BenchmarkSenderVsKannel runs BenchmarkSenderSubmits's measure and then
// BenchmarkKannelBearerbox's with the same number of messages, binds and
// window on the same machine, and reports both rates and their ratio.
func BenchmarkSenderVsKannel(b *testing.B) {
	needKannel(b)
	for _, s := range benchShapes {
		b.Run(fmt.Sprintf("binds=%d/window=%d", s.binds, s.window), func(b *testing.B) {
			sluice, cpu := benchSender(b, s.binds, s.window)
			kannel := benchKannel(b, s.binds, s.window)
			b.ReportMetric(sluice, "sluice-submits/s")
			b.ReportMetric(cpu, "sluice-cpu-µs/submit")
			b.ReportMetric(kannel, "kannel-submits/s")
			b.ReportMetric(sluice/kannel, "ratio")
		})
	}
}

// benchSender returns the sender's submits per second for b.N messages and
// the CPU time the process spent per submit meanwhile.
func benchSender(b *testing.B, binds, window int) (rate, cpuMicros float64) {
	b.StopTimer()
	sim := simCarrier("sim-a", binds, 0)
	sim.DLRDelay = time.Millisecond
	h := newHarness(b, []smscsim.CarrierConfig{sim}, []config.Carrier{carrier(binds, 1_000_000, window)})
	stop := h.runSender()
	defer stop()
	h.waitSim("sim-a", "binds up", func(st smscsim.CarrierStats) bool { return st.BindsOpen == int64(binds) })
	msgs := messages(b.N, "sim-a", sluicepb.Priority_PRIORITY_TRANSACTIONAL)
	b.StartTimer()
	start, cpu := time.Now(), testenv.CPUTime(b)
	h.send(msgs...)
	h.waitSim("sim-a", "all submitted", func(st smscsim.CarrierStats) bool { return st.Submits >= int64(b.N) })
	elapsed, cpu := time.Since(start), testenv.CPUTime(b)-cpu
	b.StopTimer()
	return float64(b.N) / elapsed.Seconds(), float64(cpu.Microseconds()) / float64(b.N)
}
