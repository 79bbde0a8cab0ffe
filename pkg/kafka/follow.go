package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	kgo "github.com/segmentio/kafka-go"
)

// FollowPartition reads a partition from offset from on (kafka-go's
// FirstOffset for its start), handing each record to fn, until ctx ends,
// without a consumer group. A broker that goes away or moves the partition
// does not end it: it logs the error and, after a backoff, reads on from the
// record after the last one handed over.
func FollowPartition(ctx context.Context, brokers []string, topic string, partition int, from int64, fn func(Message), log *slog.Logger) {
	next := from
	backoff := 500 * time.Millisecond
	for {
		err := readPartition(ctx, brokers, topic, partition, &next, fn)
		if ctx.Err() != nil {
			return
		}
		log.Warn("reading a partition again", "topic", topic, "partition", partition, "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// readPartition hands fn the records from *next on until an error, moving
// *next past each one.
func readPartition(ctx context.Context, brokers []string, topic string, partition int, next *int64, fn func(Message)) error {
	r := kgo.NewReader(kgo.ReaderConfig{
		Brokers:   brokers,
		Topic:     topic,
		Partition: partition,
		MinBytes:  1,
		MaxBytes:  16 << 20,
		MaxWait:   500 * time.Millisecond, // as Claim.Reader's
	})
	defer r.Close()
	if err := r.SetOffset(*next); err != nil {
		return fmt.Errorf("read %s/%d: %w", topic, partition, err)
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("read %s/%d: %w", topic, partition, err)
		}
		*next = m.Offset + 1
		fn(m)
	}
}
