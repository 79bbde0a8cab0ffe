package sendertest

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
	"github.com/sluice-sms/sluice/tools/smscsim"
)

// BenchmarkSenderSubmits measures one sender process against smsc-sim: from
// the moment its binds are up, how fast it takes b.N single-part messages
// from Kafka, submits them (each receipt requested and delivered back), and
// records each result in Kafka. Reports submits/s.
func BenchmarkSenderSubmits(b *testing.B) {
	for _, binds := range []int{1, 4} {
		for _, window := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("binds=%d/window=%d", binds, window), func(b *testing.B) {
				sim := simCarrier("sim-a", binds, 0)
				sim.DLRDelay = time.Millisecond
				h := newHarness(b, []smscsim.CarrierConfig{sim}, []config.Carrier{carrier(binds, 1_000_000, window)})
				h.runSender()
				h.waitSim("sim-a", "binds up", func(st smscsim.CarrierStats) bool { return st.BindsOpen == int64(binds) })
				msgs := messages(b.N, "sim-a", sluicepb.Priority_PRIORITY_TRANSACTIONAL)
				b.ResetTimer()
				start := time.Now()
				h.send(msgs...)
				h.waitSim("sim-a", "all submitted", func(st smscsim.CarrierStats) bool { return st.Submits >= int64(b.N) })
				b.StopTimer()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "submits/s")
			})
		}
	}
}
