package dlr

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-sms/sluice/pkg/config"
	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/state"
	"github.com/sluice-sms/sluice/pkg/testenv"
	"github.com/sluice-sms/sluice/schemas/sluicepb"
)

func noopMeter() metric.Meter  { return noop.NewMeterProvider().Meter("test") }
func noopTracer() trace.Tracer { return tracenoop.NewTracerProvider().Tracer("test") }

func benchCorrelator(b *testing.B, db *state.DB) *correlator {
	b.Helper()
	m, err := newMetrics(noopMeter(), db)
	if err != nil {
		b.Fatal(err)
	}
	return &correlator{dlrTopic: "dlr", outcomes: "outcomes", unmatched: "unmatched", cfg: config.Default().DLR, m: m, tracer: noopTracer()}
}

func pair(i int, now int64) (submit, dlr kafka.Message) {
	m := &sluicepb.Message{Id: fmt.Sprintf("0193a1b2-0000-7000-8000-%012d", i), Tenant: "acme", CampaignId: "bench", Carrier: "sim-a",
		Country: "GB", To: "+447700900123", From: "ACME", Text: "Your code is 123456", Segments: 1, AcceptedAtMs: now}
	id := strconv.FormatInt(int64(i)*7919, 16)
	sv, _ := proto.Marshal(&sluicepb.SubmitResult{Message: m, SmscMessageId: id, SubmittedAtMs: now})
	dv, _ := proto.Marshal(&sluicepb.RawDLR{Carrier: "sim-a", SmscMessageId: id, Stat: "DELIVRD", Err: "000", ReceivedAtMs: now + 1000,
		ShortMessage: []byte("id:" + id + " sub:001 dlvrd:001 submit date:2611270930 done date:2611270931 stat:DELIVRD err:000 text:")})
	key := []byte("sim-a:" + id)
	return kafka.Message{Topic: "submits", Key: key, Value: sv}, kafka.Message{Topic: "dlr", Key: key, Value: dv}
}

// BenchmarkCorrelate measures the correlator's own work per receipt, in one
// goroutine: the submit and the receipt stepped through the pebble-backed
// table, in transactions of 1,000 records committed to the store as the
// service does (Kafka round trips left out).
func BenchmarkCorrelate(b *testing.B) {
	db, err := state.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s := db.Store('c', 0, "pending", pendingMeta)
	c := benchCorrelator(b, db)
	now := time.Now().UnixMilli()
	const batch = 1000
	subs, dlrs := make([]kafka.Message, b.N), make([]kafka.Message, b.N)
	for i := range b.N {
		subs[i], dlrs[i] = pair(i, now)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i += batch {
		t := s.Begin()
		end := min(i+batch, b.N)
		for _, rec := range subs[i:end] {
			if _, err := c.step(t, "submits", rec); err != nil {
				b.Fatal(err)
			}
		}
		for _, rec := range dlrs[i:end] {
			out, err := c.step(t, "dlr", rec)
			if err != nil || len(out) != 1 {
				b.Fatalf("step: %v, %d outputs", err, len(out))
			}
		}
		if err := t.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "dlrs/s")
}

// BenchmarkPendingMemory holds SLUICE_BENCH_MAPPINGS (default 10,000,000)
// submits waiting for their receipts in the table and reports the process's
// resident memory: the store keeps them on disk, not on the heap.
func BenchmarkPendingMemory(b *testing.B) {
	n := 10_000_000
	if v := os.Getenv("SLUICE_BENCH_MAPPINGS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	for range b.N {
		dir := b.TempDir()
		db, err := state.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		c := benchCorrelator(b, db)
		now := time.Now().UnixMilli()
		start := time.Now()
		const parts = 12
		stores := make([]*state.Store, parts)
		for p := range stores {
			stores[p] = db.Store('c', p, "pending", pendingMeta)
		}
		for i := 0; i < n; i += 10000 {
			t := stores[(i/10000)%parts].Begin()
			for j := i; j < min(i+10000, n); j++ {
				rec, _ := pair(j, now)
				if _, err := c.step(t, "submits", rec); err != nil {
					b.Fatal(err)
				}
			}
			if err := t.Commit(); err != nil {
				b.Fatal(err)
			}
		}
		if got := db.Live(); got != int64(n) {
			b.Fatalf("%d pending, want %d", got, n)
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(n), "mappings")
		b.ReportMetric(testenv.RSSMiB(b, os.Getpid()), "rss_MiB")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap_MiB")
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "inserts/s")
		b.ReportMetric(testenv.DirMiB(b, dir), "disk_MiB")
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
