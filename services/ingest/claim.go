package ingest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/sluice-sms/sluice/pkg/kafka"
)

// claims are message ids a caller holds while it accepts them.
type claims struct {
	s       *statusStore
	ids     []string
	dups    map[string]bool
	writing []published
}

// claim takes the ids (distinct) for the caller, waiting while another caller
// holds one of them, and reports which are already known (duplicates). Ids
// are taken in sorted order so that two callers never wait on each other.
// The caller must call done.
func (s *statusStore) claim(ctx context.Context, ids []string) (*claims, error) {
	c := &claims{s: s, dups: map[string]bool{}}
	for _, id := range slices.Sorted(slices.Values(ids)) {
		if err := s.hold(ctx, id); err != nil {
			c.done(nil)
			return nil, err
		}
		c.ids = append(c.ids, id)
	}
	// Looked up only once held: a holder before us wrote its row (or its
	// accepted event, which the partition's owner reads) before it let go.
	known, err := s.knownAnywhere(ctx, c.ids)
	if err != nil {
		c.done(nil)
		return nil, err
	}
	held := c.ids[:0]
	for _, id := range c.ids {
		if known[id] {
			c.dups[id] = true
			s.let(id)
			continue
		}
		held = append(held, id)
	}
	c.ids = held
	return c, nil
}

// knownAnywhere tells which ids were accepted, asking each id's partition
// owner: this replica, or the peer that owns it in a divided index.
func (s *statusStore) knownAnywhere(ctx context.Context, ids []string) (map[string]bool, error) {
	known := map[string]bool{}
	var mu sync.Mutex // the owners answer at once
	err := s.route(ctx, ids, func(local []string) error {
		k, err := s.knownHere(ctx, local)
		for _, id := range k {
			mu.Lock()
			known[id] = true
			mu.Unlock()
		}
		return err
	}, func(ctx context.Context, url string, remote []string) error {
		k, err := s.peers.known(ctx, url, remote)
		for _, id := range k {
			mu.Lock()
			known[id] = true
			mu.Unlock()
		}
		return err
	})
	return known, err
}

// knownHere returns the ids of partitions this replica owns that were
// accepted, once it has caught up with what their partitions held when it
// was called: another replica may have just accepted one, and it answered
// only once its accepted event was in Kafka.
func (s *statusStore) knownHere(ctx context.Context, ids []string) ([]string, error) {
	known, unknown, err := s.sortKnown(ids)
	if err != nil || len(unknown) == 0 {
		return known, err
	}
	caughtUp, err := s.catchUp(ctx, unknown)
	if err != nil || !caughtUp {
		return known, err
	}
	late, _, err := s.sortKnown(unknown)
	return append(known, late...), err
}

// sortKnown sorts ids into those the store knows and the others.
func (s *statusStore) sortKnown(ids []string) (known, unknown []string, err error) {
	for _, id := range ids {
		ok, err := s.known(id)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			known = append(known, id)
		} else {
			unknown = append(unknown, id)
		}
	}
	return known, unknown, nil
}

// hold takes id for the caller, waiting while another caller holds it.
func (s *statusStore) hold(ctx context.Context, id string) error {
	for {
		s.mu.Lock()
		wait, busy := s.pending[id]
		if !busy {
			s.pending[id] = make(chan struct{})
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("wait for a copy of message %s: %w", id, ctx.Err())
		}
	}
}

// let gives back an id taken by hold.
func (s *statusStore) let(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.pending[id])
	delete(s.pending, id)
}

// catchUp waits until the store has applied every record that the
// sms.status partitions of ids held when it was called, and tells whether
// it had anything to wait for (a store without a follower has not). It
// costs one offsets request per leader of those partitions.
func (s *statusStore) catchUp(ctx context.Context, ids []string) (bool, error) {
	s.mu.Lock()
	n := s.partitions
	s.mu.Unlock()
	if n == 0 {
		return false, nil
	}
	var parts []int
	seen := map[int]bool{}
	for _, id := range ids {
		if p := kafka.PartitionOf([]byte(id), n); !seen[p] {
			seen[p] = true
			parts = append(parts, p)
		}
	}
	ends, err := kafka.PartitionsOffsets(ctx, s.brokers, s.topic, parts)
	if err != nil {
		return false, fmt.Errorf("status index: %w", err)
	}
	for {
		s.mu.Lock()
		behind := false
		for _, p := range parts {
			behind = behind || (!ends[p].Empty() && s.applied[p] < ends[p].Next)
		}
		wait := s.progress
		s.mu.Unlock()
		if !behind {
			return true, nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return false, fmt.Errorf("status index behind %s: %w", s.topic, ctx.Err())
		}
	}
}

// advance records that partition's records before next are applied.
func (s *statusStore) advance(partition int, next int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if next > s.applied[partition] {
		s.applied[partition] = next
		close(s.progress)
		s.progress = make(chan struct{})
	}
}

// dup reports whether id was already accepted.
func (c *claims) dup(id string) bool { return c.dups[id] }

// write tells the store the status events the caller is about to produce,
// until done.
func (c *claims) write(statuses []published) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	for _, p := range statuses {
		c.s.writing[p.id] = p
	}
	c.writing = statuses
}

// done records the status events of what was accepted (nil when nothing was
// published) and releases the ids. A row it fails to write is written by the
// follower when it reads the event back (which stops the service if the
// disk fails it too): the event is durable in sms.status already.
func (c *claims) done(statuses []published) {
	for _, p := range statuses {
		// Another replica's partition is that replica's to write.
		if c.s.owns(c.s.partitionOf(p.id)) {
			_ = c.s.put(p.id, p.entry())
		}
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	for _, id := range c.ids {
		close(c.s.pending[id])
		delete(c.s.pending, id)
	}
	for _, p := range c.writing {
		delete(c.s.writing, p.id)
	}
	c.ids, c.writing = nil, nil
}
