package ingest

import (
	"context"
	"fmt"

	"github.com/sluice-sms/sluice/pkg/kafka"
)

// A divided index keeps a changelog: a compacted topic, co-partitioned with
// sms.status (same key, same partition count), holding the latest sms.status
// event of every message its owner has applied. A replica that claims a
// partition with no table on its disk reads that partition of the changelog,
// one record per message, and then sms.status from the index group's
// committed offset, instead of the whole retention of sms.status with
// several events per message.
//
// Write order, per batch of sms.status: the table (lookups see it at once),
// then the batch's changelog records, acknowledged by every in-sync replica,
// then the group's offset past the batch. So every event before a committed
// offset is in the changelog. A table's checkpoint never passes the changes
// logged, so a restart with the disk replays, and logs again, whatever a
// crash left unlogged.

// withChangelog makes the store keep the changelog topic, written by produce.
func (s *statusStore) withChangelog(topic string, produce func(context.Context, ...kafka.Message) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changelog, s.produce = topic, produce
}

func (s *statusStore) changelogTopic() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changelog
}

// applyLogged applies one batch of the claim's partition, logs its changes
// and commits the group's offset past it.
func (s *statusStore) applyLogged(ctx context.Context, c *kafka.Claim, batch []kafka.Message) error {
	p, next := c.Partition, batch[len(batch)-1].Offset+1
	changes, err := s.applyBatch(p, batch)
	if err != nil {
		return fmt.Errorf("status index: %w", err)
	}
	s.advance(p, next)
	if s.changelogTopic() == "" {
		return nil
	}
	if len(changes) > 0 {
		if err := s.produce(ctx, changes...); err != nil {
			return fmt.Errorf("status index changelog: %w", err)
		}
	}
	s.markLogged(p, next)
	return c.Commit(s.topic, next)
}

// markLogged records that partition p's changes before next are logged.
func (s *statusStore) markLogged(p int, next int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logged != nil {
		s.logged[p] = max(s.logged[p], next)
	}
}

// restoreChangelog fills the empty table of the claim's partition from the
// changelog and returns where to read sms.status from: the group's
// committed offset, every event before which is in the changelog; from the
// start of sms.status when the group has committed nothing.
func (s *statusStore) restoreChangelog(ctx context.Context, c *kafka.Claim) (int64, error) {
	committed := c.Offset(s.topic)
	if committed < 0 {
		return kafka.FirstOffset, nil
	}
	topic, p := s.changelogTopic(), c.Partition
	const chunk = 5000
	var batch []kafka.Message
	apply := func() error {
		// Not logged again; a chunk at a time, so front doors can write
		// the table meanwhile.
		_, strays, err := s.applyToTable(p, batch, "")
		batch = batch[:0]
		if err != nil {
			return err
		}
		for _, st := range strays {
			if err := s.put(st.id, st.entry); err != nil {
				return err
			}
		}
		return nil
	}
	n := 0
	_, err := kafka.ReadRange(ctx, s.brokers, topic, p, kafka.FirstOffset, func(m kafka.Message) error {
		n++
		if batch = append(batch, m); len(batch) >= chunk {
			return apply()
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		err = apply()
	}
	if err != nil {
		return 0, fmt.Errorf("status index: restore %s/%d: %w", topic, p, err)
	}
	s.readChangelog.Add(int64(n))
	s.mu.Lock()
	s.applied[p] = max(s.applied[p], committed)
	s.mu.Unlock()
	return committed, nil
}
