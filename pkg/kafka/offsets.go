package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	kgo "github.com/segmentio/kafka-go"
)

// FirstOffset, as a start offset, means a partition's first record.
const FirstOffset = kgo.FirstOffset

// Span is the offsets of a partition: its first record's and the one its
// next record will get (the high watermark).
type Span struct{ First, Next int64 }

// Empty says the partition holds no record.
func (s Span) Empty() bool { return s.Next <= s.First }

// newClient asks whichever of brokers answers: kafka-go tries the addresses
// in random order, so one broker down does not stop a caller.
func newClient(brokers []string) *kgo.Client {
	return &kgo.Client{Addr: kgo.TCP(brokers...), Timeout: 10 * time.Second}
}

// TopicOffsets returns the span of every partition of topic.
func TopicOffsets(ctx context.Context, brokers []string, topic string) (map[int]Span, error) {
	c := newClient(brokers)
	parts, err := topicPartitions(ctx, c, []string{topic})
	if err != nil {
		return nil, err
	}
	spans, err := listOffsets(ctx, c, parts)
	if err != nil {
		return nil, err
	}
	out := make(map[int]Span, len(parts[topic]))
	for _, p := range parts[topic] {
		s, ok := spans[topicPartition{topic, p}]
		if !ok {
			return nil, fmt.Errorf("offsets of %s/%d: not answered", topic, p)
		}
		out[p] = s
	}
	return out, nil
}

// PartitionsOffsets returns the spans of some partitions of topic, in one
// request per leader.
func PartitionsOffsets(ctx context.Context, brokers []string, topic string, partitions []int) (map[int]Span, error) {
	spans, err := listOffsets(ctx, newClient(brokers), map[string][]int{topic: partitions})
	if err != nil {
		return nil, err
	}
	out := make(map[int]Span, len(partitions))
	for _, p := range partitions {
		s, ok := spans[topicPartition{topic, p}]
		if !ok {
			return nil, fmt.Errorf("offsets of %s/%d: not answered", topic, p)
		}
		out[p] = s
	}
	return out, nil
}

// PartitionOffsets returns the span of one partition.
func PartitionOffsets(ctx context.Context, brokers []string, topic string, partition int) (Span, error) {
	spans, err := listOffsets(ctx, newClient(brokers), map[string][]int{topic: {partition}})
	if err != nil {
		return Span{}, err
	}
	s, ok := spans[topicPartition{topic, partition}]
	if !ok {
		return Span{}, fmt.Errorf("offsets of %s/%d: not answered", topic, partition)
	}
	return s, nil
}

// WaitOffsets is PartitionOffsets, asked again every 200 ms until it answers
// or ctx ends: a topic just created may not have its leader in place yet,
// and a broker may be restarting. It warns on log (nil: slog's default)
// every 5 s it waits.
func WaitOffsets(ctx context.Context, brokers []string, topic string, partition int, log *slog.Logger) (Span, error) {
	if log == nil {
		log = slog.Default()
	}
	for attempt := 1; ; attempt++ {
		s, err := PartitionOffsets(ctx, brokers, topic, partition)
		if err == nil {
			return s, nil
		}
		if attempt%25 == 0 {
			log.Warn("offsets not available yet; asking again", "topic", topic, "partition", partition, "err", err)
		}
		select {
		case <-ctx.Done():
			return Span{}, fmt.Errorf("offsets of %s/%d: %w (last: %w)", topic, partition, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

type topicPartition struct {
	topic     string
	partition int
}

// topicPartitions returns the partition ids of each topic, sorted.
func topicPartitions(ctx context.Context, c *kgo.Client, topics []string) (map[string][]int, error) {
	md, err := c.Metadata(ctx, &kgo.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	out := make(map[string][]int, len(md.Topics))
	var errs []error
	for _, t := range md.Topics {
		if t.Error != nil {
			errs = append(errs, fmt.Errorf("metadata of %s: %w", t.Name, t.Error))
			continue
		}
		for _, p := range t.Partitions {
			out[t.Name] = append(out[t.Name], p.ID)
		}
		slices.Sort(out[t.Name])
	}
	return out, errors.Join(errs...)
}

// listOffsets asks each partition's leader for its span, in one request per
// broker; partitions that failed are left out and named in the error.
func listOffsets(ctx context.Context, c *kgo.Client, partitions map[string][]int) (map[topicPartition]Span, error) {
	req := &kgo.ListOffsetsRequest{Topics: map[string][]kgo.OffsetRequest{}}
	for t, ps := range partitions {
		for _, p := range ps {
			req.Topics[t] = append(req.Topics[t], kgo.FirstOffsetOf(p), kgo.LastOffsetOf(p))
		}
	}
	resp, err := c.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	out := map[topicPartition]Span{}
	var errs []error
	for t, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error != nil {
				errs = append(errs, fmt.Errorf("offsets of %s/%d: %w", t, p.Partition, p.Error))
				continue
			}
			out[topicPartition{t, p.Partition}] = Span{First: p.FirstOffset, Next: p.LastOffset}
		}
	}
	return out, errors.Join(errs...)
}
