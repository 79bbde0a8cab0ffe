package router

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/schemas"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

// benchSize reads a message count from the environment, or def.
func benchSize(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkRoute measures routed messages per second, one router process:
// a backlog of transactional messages on sluice.accepted, routed through
// both hops (intake by tenant, then decision) to a carrier's bulk lane. The
// rate is over the outbound records' timestamps, so the group join at start
// is not counted. SLUICE_BENCH_MESSAGES sets the backlog (default 100,000).
func BenchmarkRoute(b *testing.B) {
	n := benchSize("SLUICE_BENCH_MESSAGES", 100000)
	for b.Loop() {
		const tenants = 24 // a tenant is decided on one partition: spread them
		// The catalogue's partition counts (12 for the router's topics).
		h := newHarnessWith(b, 12, func(c *config.Config) {
			for i := range tenants {
				c.Tenants = append(c.Tenants, config.Tenant{ID: fmt.Sprintf("t%d", i)})
			}
		})
		var msgs []*sluicepb.Message
		for i := range n {
			msgs = append(msgs, msg(fmt.Sprintf("m-%d", i), fmt.Sprintf("t%d", i%tenants), sluicepb.Priority_PRIORITY_TRANSACTIONAL))
		}
		t0 := time.Now()
		h.accept(msgs...)
		// For scale: this machine's plain producer rate, the same records.
		b.ReportMetric(float64(n)/time.Since(t0).Seconds(), "produced/s")
		stop := h.start()
		lane := h.outbound("a", schemas.LaneBulk)
		until(b, "every message routed", func() bool { return endTotal(b, h, lane) >= int64(n) })
		stop()
		first, last := timeSpan(b, h, lane)
		b.ReportMetric(float64(n)/last.Sub(first).Seconds(), "routed/s")
		first, last = timeSpan(b, h, h.topic(schemas.TopicRouterBulk))
		b.ReportMetric(float64(n)/last.Sub(first).Seconds(), "intake/s")
	}
}

// BenchmarkOTPBehindBacklog measures how long otp messages take to reach
// their carrier's otp lane when published behind a marketing backlog for
// the same carrier (SLUICE_BENCH_BACKLOG, default 200,000):
//
//   - held: the backlog was published first, has passed the intake, and
//     its tenant's throughput limit holds it in the router's schedule; 100
//     otp follow, one every 10 ms.
//   - burst: the backlog and 100 otp interleaved in it (one per 1% of the
//     backlog) are published at once to a running router.
func BenchmarkOTPBehindBacklog(b *testing.B) {
	backlog := benchSize("SLUICE_BENCH_BACKLOG", 200000)
	const otps = 100
	for _, mode := range []string{"held", "burst"} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				h := newHarness(b, func(c *config.Config) {
					c.Tenants = append(c.Tenants, config.Tenant{ID: "campaign", RateLimit: 1000})
				})
				otpLane := h.outbound("a", schemas.LaneOTP)
				h.start()
				warm := msg("warm-up", "acme", sluicepb.Priority_PRIORITY_OTP)
				h.accept(warm)
				until(b, "the router up", func() bool { return endTotal(b, h, otpLane) == 1 })
				var recs []*sluicepb.Message
				for i := range backlog {
					recs = append(recs, msg(fmt.Sprintf("mk-%d", i), "campaign", sluicepb.Priority_PRIORITY_MARKETING))
					if mode == "burst" && (i+1)%(backlog/otps) == 0 {
						recs = append(recs, msg(fmt.Sprintf("otp-%d", i), "acme", sluicepb.Priority_PRIORITY_OTP))
					}
				}
				if mode == "held" {
					h.accept(recs...)
					// Both intakes past the backlog, and the backlog parked in
					// the schedule (all but the tenant's burst).
					sentinel := msg("sentinel", "acme", sluicepb.Priority_PRIORITY_OTP)
					h.accept(sentinel)
					sched := h.topic(schemas.TopicRouterSched)
					until(b, "the backlog held", func() bool {
						return endTotal(b, h, otpLane) == 2 && endTotal(b, h, sched) >= int64(backlog-200)
					})
					recs = nil
					for i := range otps {
						recs = append(recs, msg(fmt.Sprintf("otp-%d", i), "acme", sluicepb.Priority_PRIORITY_OTP))
					}
				}
				// Stamp each otp when it is handed to the producer.
				size := 1000
				if mode == "held" {
					size = 1 // otp one by one, not as a batch
				}
				for start := 0; start < len(recs); start += size {
					chunk := recs[start:min(start+size, len(recs))]
					now := time.Now().UnixMilli()
					for _, m := range chunk {
						m.AcceptedAtMs = now
					}
					h.accept(chunk...)
					if mode == "held" {
						time.Sleep(10 * time.Millisecond)
					}
				}
				want := int64(otps + 1)
				if mode == "held" {
					want++ // the sentinel
				}
				until(b, "every otp routed", func() bool {
					got := endTotal(b, h, otpLane)
					if got > want {
						b.Fatalf("%d records on the otp lane, want %d", got, want)
					}
					return got == want
				})
				lat := otpLatencies(b, h, otpLane)
				b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms")
			}
		})
	}
}

// endTotal sums a topic's end offsets: the records it has.
func endTotal(tb testing.TB, h *harness, topic string) int64 {
	spans, err := kafka.TopicOffsets(context.Background(), h.cfg.Kafka.Brokers, topic)
	if err != nil {
		tb.Fatal(err)
	}
	var total int64
	for _, s := range spans {
		total += s.Next - s.First
	}
	return total
}

// timeSpan returns the earliest and latest record timestamps of a topic,
// from each partition's first and last record.
func timeSpan(tb testing.TB, h *harness, topic string) (first, last time.Time) {
	spans, err := kafka.TopicOffsets(context.Background(), h.cfg.Kafka.Brokers, topic)
	if err != nil {
		tb.Fatal(err)
	}
	for p, s := range spans {
		lo, hi := s.First, s.Next
		if hi == lo {
			continue
		}
		for _, off := range []int64{lo, hi - 1} {
			t := recordAt(tb, h, topic, p, off).Time
			if first.IsZero() || t.Before(first) {
				first = t
			}
			if t.After(last) {
				last = t
			}
		}
	}
	return first, last
}

// recordAt returns the record at offset off of partition p of topic, which
// must be below the partition's end.
func recordAt(tb testing.TB, h *harness, topic string, p int, off int64) kafka.Message {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var m kafka.Message
	_, err := kafka.ReadRange(ctx, h.cfg.Kafka.Brokers, topic, p, off, func(r kafka.Message) error {
		m = r
		return errGotRecord // the first record read is the one wanted
	})
	if !errors.Is(err, errGotRecord) {
		tb.Fatalf("record %d of %s/%d: %v (none read)", off, topic, p, err)
	}
	return m
}

// errGotRecord stops recordAt's ReadRange at its first record.
var errGotRecord = errors.New("got the record")

// otpLatencies reads the otp lane and returns, sorted, how long each otp
// took from its stamp to its outbound record.
func otpLatencies(tb testing.TB, h *harness, topic string) []time.Duration {
	w := h.watch(topic)
	until(tb, "the otp lane read", func() bool { return len(w.of(topic)) == int(endTotal(tb, h, topic)) })
	var lat []time.Duration
	for i, m := range messages(tb, w.of(topic)) {
		if m.Id == "warm-up" || m.Id == "sentinel" {
			continue
		}
		lat = append(lat, w.of(topic)[i].Time.Sub(time.UnixMilli(m.AcceptedAtMs)))
	}
	slices.Sort(lat)
	return lat
}
