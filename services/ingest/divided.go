package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sluice-sms/sluice/pkg/backoff"
	"github.com/sluice-sms/sluice/pkg/kafka"
)

// A divided index: the ingest replicas form a consumer group on sms.status,
// and each holds the tables of the partitions it is assigned, restored from
// its disk's checkpoints and kept current by reading those partitions. A
// lookup of another partition goes to the replica that owns it, found from
// the group's member metadata (each member's peer URL).

// followDivided runs the store as one member of group (on topic) until ctx
// ends or the store fails. ready is closed once this replica's first
// assignment has caught up with what its partitions held when assigned.
func (s *statusStore) followDivided(ctx context.Context, group kafka.GroupConfig, ready chan<- struct{}, log *slog.Logger) error {
	topic := group.Topics[0]
	partitions, err := waitPartitions(ctx, group.Brokers, topic, log)
	if err != nil {
		return nil // ctx ended
	}
	s.mu.Lock()
	s.brokers, s.topic, s.partitions, s.applied, s.logged = group.Brokers, topic, partitions, make([]int64, partitions), make([]int64, partitions)
	s.owned = map[int]bool{}
	s.mu.Unlock()

	var (
		mu      sync.Mutex
		waiting map[int]bool
		once    sync.Once
	)
	settle := func() {
		if len(waiting) == 0 {
			once.Do(func() { close(ready) })
		}
	}
	group.Assigned = func(ps []int) {
		mu.Lock()
		defer mu.Unlock()
		waiting = map[int]bool{}
		for _, p := range ps {
			waiting[p] = true
		}
		settle()
	}
	caught := func(p int) {
		mu.Lock()
		defer mu.Unlock()
		delete(waiting, p)
		settle()
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var g errgroup.Group
	g.Go(func() error { s.maintain(ctx, log); return nil })
	err = kafka.RunGroup(ctx, group, func(ctx context.Context, c *kafka.Claim) error { return s.own(ctx, c, caught) })
	cancel()
	_ = g.Wait()
	return errors.Join(err, s.checkpoint())
}

// own holds claim's partition: it restores the table, reads the partition
// into it from its checkpoint until the claim ends, and then checkpoints
// it. caught is told once the table holds what the partition held when
// claimed.
func (s *statusStore) own(ctx context.Context, c *kafka.Claim, caught func(p int)) (err error) {
	p := c.Partition
	ends, err := kafka.PartitionsOffsets(ctx, s.brokers, s.topic, []int{p})
	if err != nil {
		return fmt.Errorf("status index: %w", err)
	}
	end := ends[p]
	from, err := s.start(p, end)
	if err != nil {
		return err
	}
	if from < 0 && s.changelogTopic() != "" {
		if from, err = s.restoreChangelog(ctx, c); err != nil {
			return err
		}
	}
	s.markLogged(p, max(from, 0))
	if err := c.Seek(s.topic, from); err != nil {
		return err
	}
	s.setOwned(p, true)
	defer func() {
		s.setOwned(p, false)
		err = errors.Join(err, s.checkpointPartition(p))
	}()
	done := false
	for {
		if !done && (end.Empty() || s.appliedOf(p) >= end.Next) {
			done = true
			caught(p)
		}
		batch, err := c.FetchBatch(ctx, s.topic, time.Second, kafka.BatchOptions{Max: 1000})
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			continue
		}
		if err := s.applyLogged(ctx, c, batch); err != nil {
			return err
		}
	}
}

func (s *statusStore) setOwned(p int, owned bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if owned {
		s.owned[p] = true
	} else {
		delete(s.owned, p)
	}
}

func (s *statusStore) appliedOf(p int) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied[p]
}

// routeTimeout bounds how long a lookup looks for its partitions' owners: a
// rebalance after a replica died takes the group's session timeout.
const routeTimeout = 20 * time.Second

// route hands ids to the replicas that own their partitions: local gets
// this replica's, remote those of one peer at a time. Ids whose owner is not
// known, or whose owner failed or no longer owns them (a rebalance), are
// tried again once the directory is refreshed, until ctx ends.
func (s *statusStore) route(ctx context.Context, ids []string, local func([]string) error,
	remote func(ctx context.Context, url string, ids []string) error) error {
	ctx, cancel := context.WithTimeout(ctx, routeTimeout)
	defer cancel()
	b := backoff.New(20*time.Millisecond, time.Second)
	var last error
	for {
		mine, byOwner, unowned := s.split(ids)
		if len(mine) > 0 {
			if err := local(mine); err != nil {
				return err
			}
		}
		var mu sync.Mutex
		retry := unowned
		var g errgroup.Group
		for url, theirs := range byOwner {
			g.Go(func() error {
				if err := remote(ctx, url, theirs); err != nil {
					mu.Lock()
					retry, last = append(retry, theirs...), err
					mu.Unlock()
				}
				return nil
			})
		}
		_ = g.Wait()
		if len(retry) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("status index: no owner answered for %d messages (last: %v): %w", len(retry), last, ctx.Err())
		case <-time.After(b.Next()):
		}
		if err := s.peers.refresh(ctx); err != nil {
			last = err
		}
		ids = retry
	}
}

// split sorts ids into this replica's, each peer's, and those whose owner
// the directory does not know.
func (s *statusStore) split(ids []string) (mine []string, byOwner map[string][]string, unowned []string) {
	byOwner = map[string][]string{}
	for _, id := range ids {
		p := s.partitionOf(id)
		if s.owns(p) {
			mine = append(mine, id)
			continue
		}
		if url, ok := s.peers.owner(p); ok {
			byOwner[url] = append(byOwner[url], id)
		} else {
			unowned = append(unowned, id)
		}
	}
	return mine, byOwner, unowned
}
