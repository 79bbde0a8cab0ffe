package router

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sluice-sms/sluice/pkg/kafka"
)

// tail reads every record of partition 0 of a small compacted topic from the
// start and keeps following it, through broker outages, handing each record
// to apply. caught is closed once the records there were at the start have
// been applied, so that routing begins with a complete view.
func tail(ctx context.Context, brokers []string, topic string, apply func(kafka.Message), caught chan<- struct{}, log *slog.Logger) error {
	first, last, err := offsets(ctx, brokers, topic, 0)
	if err != nil {
		return err
	}
	if last <= first {
		close(caught)
		caught = nil
	}
	kafka.FollowPartition(ctx, brokers, topic, 0, first, func(m kafka.Message) {
		apply(m)
		if caught != nil && m.Offset >= last-1 {
			close(caught)
			caught = nil
		}
	}, log)
	return nil
}

// readRange hands fn the records of a partition from offset from (a
// negative one: the first) to the end it has now.
func readRange(ctx context.Context, brokers []string, topic string, partition int, from int64, fn func(kafka.Message) error) error {
	first, last, err := offsets(ctx, brokers, topic, partition)
	if err != nil {
		return err
	}
	if from < first {
		from = first
	}
	if from >= last {
		return nil
	}
	r := newReader(brokers, topic, partition)
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return fmt.Errorf("read %s/%d: %w", topic, partition, err)
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("read %s/%d: %w", topic, partition, err)
		}
		if err := fn(m); err != nil {
			return err
		}
		if m.Offset >= last-1 {
			return nil
		}
	}
}

func newReader(brokers []string, topic string, partition int) *kgo.Reader {
	return kgo.NewReader(kgo.ReaderConfig{Brokers: brokers, Topic: topic, Partition: partition,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond})
}

// offsets returns the first offset of a partition and the one its next
// record will get. A topic just created may not have its leader in place
// yet: that is retried for a while.
func offsets(ctx context.Context, brokers []string, topic string, partition int) (first, last int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		first, last, err = readOffsets(ctx, brokers, topic, partition)
		if err == nil {
			return first, last, nil
		}
		select {
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("offsets of %s/%d: %w", topic, partition, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func readOffsets(ctx context.Context, brokers []string, topic string, partition int) (first, last int64, err error) {
	conn, err := kgo.DialLeader(ctx, "tcp", brokers[0], topic, partition)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	return conn.ReadOffsets()
}
