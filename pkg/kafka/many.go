package kafka

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	kgo "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
	produceAPI "github.com/segmentio/kafka-go/protocol/produce"

	"github.com/sluice-sms/sluice/pkg/backoff"
)

// ProduceMany writes msgs like Produce, but in one produce request per
// partition leader, where Produce's writer sends (and waits for) one request
// per partition: for callers that gather records bound for many partitions
// (the sender's results), whose small per-partition requests cost more than
// the records. Records go to the partitions Produce would pick (murmur2 of
// the key). The records of partitions that fail with a retriable error
// (leadership moving, a broker away) are sent again with the writer's
// backoff, up to its attempts; nothing is returned before every record is
// acknowledged by all in-sync replicas, or an error.
//
// Records go in rounds of at most maxRoundBytes, one after the other, so
// that no partition's record batch passes the broker's max.message.bytes
// (1 MiB by default) however many calls were gathered, and a partition's
// records keep their order.
func (p *Producer) ProduceMany(ctx context.Context, msgs ...Message) error {
	for len(msgs) > 0 {
		n := roundLen(msgs, maxRoundBytes)
		if err := p.produceRound(ctx, msgs[:n]); err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}

// maxRoundBytes bounds a round of ProduceMany, below the broker's default
// max.message.bytes with room for the batch's own framing.
const maxRoundBytes = 768 << 10

// roundLen is how many of msgs, at least one, fit in max bytes.
func roundLen(msgs []Message, max int) int {
	size := 0
	for i, m := range msgs {
		size += len(m.Key) + len(m.Value) + 32 // a record's framing, about
		for _, h := range m.Headers {
			size += len(h.Key) + len(h.Value) + 8
		}
		if size > max && i > 0 {
			return i
		}
	}
	return len(msgs)
}

// produceRound writes msgs, retrying the partitions that fail.
func (p *Producer) produceRound(ctx context.Context, msgs []Message) error {
	wait := backoff.New(p.w.WriteBackoffMin, p.w.WriteBackoffMax)
	for attempt := 1; len(msgs) > 0; attempt++ {
		failed, err := p.produceOnce(ctx, msgs)
		if err == nil {
			return nil
		}
		if errors.Is(err, errPermanent) || !retriable(err) || attempt >= p.w.MaxAttempts {
			return fmt.Errorf("produce %d records: %w", len(msgs), err)
		}
		msgs = failed
		select {
		case <-ctx.Done():
			return fmt.Errorf("produce %d records: %w (after %w)", len(msgs), ctx.Err(), err)
		case <-time.After(wait.Next()):
		}
	}
	return nil
}

// byTopic yields items grouped by topic, topics in the order they first
// appear and items in theirs: a request names each topic once.
func byTopic[T any](items []T, topic func(T) string) iter.Seq2[string, []T] {
	return func(yield func(string, []T) bool) {
		var order []string
		groups := map[string][]T{}
		for _, it := range items {
			t := topic(it)
			if _, ok := groups[t]; !ok {
				order = append(order, t)
			}
			groups[t] = append(groups[t], it)
		}
		for _, t := range order {
			if !yield(t, groups[t]) {
				return
			}
		}
	}
}

type partitionKey struct {
	topic     string
	partition int32
}

// produceOnce sends msgs once, one request per leader, and returns those
// that failed with the first error.
func (p *Producer) produceOnce(ctx context.Context, msgs []Message) ([]Message, error) {
	leaders, counts, err := p.layout(ctx, msgs)
	if err != nil {
		return msgs, err
	}
	// Records by leader, then by topic and partition, in their order.
	type partitionRecs struct {
		key  partitionKey
		msgs []Message
		recs []protocol.Record
	}
	byLeader := map[int32][]*partitionRecs{}
	index := map[partitionKey]*partitionRecs{}
	balancer := p.w.Balancer
	partitions := make(map[string][]int, len(counts))
	for t, n := range counts {
		partitions[t] = make([]int, n)
		for i := range n {
			partitions[t][i] = i
		}
	}
	for _, m := range msgs {
		k := partitionKey{m.Topic, int32(balancer.Balance(m, partitions[m.Topic]...))}
		pr := index[k]
		if pr == nil {
			pr = &partitionRecs{key: k}
			index[k] = pr
			leader := leaders[k]
			byLeader[leader] = append(byLeader[leader], pr)
		}
		pr.msgs = append(pr.msgs, m)
		pr.recs = append(pr.recs, protocol.Record{Time: m.Time, Key: protocol.NewBytes(m.Key), Value: protocol.NewBytes(m.Value), Headers: m.Headers})
	}

	type result struct {
		parts []*partitionRecs
		resp  *produceAPI.Response
		err   error
	}
	results := make(chan result, len(byLeader))
	timeout := int32(p.w.WriteTimeout.Milliseconds())
	if timeout <= 0 {
		timeout = 10_000
	}
	for _, parts := range byLeader {
		req := &produceAPI.Request{Acks: int16(kgo.RequireAll), Timeout: timeout}
		for topic, prs := range byTopic(parts, func(pr *partitionRecs) string { return pr.key.topic }) {
			t := produceAPI.RequestTopic{Topic: topic}
			for _, pr := range prs {
				t.Partitions = append(t.Partitions, produceAPI.RequestPartition{
					Partition: pr.key.partition,
					RecordSet: protocol.RecordSet{Version: 2, Records: protocol.NewRecordReader(pr.recs...)},
				})
			}
			req.Topics = append(req.Topics, t)
		}
		go func() {
			r, err := p.transport().RoundTrip(ctx, p.w.Addr, req)
			resp, _ := r.(*produceAPI.Response)
			results <- result{parts, resp, err}
		}()
	}

	traffic.produces.Add(int64(len(byLeader)))
	var failed []Message
	var firstErr error
	fail := func(pr *partitionRecs, err error) {
		failed = append(failed, pr.msgs...)
		if firstErr == nil {
			firstErr = err
		}
	}
	for range byLeader {
		res := <-results
		codes := map[partitionKey]int16{}
		if res.err == nil && res.resp != nil {
			for _, t := range res.resp.Topics {
				for _, rp := range t.Partitions {
					codes[partitionKey{t.Topic, rp.Partition}] = rp.ErrorCode
				}
			}
		}
		for _, pr := range res.parts {
			code, answered := codes[pr.key]
			switch {
			case res.err != nil:
				fail(pr, res.err)
			case !answered:
				fail(pr, fmt.Errorf("%s/%d: no answer for the partition: %w", pr.key.topic, pr.key.partition, kgo.NotLeaderForPartition))
			case code != 0:
				fail(pr, fmt.Errorf("%s/%d: %w", pr.key.topic, pr.key.partition, kgo.Error(code)))
			}
		}
	}
	traffic.produced.Add(int64(len(msgs) - len(failed)))
	return failed, firstErr
}

// layout returns the leader of every partition of msgs' topics and their
// partition counts, from the transport's cached metadata.
func (p *Producer) layout(ctx context.Context, msgs []Message) (map[partitionKey]int32, map[string]int, error) {
	var topics []string
	counts := map[string]int{}
	for _, m := range msgs {
		if _, ok := counts[m.Topic]; !ok {
			counts[m.Topic] = 0
			topics = append(topics, m.Topic)
		}
	}
	r, err := p.transport().RoundTrip(ctx, p.w.Addr, &metadataAPI.Request{TopicNames: topics})
	if err != nil {
		return nil, nil, fmt.Errorf("metadata: %w", err)
	}
	leaders := map[partitionKey]int32{}
	for _, t := range r.(*metadataAPI.Response).Topics {
		if t.ErrorCode != 0 {
			// As the writer does: a topic that is not there is not waited for.
			return nil, nil, fmt.Errorf("topic %s: %w", t.Name, errors.Join(kgo.Error(t.ErrorCode), errPermanent))
		}
		counts[t.Name] = len(t.Partitions)
		for _, pt := range t.Partitions {
			leaders[partitionKey{t.Name, pt.PartitionIndex}] = pt.LeaderID
		}
	}
	for _, t := range topics {
		if counts[t] == 0 {
			return nil, nil, fmt.Errorf("topic %s: %w", t, errors.Join(kgo.UnknownTopicOrPartition, errPermanent))
		}
	}
	return leaders, counts, nil
}

// errPermanent marks an error ProduceMany does not retry.
var errPermanent = errors.New("not retried")

func (p *Producer) transport() kgo.RoundTripper {
	if p.w.Transport != nil {
		return p.w.Transport
	}
	return kgo.DefaultTransport
}
