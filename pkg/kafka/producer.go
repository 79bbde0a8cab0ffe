// Package kafka holds sluice's Kafka plumbing on segmentio/kafka-go: topic
// creation, a producer that waits for every in-sync replica, and consumer
// groups that commit only finished work.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sluice-sms/sluice/pkg/batch"
)

// Message is a Kafka record.
type Message = kgo.Message

// Header is a Kafka record header.
type Header = kgo.Header

// Producer writes records to any topic and returns only when every in-sync
// replica has them.
type Producer struct {
	w    *kgo.Writer // its settings and transport; ProduceMany writes
	b    *batch.Batcher[*produceCall]
	stop context.CancelFunc
	done chan struct{}
}

// Batches of Produce: the records of up to produceMaxCalls calls,
// produceInflight batches written at once.
const (
	produceMaxCalls = 128
	produceInflight = 16
)

// NewProducer returns a producer. batchTimeout is how long a partial batch
// waits for company (the records of other Produce calls); kafka-go's 1 s
// default would add a second to every hop.
func NewProducer(brokers []string, batchTimeout time.Duration) *Producer {
	p := &Producer{w: newWriter(brokers, batchTimeout), done: make(chan struct{})}
	// Writes taken before Close finish after it: Close stops the gathering,
	// not the writes under way.
	p.b = batch.New(batch.Options{Max: produceMaxCalls, Linger: batchTimeout, Inflight: produceInflight},
		func(ctx context.Context, calls []*produceCall) error {
			p.produceCalls(context.WithoutCancel(ctx), calls)
			return nil
		})
	ctx, stop := context.WithCancel(context.Background())
	p.stop = stop
	go func() {
		defer close(p.done)
		p.b.Run(ctx)
	}()
	return p
}

func newWriter(brokers []string, batchTimeout time.Duration) *kgo.Writer {
	return traffic.addWriter(&kgo.Writer{
		Addr:         kgo.TCP(brokers...),
		Balancer:     &kgo.Murmur2Balancer{}, // same partitions as Java clients
		RequiredAcks: kgo.RequireAll,
		BatchTimeout: batchTimeout,
		// kafka-go allocates and zeroes a BatchSize-record slice for every
		// batch, however small: at 1000, 11% of the sender's CPU.
		BatchSize:              100,
		BatchBytes:             16 << 20,
		MaxAttempts:            10,
		WriteBackoffMin:        50 * time.Millisecond,
		WriteBackoffMax:        2 * time.Second,
		AllowAutoTopicCreation: false,
	})
}

// Produce writes msgs (each naming its topic) and waits for the acks. The
// records of concurrent calls (a service's partition workers) go together,
// in one produce request per partition leader (ProduceMany).
func (p *Producer) Produce(ctx context.Context, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	call := &produceCall{msgs: msgs}
	if err := p.b.Do(ctx, call); err != nil {
		return err
	}
	return call.err // set before Do returned
}

// produceCall is one Produce call's records and, once written, its result.
type produceCall struct {
	msgs []Message
	err  error
}

// produceCalls writes the records of calls together. A call that cannot be
// written at all (a topic that does not exist) must not fail the others it
// was gathered with: on such an error each call is written on its own.
func (p *Producer) produceCalls(ctx context.Context, calls []*produceCall) {
	var all []Message
	for _, c := range calls {
		all = append(all, c.msgs...)
	}
	err := p.ProduceMany(ctx, all...)
	if err != nil && errors.Is(err, errPermanent) && len(calls) > 1 {
		for _, c := range calls {
			c.err = p.ProduceMany(ctx, c.msgs...)
		}
		return
	}
	for _, c := range calls {
		c.err = err
	}
}

// Close waits for the writes under way, then closes the producer.
func (p *Producer) Close() error {
	p.stop()
	<-p.done
	return traffic.closeWriter(p.w)
}

// TopicSpec is a topic to create.
type TopicSpec struct {
	Name       string
	Partitions int
	Config     map[string]string // e.g. retention.ms, cleanup.policy
}

// EnsureTopics creates the topics that do not exist yet and waits until the
// broker serves them. Existing topics are left as they are.
func EnsureTopics(ctx context.Context, brokers []string, replication int, topics []TopicSpec) error {
	client := &kgo.Client{Addr: kgo.TCP(brokers...), Timeout: 30 * time.Second}
	req := &kgo.CreateTopicsRequest{}
	for _, t := range topics {
		tc := kgo.TopicConfig{Topic: t.Name, NumPartitions: t.Partitions, ReplicationFactor: replication}
		for k, v := range t.Config {
			tc.ConfigEntries = append(tc.ConfigEntries, kgo.ConfigEntry{ConfigName: k, ConfigValue: v})
		}
		req.Topics = append(req.Topics, tc)
	}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for name, err := range resp.Errors {
		if err != nil && !errors.Is(err, kgo.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", name, err)
		}
	}
	return waitForTopics(ctx, client, topics)
}

func waitForTopics(ctx context.Context, client *kgo.Client, topics []TopicSpec) error {
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Name
	}
	for {
		md, err := client.Metadata(ctx, &kgo.MetadataRequest{Topics: names})
		if err == nil && topicsReady(md, len(names)) && partitionsServed(ctx, client, md) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for topics: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func topicsReady(md *kgo.MetadataResponse, want int) bool {
	if len(md.Topics) != want {
		return false
	}
	for _, t := range md.Topics {
		if t.Error != nil || len(t.Partitions) == 0 {
			return false
		}
		for _, p := range t.Partitions {
			if p.Leader.Host == "" {
				return false
			}
		}
	}
	return true
}

// partitionsServed tells whether the leader of every partition answers for
// it: a new partition is in the metadata a moment before its leader serves
// it, and readers in that moment fail with "not leader for partition".
func partitionsServed(ctx context.Context, client *kgo.Client, md *kgo.MetadataResponse) bool {
	req := &kgo.ListOffsetsRequest{Topics: map[string][]kgo.OffsetRequest{}}
	for _, t := range md.Topics {
		for _, p := range t.Partitions {
			req.Topics[t.Name] = append(req.Topics[t.Name], kgo.LastOffsetOf(p.ID))
		}
	}
	resp, err := client.ListOffsets(ctx, req)
	if err != nil {
		return false
	}
	for _, parts := range resp.Topics {
		for _, p := range parts {
			if p.Error != nil {
				return false
			}
		}
	}
	return true
}

// PartitionOf is the partition, of a topic with that many, the producer
// writes a record keyed key to.
func PartitionOf(key []byte, partitions int) int {
	all := make([]int, partitions)
	for i := range all {
		all[i] = i
	}
	return (&kgo.Murmur2Balancer{}).Balance(kgo.Message{Key: key}, all...)
}

// PartitionCount returns the number of partitions of topic.
func PartitionCount(ctx context.Context, brokers []string, topic string) (int, error) {
	client := &kgo.Client{Addr: kgo.TCP(brokers...), Timeout: 10 * time.Second}
	md, err := client.Metadata(ctx, &kgo.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("metadata %s: %w", topic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		return 0, fmt.Errorf("metadata %s: topic not found", topic)
	}
	return len(md.Topics[0].Partitions), nil
}
