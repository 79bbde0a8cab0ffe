package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-sms/sluice/pkg/kafka"
)

// follow reads every partition of topic into the store, each from its
// table's checkpoint (from its first offset when the table has none), until
// ctx ends or the store fails. ready is closed once the store holds
// everything the topic held when follow started.
func (s *statusStore) follow(ctx context.Context, brokers []string, topic string, ready chan<- struct{}, log *slog.Logger) error {
	partitions, err := waitPartitions(ctx, brokers, topic, log)
	if err != nil {
		return nil // ctx ended
	}
	starts, err := s.restore(ctx, brokers, topic, partitions)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var remaining atomic.Int64
	remaining.Store(int64(partitions))
	caughtUp := func() {
		if remaining.Add(-1) == 0 {
			close(ready)
		}
	}
	var wg sync.WaitGroup
	for p := range partitions {
		wg.Go(func() {
			// After a failed batch, none is applied: applied (and so the
			// checkpoint) must not pass it.
			failed := false
			kafka.TailBatchesFrom(ctx, brokers, topic, p, starts[p], func(batch []kafka.Message) {
				if failed {
					return
				}
				if _, err := s.applyBatch(p, batch); err != nil {
					failed = true
					cancel(fmt.Errorf("status index: %w", err))
					return
				}
				s.advance(p, batch[len(batch)-1].Offset+1)
			}, caughtUp, log)
		})
	}
	s.maintain(ctx, log)
	wg.Wait()
	// Only once the followers are done is applied final.
	err = s.checkpoint()
	if cause := context.Cause(ctx); !errors.Is(cause, context.Canceled) {
		err = errors.Join(cause, err)
	}
	return err
}

// waitPartitions is topic's partition count, once its metadata is there.
func waitPartitions(ctx context.Context, brokers []string, topic string, log *slog.Logger) (int, error) {
	for {
		n, err := kafka.PartitionCount(ctx, brokers, topic)
		if err == nil {
			return n, nil
		}
		// A topic just created may not have its leaders in place yet.
		log.Warn("status store: topic not available yet; retrying", "topic", topic, "err", err)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// restore makes the partitions' tables and returns where each follower
// starts (see start).
func (s *statusStore) restore(ctx context.Context, brokers []string, topic string, partitions int) ([]int64, error) {
	s.mu.Lock()
	s.brokers, s.topic, s.partitions, s.applied = brokers, topic, partitions, make([]int64, partitions)
	s.tables = map[int]*statusTable{}
	s.mu.Unlock()
	all := make([]int, partitions)
	for p := range all {
		all[p] = p
	}
	ends, err := kafka.PartitionsOffsets(ctx, brokers, topic, all)
	if err != nil {
		return nil, fmt.Errorf("status index: %w", err)
	}
	starts := make([]int64, partitions)
	for p := range partitions {
		if starts[p], err = s.start(p, ends[p]); err != nil {
			return nil, err
		}
	}
	return starts, nil
}

// start returns where partition p's follower starts, given the partition's
// offsets: at its table's checkpoint, or at the first offset when the
// table has none. A checkpoint past the partition's end is from another
// topic of that name (deleted and made again): that table is wiped.
func (s *statusStore) start(p int, end kafka.Span) (int64, error) {
	s.mu.Lock()
	t := s.tableLocked(p)
	s.mu.Unlock()
	off, ok, err := t.st.Checkpoint()
	switch {
	case err != nil:
		return 0, err
	case !ok:
		off = kafka.FirstOffset
	case off > end.Next:
		if err := t.st.Wipe(); err != nil {
			return 0, err
		}
		off = kafka.FirstOffset
	}
	s.mu.Lock()
	s.applied[p] = max(off, 0)
	s.mu.Unlock()
	return off, nil
}

// maintain checkpoints the tables every second and prunes them every
// minute, until ctx ends.
func (s *statusStore) maintain(ctx context.Context, log *slog.Logger) {
	save := time.NewTicker(time.Second)
	defer save.Stop()
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-save.C:
			if err := s.checkpoint(); err != nil {
				log.Warn("status index: checkpoint failed; the next one covers it", "err", err)
			}
		case now := <-prune.C:
			n, err := s.prune(now)
			if err != nil {
				log.Warn("status index: prune failed; the next one retries", "err", err)
			}
			if n > 0 {
				log.Info("forgot messages past the idempotency window", "messages", n, "window", s.window)
			}
		}
	}
}

// checkpoint records each owned table's applied offset. The rows below it
// were committed before applied moved, and the checkpoint's synced write
// makes them durable with it.
func (s *statusStore) checkpoint() error {
	s.mu.Lock()
	var owned []int
	for p := range s.applied {
		if s.owned == nil || s.owned[p] {
			owned = append(owned, p)
		}
	}
	s.mu.Unlock()
	var err error
	for _, p := range owned {
		err = errors.Join(err, s.checkpointPartition(p))
	}
	return err
}

// checkpointPartition records partition p's applied offset in its table.
func (s *statusStore) checkpointPartition(p int) error {
	s.mu.Lock()
	off, t := s.applied[p], s.tables[p]
	if s.changelog != "" {
		off = min(off, s.logged[p])
	}
	s.mu.Unlock()
	if off <= 0 || t == nil {
		return nil
	}
	return t.st.SaveCheckpoint(off)
}
