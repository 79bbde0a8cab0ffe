package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-sms/sluice/pkg/kafka"
	"github.com/sluice-sms/sluice/pkg/message"
)

// statusStore holds the latest sms.status event of every message of the last
// window, rebuilt at start from the topic and kept current by following it.
// It answers GET /v1/messages/{id} and is the durable idempotency record: a
// message id it knows was accepted (its "accepted" event is in sms.status),
// so a request with the same (tenant, client_ref) is a duplicate.
type statusStore struct {
	window time.Duration

	mu      sync.Mutex
	entries map[string]statusEntry
	// pending holds the ids being accepted right now; a copy of the request
	// waits for the first one's outcome instead of racing it.
	pending map[string]chan struct{}
	// writing holds the status events front doors are producing right now:
	// the follower usually reads one back before its writer records it, and
	// then knows what it says without decoding it again.
	writing map[string]published

	// Where the follower is, for catchUp: sms.status's partition count
	// (0 until known) and the next offset applied of each partition.
	brokers    []string
	topic      string
	partitions int
	applied    []int64
	progress   chan struct{} // closed and replaced as applied moves
}

type statusEntry struct {
	tenant string
	rank   int
	at     time.Time // event time of the latest event
	value  []byte    // the sms.status record, as published
}

func newStatusStore(window time.Duration) *statusStore {
	return &statusStore{window: window, entries: map[string]statusEntry{}, pending: map[string]chan struct{}{}, writing: map[string]published{},
		progress: make(chan struct{})}
}

// rank orders statuses so that a replayed or late event never hides a later
// one: accepted < scheduled < submitted < final.
func rank(status string) int {
	switch {
	case message.IsFinal(status):
		return 3
	case status == message.StatusSubmitted:
		return 2
	case status == message.StatusScheduled:
		return 1
	default:
		return 0
	}
}

// apply records one sms.status record; records it cannot read are ignored
// (the topic is public, and the store is only an index of it).
func (s *statusStore) apply(value []byte) {
	var ev struct {
		MessageID string    `json:"message_id"`
		Tenant    string    `json:"tenant"`
		Status    string    `json:"status"`
		EventTime time.Time `json:"event_time"`
	}
	if json.Unmarshal(value, &ev) != nil || ev.MessageID == "" {
		return
	}
	s.put(ev.MessageID, statusEntry{tenant: ev.Tenant, rank: rank(ev.Status), at: ev.EventTime, value: value})
}

// applyRecord is apply for a record of sms.status, keyed by message id: the
// events ingest wrote itself come back this way, and are already known.
func (s *statusStore) applyRecord(key, value []byte) {
	s.mu.Lock()
	e, known := s.entries[string(key)]
	p, writing := s.writing[string(key)]
	s.mu.Unlock()
	switch {
	case known && bytes.Equal(e.value, value):
	case writing && bytes.Equal(p.value, value):
		s.put(p.id, p.entry())
	default:
		s.apply(value)
	}
}

func (s *statusStore) put(id string, e statusEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.entries[id]; ok && old.rank > e.rank {
		return
	}
	s.entries[id] = e
}

// published is an "accepted" status event a front door has written.
type published struct {
	id, tenant string
	at         time.Time
	value      []byte
}

// entry is what apply would make of the event.
func (p published) entry() statusEntry {
	return statusEntry{tenant: p.tenant, rank: rank(message.StatusAccepted), at: p.at, value: p.value}
}

// get returns the latest status of tenant's message id; another tenant's
// message is not found.
func (s *statusStore) get(tenant, id string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[id]
	if !ok || e.tenant != tenant {
		return nil, false
	}
	return e.value, true
}

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
	if err := s.catchUp(ctx, ids); err != nil {
		return nil, err
	}
	c := &claims{s: s, dups: map[string]bool{}}
	sorted := slices.Sorted(slices.Values(ids))
	for _, id := range sorted {
		for {
			s.mu.Lock()
			if _, known := s.entries[id]; known {
				c.dups[id] = true
				s.mu.Unlock()
				break
			}
			wait, busy := s.pending[id]
			if !busy {
				s.pending[id] = make(chan struct{})
				c.ids = append(c.ids, id)
				s.mu.Unlock()
				break
			}
			s.mu.Unlock()
			select {
			case <-wait:
			case <-ctx.Done():
				c.done(nil)
				return nil, fmt.Errorf("wait for a copy of message %s: %w", id, ctx.Err())
			}
		}
	}
	return c, nil
}

// catchUp waits until the store has applied every record that the
// sms.status partitions of the ids it does not know held when it was
// called: another replica may have just accepted one of them, and it
// answered only once its accepted event was in Kafka. It costs one offsets
// request per leader of those partitions.
func (s *statusStore) catchUp(ctx context.Context, ids []string) error {
	s.mu.Lock()
	n := s.partitions
	var parts []int
	seen := map[int]bool{}
	for _, id := range ids {
		if _, known := s.entries[id]; known || n == 0 {
			continue
		}
		if p := kafka.PartitionOf([]byte(id), n); !seen[p] {
			seen[p] = true
			parts = append(parts, p)
		}
	}
	s.mu.Unlock()
	if len(parts) == 0 {
		return nil
	}
	ends, err := kafka.PartitionsOffsets(ctx, s.brokers, s.topic, parts)
	if err != nil {
		return fmt.Errorf("status index: %w", err)
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
			return nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("status index behind %s: %w", s.topic, ctx.Err())
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
// published) and releases the ids.
func (c *claims) done(statuses []published) {
	for _, p := range statuses {
		c.s.put(p.id, p.entry())
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

// prune forgets messages whose latest event is older than the window, as
// Kafka's retention of sms.status does.
func (s *statusStore) prune(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, e := range s.entries {
		if now.Sub(e.at) > s.window {
			delete(s.entries, id)
			n++
		}
	}
	return n
}

func (s *statusStore) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// follow reads every partition of topic from its first offset into the
// store until ctx ends. ready is closed once the store holds everything the
// topic held when follow started.
func (s *statusStore) follow(ctx context.Context, brokers []string, topic string, ready chan<- struct{}, log *slog.Logger) {
	var partitions int
	for {
		var err error
		if partitions, err = kafka.PartitionCount(ctx, brokers, topic); err == nil {
			break
		}
		// A topic just created may not have its leaders in place yet.
		log.Warn("status store: topic not available yet; retrying", "topic", topic, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
	s.mu.Lock()
	s.brokers, s.topic, s.partitions, s.applied = brokers, topic, partitions, make([]int64, partitions)
	s.mu.Unlock()
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
			kafka.Tail(ctx, brokers, topic, p, func(m kafka.Message) {
				s.applyRecord(m.Key, m.Value)
				s.advance(p, m.Offset+1)
			}, caughtUp, log)
		})
	}
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case now := <-tick.C:
			if n := s.prune(now); n > 0 {
				log.Info("forgot messages past the idempotency window", "messages", n, "window", s.window)
			}
		}
	}
	wg.Wait()
}
