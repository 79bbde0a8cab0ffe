package kafka

import (
	"context"
	"sync"
	"sync/atomic"

	kgo "github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// traffic counts the process's Kafka requests and records, for the cost per
// message: fetch requests and records read, produce requests and records
// written. It is process-wide, like expvar, because the fetcher and the
// writers are shared deep inside claims, followers and producers; kafka-go's
// writer Stats hand over counts since their last call, so writers are asked
// at every collection and once more when they close.
var traffic = &trafficCounts{writers: map[*kgo.Writer]struct{}{}}

type trafficCounts struct {
	fetches, fetched, produces, produced atomic.Int64

	mu      sync.Mutex
	writers map[*kgo.Writer]struct{}
}

func (t *trafficCounts) addWriter(w *kgo.Writer) *kgo.Writer {
	t.mu.Lock()
	t.writers[w] = struct{}{}
	t.mu.Unlock()
	return w
}

func (t *trafficCounts) closeWriter(w *kgo.Writer) error {
	t.mu.Lock()
	delete(t.writers, w)
	t.mu.Unlock()
	err := w.Close()
	t.writerStats(w)
	return err
}

func (t *trafficCounts) writerStats(w *kgo.Writer) {
	s := w.Stats()
	t.produces.Add(s.Writes)
	t.produced.Add(s.Messages)
}

// collect takes the counts of every open writer.
func (t *trafficCounts) collect() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for w := range t.writers {
		t.writerStats(w)
	}
}

// RegisterTraffic reports the process's Kafka traffic on meter:
// sluice_kafka_requests_total{kind} (fetch, produce: requests sent to
// brokers) and sluice_kafka_records_total{kind} (fetched, produced).
func RegisterTraffic(meter metric.Meter) (metric.Registration, error) {
	requests, err := meter.Int64ObservableCounter("sluice_kafka_requests",
		metric.WithDescription("Fetch and produce requests this process sent to Kafka brokers"), metric.WithUnit("{request}"))
	if err != nil {
		return nil, err
	}
	records, err := meter.Int64ObservableCounter("sluice_kafka_records",
		metric.WithDescription("Records this process fetched from and produced to Kafka"), metric.WithUnit("{record}"))
	if err != nil {
		return nil, err
	}
	fetch, produce := metric.WithAttributes(attribute.String("kind", "fetch")), metric.WithAttributes(attribute.String("kind", "produce"))
	fetched, produced := metric.WithAttributes(attribute.String("kind", "fetched")), metric.WithAttributes(attribute.String("kind", "produced"))
	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		traffic.collect()
		o.ObserveInt64(requests, traffic.fetches.Load(), fetch)
		o.ObserveInt64(requests, traffic.produces.Load(), produce)
		o.ObserveInt64(records, traffic.fetched.Load(), fetched)
		o.ObserveInt64(records, traffic.produced.Load(), produced)
		return nil
	}, requests, records)
}
