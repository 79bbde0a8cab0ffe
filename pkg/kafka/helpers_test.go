package kafka_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/testenv"
)

// testTimeout bounds each test; on the embedded broker they take a few
// seconds, and a hang should fail rather than stall the run.
const testTimeout = 60 * time.Second

func ensureTopics(t *testing.T, brokers []string, specs ...kafka.TopicSpec) {
	t.Helper()
	if err := kafka.EnsureTopics(t.Context(), brokers, testenv.ReplicationFactor(), specs); err != nil {
		t.Fatal(err)
	}
}

// produceKeyed writes n records "key-i" = "value-i" to topic through the
// package's producer, which spreads them over the partitions by key.
func produceKeyed(t *testing.T, brokers []string, topic string, n int) {
	t.Helper()
	p := kafka.NewProducer(brokers, 5*time.Millisecond)
	defer p.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Topic: topic, Key: []byte("key-" + strconv.Itoa(i)), Value: []byte("value-" + strconv.Itoa(i))}
	}
	if err := p.Produce(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
}

// produceTo writes one record per message to the partition each names
// (kafka-go's writer otherwise ignores Message.Partition).
func produceTo(t *testing.T, brokers []string, msgs ...kafka.Message) {
	t.Helper()
	w := &kgo.Writer{
		Addr:         kgo.TCP(brokers...),
		Balancer:     kgo.BalancerFunc(func(m kgo.Message, _ ...int) int { return m.Partition }),
		RequiredAcks: kgo.RequireAll,
		BatchTimeout: time.Millisecond,
	}
	defer w.Close()
	if err := w.WriteMessages(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
}

func partitionList(n int) []int {
	ps := make([]int, n)
	for i := range ps {
		ps[i] = i
	}
	return ps
}

// committedOffsets returns the group's committed offset of each partition
// of topic (-1 where none is committed).
func committedOffsets(ctx context.Context, brokers []string, group, topic string, partitions int) (map[int]int64, error) {
	return kafka.CommittedOffsets(ctx, brokers, group, topic, partitionList(partitions))
}

// endOffsets returns the next offset to be written in each partition.
func endOffsets(t *testing.T, brokers []string, topic string, partitions int) map[int]int64 {
	t.Helper()
	client := &kgo.Client{Addr: kgo.TCP(brokers...)}
	reqs := make([]kgo.OffsetRequest, partitions)
	for p := range reqs {
		reqs[p] = kgo.LastOffsetOf(p)
	}
	resp, err := client.ListOffsets(t.Context(), &kgo.ListOffsetsRequest{Topics: map[string][]kgo.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	offsets := make(map[int]int64, partitions)
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("list offsets partition %d: %v", p.Partition, p.Error)
		}
		offsets[p.Partition] = p.LastOffset
	}
	return offsets
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// consumeUntil runs consume (a group's loop) until every record is
// handled, as cond says under mu, then stops it: it must return nil.
func consumeUntil(t *testing.T, mu *sync.Mutex, cond func() bool, consume func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	done := goRun(t, func() error { return consume(ctx) })
	waitFor(t, 20*time.Second, "every record handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return cond()
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("consumer group: %v", err)
	}
}

// goRun runs f in a goroutine and returns a channel with its result; the
// test waits for it before ending.
func goRun(t *testing.T, f func() error) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		done <- f()
	}()
	t.Cleanup(func() { <-finished })
	return done
}
