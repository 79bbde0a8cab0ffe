package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/testenv"
)

// TestProduceMany writes records for two topics in one call and checks that
// every one arrives once, whole, in the partition Produce picks for its key.
func TestProduceMany(t *testing.T) {
	const n, partitions = 40, 4
	brokers := testenv.Kafka(t)
	prefix := testenv.TopicPrefix(t)
	a, b, ref := prefix+"a", prefix+"b", prefix+"ref"
	ensureTopics(t, brokers, kafka.TopicSpec{Name: a, Partitions: partitions}, kafka.TopicSpec{Name: b, Partitions: partitions},
		kafka.TopicSpec{Name: ref, Partitions: partitions})
	p := kafka.NewProducer(brokers, time.Millisecond)
	defer p.Close()

	var many, single []kafka.Message
	for i := range n {
		key := []byte(fmt.Sprintf("key-%d", i))
		topic := a
		if i%2 == 1 {
			topic = b
		}
		many = append(many, kafka.Message{Topic: topic, Key: key, Value: []byte(fmt.Sprintf("value-%d", i)),
			Headers: []kafka.Header{{Key: "h", Value: []byte(fmt.Sprint(i))}}})
		single = append(single, kafka.Message{Topic: ref, Key: key, Value: []byte("ref")})
	}
	if err := p.ProduceMany(t.Context(), many...); err != nil {
		t.Fatal(err)
	}
	if err := p.Produce(t.Context(), single...); err != nil {
		t.Fatal(err)
	}

	want := map[string]int{} // key -> partition Produce chose
	for _, m := range readAllPartitions(t, brokers, ref, partitions, n) {
		want[string(m.Key)] = m.Partition
	}
	got := append(readAllPartitions(t, brokers, a, partitions, n/2), readAllPartitions(t, brokers, b, partitions, n/2)...)
	seen := map[string]bool{}
	for _, m := range got {
		k := string(m.Key)
		var i int
		if _, err := fmt.Sscanf(k, "key-%d", &i); err != nil {
			t.Fatalf("unexpected key %q", k)
		}
		if seen[k] {
			t.Errorf("%s written twice", k)
		}
		seen[k] = true
		if m.Partition != want[k] {
			t.Errorf("%s in partition %d, Produce puts it in %d", k, m.Partition, want[k])
		}
		if string(m.Value) != fmt.Sprintf("value-%d", i) || len(m.Headers) != 1 || string(m.Headers[0].Value) != fmt.Sprint(i) {
			t.Errorf("%s arrived as value %q headers %v", k, m.Value, m.Headers)
		}
	}
	if len(seen) != n {
		t.Errorf("%d of %d records arrived", len(seen), n)
	}

	// A topic that does not exist fails the call at once, as Produce does.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := p.ProduceMany(ctx, kafka.Message{Topic: prefix + "missing", Value: []byte("x")}); err == nil || ctx.Err() != nil {
		t.Errorf("ProduceMany to a missing topic = %v (context: %v), want an error before the deadline", err, ctx.Err())
	}
}

// readAllPartitions reads want records in all from the partitions of topic
// (its only records), then checks the end offsets say there are no more.
func readAllPartitions(t *testing.T, brokers []string, topic string, partitions, want int) []kafka.Message {
	t.Helper()
	ends := endOffsets(t, brokers, topic, partitions)
	var out []kafka.Message
	for p := range partitions {
		if ends[p] == 0 {
			continue
		}
		r := kgo.NewReader(kgo.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 50 * time.Millisecond})
		ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
		for range ends[p] {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("%s/%d: %v", topic, p, err)
			}
			out = append(out, m)
		}
		cancel()
		_ = r.Close()
	}
	if len(out) != want {
		t.Errorf("%s holds %d records, want %d", topic, len(out), want)
	}
	return out
}

// TestProduceManyPastMaxMessageBytes writes, in one call, three times the
// broker's default max.message.bytes to one partition: the call succeeds
// and the records arrive once each, in their order.
func TestProduceManyPastMaxMessageBytes(t *testing.T) {
	const n = 3072 // of 1 KiB each
	brokers := testenv.Kafka(t)
	topic := testenv.TopicPrefix(t) + "big"
	ensureTopics(t, brokers, kafka.TopicSpec{Name: topic, Partitions: 1})
	p := kafka.NewProducer(brokers, time.Millisecond)
	defer p.Close()
	pad := make([]byte, 1024)
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Topic: topic, Key: []byte("one key"), Value: append([]byte(fmt.Sprintf("%05d:", i)), pad...)}
	}
	if err := p.ProduceMany(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
	got := readAllPartitions(t, brokers, topic, 1, n)
	if len(got) != n {
		t.Fatalf("%d of %d records arrived", len(got), n)
	}
	for i, m := range got {
		if want := fmt.Sprintf("%05d:", i); string(m.Value[:6]) != want {
			t.Fatalf("record %d is %q, want %q: out of order", i, m.Value[:6], want)
		}
	}
}
