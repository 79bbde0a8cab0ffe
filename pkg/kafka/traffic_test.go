package kafka_test

import (
	"testing"
	"time"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/testenv"
)

// The traffic counters see the records written by both produce paths and
// read back, and the requests that carried them. The counters are the
// process's, so the test compares before and after.
func TestTrafficCounted(t *testing.T) {
	brokers := testenv.Kafka(t)
	topic := testenv.TopicPrefix(t) + "traffic"
	ensureTopics(t, brokers, kafka.TopicSpec{Name: topic, Partitions: 2})
	meter, reader := testenv.Meter(t)
	if _, err := kafka.RegisterTraffic(meter); err != nil {
		t.Fatal(err)
	}
	read := func() (requests, records map[string]int64) {
		return testenv.Counters(t, reader, "sluice_kafka_requests", "kind"), testenv.Counters(t, reader, "sluice_kafka_records", "kind")
	}
	req0, rec0 := read()

	p := kafka.NewProducer(brokers, time.Millisecond)
	msgs := make([]kafka.Message, 10)
	for i := range msgs {
		msgs[i] = kafka.Message{Topic: topic, Key: []byte{byte(i)}, Value: []byte("v")}
	}
	if err := p.Produce(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceMany(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	all, err := kafka.ReadAll(t.Context(), brokers, topic)
	if err != nil || len(all) != 20 {
		t.Fatalf("read back %d records, %v; want 20", len(all), err)
	}

	req1, rec1 := read()
	if got := rec1["produced"] - rec0["produced"]; got != 20 {
		t.Errorf("%d records produced, want 20", got)
	}
	if got := rec1["fetched"] - rec0["fetched"]; got < 20 {
		t.Errorf("%d records fetched, want at least the 20 read back", got)
	}
	// Two partitions: at least one request each way, at most one per
	// partition per produce call.
	if got := req1["produce"] - req0["produce"]; got < 2 || got > 4 {
		t.Errorf("%d produce requests, want 2 to 4", got)
	}
	if got := req1["fetch"] - req0["fetch"]; got < 1 {
		t.Errorf("%d fetch requests, want at least one", got)
	}
}
