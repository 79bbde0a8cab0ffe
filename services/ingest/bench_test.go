package ingest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/testenv"
	"github.com/sluice-sms/sluice/schemas"
)

// total returns how many records topic holds.
func total(b *testing.B, brokers []string, topic string) int64 {
	b.Helper()
	spans, err := kafka.TopicOffsets(context.Background(), brokers, topic)
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, s := range spans {
		n += s.Next - s.First
	}
	return n
}

// BenchmarkTopicAccept measures accepted messages per second from
// sms.requests: ingest runs (its group joined, outside the timer) while b.N
// requests are published in batches of 1000 and until the last is accepted.
func BenchmarkTopicAccept(b *testing.B) {
	cfg := testConfig(b)
	startIngest(b, cfg, hooks{})
	p := kafka.NewProducer(cfg.Kafka.Brokers, 5*time.Millisecond)
	defer p.Close()
	topic := cfg.Kafka.TopicPrefix + schemas.TopicRequests
	accepted := cfg.Kafka.TopicPrefix + schemas.TopicRouterBulk
	record := func(ref string, i int) kafka.Message {
		return kafka.Message{Topic: topic, Key: []byte(ref),
			Value: []byte(withTenant("acme", good(`client_ref="`+ref+`"`, fmt.Sprintf(`to="+4474001%05d"`, i%100000))))}
	}
	produceWhenReady(b, cfg.Kafka.Brokers, record("warm-up", 0))
	for total(b, cfg.Kafka.Brokers, accepted) < 1 {
		time.Sleep(10 * time.Millisecond) // the group is joined once the first is accepted
	}
	records := make([]kafka.Message, b.N)
	for i := range records {
		records[i] = record(fmt.Sprintf("r%d", i), i)
	}

	cpu := testenv.CPUTime(b)
	b.ResetTimer()
	errc := make(chan error, 1)
	go func() {
		for start := 0; start < len(records); start += 1000 {
			if err := p.Produce(context.Background(), records[start:min(start+1000, len(records))]...); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for total(b, cfg.Kafka.Brokers, accepted) < int64(b.N)+1 {
		time.Sleep(2 * time.Millisecond)
	}
	b.StopTimer()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accepted/s")
	reportCPU(b, cpu, b.N)
}

// reportCPU reports the process's CPU time per message since since: on a
// shared machine wall-clock rates say more about the neighbours than about
// ingest. It includes the benchmark's own HTTP client, and the broker when
// it is the embedded one.
func reportCPU(b *testing.B, since time.Duration, messages int) {
	b.ReportMetric(float64((testenv.CPUTime(b)-since).Microseconds())/float64(messages), "cpu-µs/msg")
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
	cpu := testenv.CPUTime(b)
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
