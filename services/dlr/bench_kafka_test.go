package dlr_test

import (
	"fmt"
	"runtime/debug"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/testenv"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
	"github.com/sluice-sms/sluice/services/dlr"
)

// BenchmarkServiceOnKafka measures the whole service in one process on the
// test Kafka, working off a backlog: once it has started and stopped (the
// topics and groups made), b.N submit results and b.N receipts are
// published, and the clock runs from its restart. dlrs/s is the rate at
// which the correlator committed them all (every outcome published, every
// state change in the changelog); e2e/s the rate at which the stages
// downstream (the aggregator and the ClickHouse writer) committed them too.
// cpu-µs/dlr is the process's CPU time per receipt until then: on a shared
// machine it says more than the rates do. The feed runs before the clock,
// so that neither its rate nor its CPU counts. maxrss-MiB is the process's
// peak resident memory, the feed's and the benchmark's included.
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
	waitDrained := func(group string, topics ...string) {
		for {
			// Errors are transient here (a partition without leader yet).
			if ok, err := drained(b.Context(), cfg.Kafka.Brokers, pre+group, topics...); ok && err == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	downstream := func() {
		waitDrained(dlr.GroupAggregator, pre+schemas.TopicDLROutcomes)
		waitDrained(dlr.GroupAnalytics, pre+schemas.TopicStatus)
	}
	// Warm up: the topics made, the groups joined once.
	f.send(pair(-1)...)
	stop := runDLR(b, cfg)
	waitDrained(dlr.GroupCorrelator, pre+schemas.TopicSubmits, pre+schemas.TopicDLRRaw)
	downstream()
	stop()

	var recs []kafka.Message
	for i := range b.N {
		recs = append(recs, pair(i)...)
		if len(recs) >= 10000 || i == b.N-1 {
			f.send(recs...)
			recs = recs[:0]
		}
	}
	// The service as sluice-dlr runs it.
	defer debug.SetGCPercent(debug.SetGCPercent(dlr.GCPercent))
	b.ResetTimer()
	cpu := testenv.CPUTime(b)
	start := time.Now()
	runDLR(b, cfg)
	waitDrained(dlr.GroupCorrelator, pre+schemas.TopicSubmits, pre+schemas.TopicDLRRaw)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "dlrs/s")
	downstream()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "e2e/s")
	b.ReportMetric(float64((testenv.CPUTime(b)-cpu).Microseconds())/float64(b.N), "cpu-µs/dlr")
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(ru.Maxrss)/1024, "maxrss-MiB")
}
