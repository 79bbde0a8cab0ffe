package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluice-sms/sluice/pkg/backoff"
)

// FollowPartition reads a partition from offset from on (kafka-go's
// FirstOffset for its start), handing each record to fn, until ctx ends,
// without a consumer group. A broker that goes away or moves the partition
// does not end it: it logs the error and, after a backoff, reads on from the
// record after the last one handed over.
func FollowPartition(ctx context.Context, brokers []string, topic string, partition int, from int64, fn func(Message), log *slog.Logger) {
	FollowBatches(ctx, brokers, topic, partition, from, func(ms []Message) {
		for _, m := range ms {
			fn(m)
		}
	}, log)
}

// followBatchMax bounds the batches of FollowBatches.
const followBatchMax = 1000

// FollowBatches is FollowPartition handing fn the records as they come, in
// batches (of up to 1,000): for a caller that writes each batch at once.
func FollowBatches(ctx context.Context, brokers []string, topic string, partition int, from int64, fn func([]Message), log *slog.Logger) {
	next := from
	b := backoff.New(500*time.Millisecond, 10*time.Second)
	for {
		err := readPartition(ctx, brokers, topic, partition, &next, fn)
		if ctx.Err() != nil {
			return
		}
		wait := b.Next()
		log.Warn("reading a partition again", "topic", topic, "partition", partition, "err", err, "backoff", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// readPartition hands fn the records from *next on, in batches, until an
// error, moving *next past each batch.
func readPartition(ctx context.Context, brokers []string, topic string, partition int, next *int64, fn func([]Message)) error {
	r := subscribe(brokers, topic, partition, *next)
	defer r.Close()
	for {
		ms, err := r.batch(ctx, time.Hour, 0, followBatchMax)
		if err != nil {
			return fmt.Errorf("read %s/%d: %w", topic, partition, err)
		}
		if len(ms) == 0 {
			continue
		}
		*next = ms[len(ms)-1].Offset + 1
		fn(ms)
	}
}

// ReadRange hands fn the records of a partition from offset from (FirstOffset,
// or any offset before the first: from the first) up to the end the
// partition had when ReadRange began, and returns that end. An error of fn
// stops it and is returned as it is.
func ReadRange(ctx context.Context, brokers []string, topic string, partition int, from int64, fn func(Message) error) (end int64, err error) {
	return readRangeBatches(ctx, brokers, topic, partition, from, func(ms []Message) error {
		for _, m := range ms {
			if err := fn(m); err != nil {
				return err
			}
		}
		return nil
	})
}

// readRangeBatch is the most records readRangeBatches hands over at once.
const readRangeBatch = 5000

// readRangeBatches is ReadRange handing fn the records in batches, as many
// as have been fetched (up to 5,000), in offset order: one lock of the
// fetcher's buffer per batch, not per record.
func readRangeBatches(ctx context.Context, brokers []string, topic string, partition int, from int64, fn func([]Message) error) (end int64, err error) {
	s, err := WaitOffsets(ctx, brokers, topic, partition, nil)
	if err != nil {
		return 0, err
	}
	from = max(from, s.First)
	if from >= s.Next {
		return s.Next, nil
	}
	r := subscribe(brokers, topic, partition, from)
	defer r.Close()
	for {
		ms, err := r.batch(ctx, time.Hour, 0, readRangeBatch)
		if err != nil {
			return 0, fmt.Errorf("read %s/%d: %w", topic, partition, err)
		}
		if len(ms) == 0 {
			continue
		}
		// Compaction never removes a log's last record, so the one before
		// the end is always read.
		last := len(ms)
		for last > 0 && ms[last-1].Offset >= s.Next {
			last-- // written after ReadRange began
		}
		if err := fn(ms[:last]); err != nil {
			return 0, err
		}
		if last < len(ms) || ms[len(ms)-1].Offset >= s.Next-1 {
			return s.Next, nil
		}
	}
}

// Tail is FollowPartition that also calls caught, once, when the records the
// partition held as it started have all been handed to fn (at once when it
// held none), so that a caller can wait for a complete view before it acts
// on it.
func Tail(ctx context.Context, brokers []string, topic string, partition int, fn func(Message), caught func(), log *slog.Logger) {
	TailFrom(ctx, brokers, topic, partition, FirstOffset, fn, caught, log)
}

// TailFrom is Tail from offset from (or the first offset, if it is before
// it): for a caller that holds the records before from already.
func TailFrom(ctx context.Context, brokers []string, topic string, partition int, from int64, fn func(Message), caught func(), log *slog.Logger) {
	TailBatchesFrom(ctx, brokers, topic, partition, from, func(ms []Message) {
		for _, m := range ms {
			fn(m)
		}
	}, caught, log)
}

// TailBatchesFrom is TailFrom handing fn batches, as FollowBatches does;
// caught comes after the batch that completes the view.
func TailBatchesFrom(ctx context.Context, brokers []string, topic string, partition int, from int64, fn func([]Message), caught func(), log *slog.Logger) {
	s, err := WaitOffsets(ctx, brokers, topic, partition, log)
	if err != nil {
		return // ctx ended
	}
	from = max(from, s.First)
	behind := from < s.Next
	if !behind {
		caught()
	}
	FollowBatches(ctx, brokers, topic, partition, from, func(ms []Message) {
		fn(ms)
		if behind && ms[len(ms)-1].Offset+1 >= s.Next {
			behind = false
			caught()
		}
	}, log)
}

// ReadAll returns every record topic holds now, partition by partition in
// partition order.
func ReadAll(ctx context.Context, brokers []string, topic string) ([]Message, error) {
	n, err := PartitionCount(ctx, brokers, topic)
	if err != nil {
		return nil, err
	}
	var out []Message
	for p := range n {
		if _, err := ReadRange(ctx, brokers, topic, p, FirstOffset, func(m Message) error {
			out = append(out, m)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}
