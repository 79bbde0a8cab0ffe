package dlr_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
	"github.com/sluice-sms/sluice/services/dlr"
)

// BenchmarkServiceOnKafka measures the whole service in one process on the
// test Kafka: once it is up, b.N submit results and b.N receipts are
// published (1,000 per produce call) and the clock stops when the
// correlator has committed them all (every outcome published, every state
// change in the changelog).
func BenchmarkServiceOnKafka(b *testing.B) {
	cfg := testConfig(b)
	f := newFeed(b, cfg)
	now := time.Now().UnixMilli()
	pre := cfg.Kafka.TopicPrefix
	pair := func(i int) []kafka.Message {
		m := msg(fmt.Sprintf("bench-%d", i), "sim-a", 1)
		id := fmt.Sprintf("%x", i*7919+1)
		return []kafka.Message{
			f.submit(&sluicepb.SubmitResult{Message: m, SmscMessageId: id, SubmittedAtMs: now}),
			f.dlr(&sluicepb.RawDLR{Carrier: "sim-a", SmscMessageId: id, Stat: "DELIVRD", Err: "000", ReceivedAtMs: now + 1000}),
		}
	}
	waitDrained := func() {
		for {
			// Errors are transient here (a partition without leader yet).
			if ok, err := drained(b.Context(), cfg.Kafka.Brokers, pre+dlr.GroupCorrelator, pre+schemas.TopicSubmits, pre+schemas.TopicDLRRaw); ok && err == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Warm up: the groups joined and the state restored.
	f.send(pair(-1)...)
	runDLR(b, cfg)
	waitDrained()

	b.ResetTimer()
	start := time.Now()
	var recs []kafka.Message
	for i := range b.N {
		recs = append(recs, pair(i)...)
		if len(recs) >= 10000 || i == b.N-1 {
			f.send(recs...)
			recs = recs[:0]
		}
	}
	waitDrained()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "dlrs/s")
}
