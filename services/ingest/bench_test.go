package ingest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/service"
	"github.com/sluice-sms/sluice/schemas"
)

// total returns how many records topic holds.
func total(b *testing.B, brokers []string, topic string) int64 {
	b.Helper()
	ranges, err := endOffsets(context.Background(), brokers, topic)
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, r := range ranges {
		n += r.end - r.first
	}
	return n
}

// BenchmarkTopicAccept fills sms.requests with b.N records, then starts
// ingest and measures accepted messages per second from the first accepted
// record to the last (the group join before it is not counted).
func BenchmarkTopicAccept(b *testing.B) {
	b.StopTimer()
	cfg := testConfig(b)
	ctx := context.Background()
	if err := service.CreateTopics(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	p := kafka.NewProducer(cfg.Kafka.Brokers, 5*time.Millisecond)
	defer p.Close()
	topic := cfg.Kafka.TopicPrefix + schemas.TopicRequests
	batch := make([]kafka.Message, 0, 1000)
	for i := range b.N {
		batch = append(batch, kafka.Message{Topic: topic, Key: fmt.Appendf(nil, "k%d", i),
			Value: []byte(withTenant("acme", good(fmt.Sprintf(`client_ref="r%d"`, i), `to="+4474001`+fmt.Sprintf("%05d", i%100000)+`"`)))})
		if len(batch) == cap(batch) || i == b.N-1 {
			if err := p.Produce(ctx, batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}

	accepted := cfg.Kafka.TopicPrefix + schemas.TopicAccepted
	startIngest(b, cfg, hooks{})
	cpu := cpuTime(b)
	b.StartTimer()
	var first time.Time
	for {
		n := total(b, cfg.Kafka.Brokers, accepted)
		if n > 0 && first.IsZero() {
			first = time.Now()
		}
		if n >= int64(b.N) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	if el := time.Since(first); b.N > 1 && el > 0 {
		b.ReportMetric(float64(b.N)/el.Seconds(), "accepted/s")
	}
	reportCPU(b, cpu, b.N)
}

// cpuTime is the CPU time this process has used so far.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU time per message since since: on a
// shared machine wall-clock rates say more about the neighbours than about
// ingest. It includes the benchmark's own HTTP client, and the broker when
// it is the embedded one.
func reportCPU(b *testing.B, since time.Duration, messages int) {
	b.ReportMetric(float64((cpuTime(b)-since).Microseconds())/float64(messages), "cpu-µs/msg")
}

// BenchmarkHTTPSingle posts one message per request from 64 concurrent
// clients.
func BenchmarkHTTPSingle(b *testing.B) { benchHTTP(b, 1) }

// BenchmarkHTTPBatch100 posts batches of 100 messages from 64 concurrent
// clients.
func BenchmarkHTTPBatch100(b *testing.B) { benchHTTP(b, 100) }

func benchHTTP(b *testing.B, size int) {
	cfg := testConfig(b)
	base := startIngest(b, cfg, hooks{})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	var seq atomic.Int64
	body := func() string {
		msgs := make([]string, size)
		for i := range msgs {
			n := seq.Add(1)
			msgs[i] = good(fmt.Sprintf(`client_ref="r%d"`, n), fmt.Sprintf(`to="+4474001%05d"`, n%100000))
		}
		if size == 1 {
			return msgs[0]
		}
		return batchOf(msgs...)
	}
	b.SetParallelism(32) // 64 clients on 2 cores
	cpu := cpuTime(b)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, base+"/v1/messages", strings.NewReader(body()))
			req.Header.Set("Authorization", "Bearer acme-key")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = readAll(resp)
			if resp.StatusCode != http.StatusAccepted {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "accepted/s")
	reportCPU(b, cpu, b.N*size)
}

// BenchmarkAccept is the validation alone: decode, number, sender, text.
func BenchmarkAccept(b *testing.B) {
	in := &intake{limits: testLimits, tenants: map[string]bool{"acme": true}}
	body := []byte(withTenant("acme", good(`client_ref="r1"`)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ferr := in.validateRecord(body, now); ferr != nil {
			b.Fatal(ferr)
		}
	}
}
